import Testing
@testable import IMAP
import Support

/// Feeds `input` in the given pieces and returns the events, with consecutive stream
/// chunks merged so that results compare equal however the input was split.
func events(_ input: [UInt8], splitAt points: [Int] = [], options: ParserOptions = ParserOptions()) throws(IMAPParserError) -> [ParserEvent] {
    var parser = ResponseParser(options: options)
    var out: [ParserEvent] = []
    var start = 0
    for p in points.sorted() + [input.count] where p >= start {
        out += try parser.feed(Array(input[start..<p]))
        start = p
    }
    var merged: [ParserEvent] = []
    for e in out {
        if case .streamBytes(let b) = e, case .streamBytes(let a)? = merged.last {
            merged[merged.count - 1] = .streamBytes(a + b)
        } else if case .streamBytes(let b) = e, b.isEmpty {
            continue
        } else {
            merged.append(e)
        }
    }
    return merged
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A section spec in a FETCH response is found by its value, whatever the spelling.
@Suite struct SectionSpecTests {
    @Test(arguments: [
        "HEADER.FIELDS (MESSAGE-ID DATE)",
        "HEADER.FIELDS (\"MESSAGE-ID\" \"DATE\")",       // Courier: field names as quoted strings
        "header.fields (message-id \"Date\")",
        "HEADER.FIELDS  ( MESSAGE-ID   DATE )",
        "HEADER.FIELDS (\"MESSAGE\\-ID\" DATE)",          // a needless escape in a quoted string
    ])
    func spellingsOfOneSection(_ spelling: String) throws {
        #expect(SectionSpec.canonical(bytes(spelling)) == bytes("HEADER.FIELDS (MESSAGE-ID DATE)"))
        let response = "* 1 FETCH (UID 7 BODY[\(spelling)] {21}\r\nMessage-ID: <a@b>\r\n\r\n)\r\n"
        var messages: [FetchedMessage] = []
        for case .response(.untagged(.fetch(let seq, let attributes))) in try events(bytes(response)) {
            messages.append(FetchedMessage(sequence: seq, attributes: attributes))
        }
        #expect(messages.first?.sections[bytes("HEADER.FIELDS (MESSAGE-ID DATE)")] == bytes("Message-ID: <a@b>\r\n\r\n"))
    }

    @Test func otherSectionsStayApart() {
        #expect(SectionSpec.canonical(bytes("")) == [])
        #expect(SectionSpec.canonical(bytes("1.2.mime")) == bytes("1.2.MIME"))
        #expect(SectionSpec.canonical(bytes("HEADER.FIELDS.NOT (X-A)")) != SectionSpec.canonical(bytes("HEADER.FIELDS (X-A)")))
    }
}

@Suite struct ParserTests {
    static let cases: [(String, [ParserEvent])] = [
        ("* OK IMAP4rev1 Service Ready\r\n", [.response(.untagged(.condition(.ok, nil, bytes("IMAP4rev1 Service Ready"))))]),
        ("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN] Dovecot ready.\r\n",
         [.response(.untagged(.condition(.ok, .capability(["IMAP4rev1", "LITERAL+", "SASL-IR", "AUTH=PLAIN"]), bytes("Dovecot ready."))))]),
        ("* PREAUTH IMAP4rev1 server logged in as Smith\r\n", [.response(.untagged(.condition(.preauth, nil, bytes("IMAP4rev1 server logged in as Smith"))))]),
        ("* BYE Autologout; idle for too long\r\n", [.response(.untagged(.condition(.bye, nil, bytes("Autologout; idle for too long"))))]),
        ("a001 OK LOGIN completed\r\n", [.response(.tagged(TaggedResponse(tag: "a001", status: .ok, code: nil, text: bytes("LOGIN completed"))))]),
        ("a002 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
         [.response(.tagged(TaggedResponse(tag: "a002", status: .no, code: .other("AUTHENTICATIONFAILED", []), text: bytes("Authentication failed."))))]),
        ("a003 BAD Error in IMAP command\r\n", [.response(.tagged(TaggedResponse(tag: "a003", status: .bad, code: nil, text: bytes("Error in IMAP command"))))]),
        ("+ Ready for additional command text\r\n", [.response(.continuation(bytes("Ready for additional command text")))]),
        ("+\r\n", [.response(.continuation([]))]),
        ("* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n", [.response(.untagged(.capability(["IMAP4rev1", "STARTTLS", "AUTH=GSSAPI", "LOGINDISABLED"])))]),
        ("* ENABLED CONDSTORE QRESYNC\r\n", [.response(.untagged(.enabled(["CONDSTORE", "QRESYNC"])))]),
        ("* 172 EXISTS\r\n", [.response(.untagged(.exists(172)))]),
        ("* 1 RECENT\r\n", [.response(.untagged(.recent(1)))]),
        ("* 22 EXPUNGE\r\n", [.response(.untagged(.expunge(22)))]),
        ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n",
         [.response(.untagged(.flags([.answered, .flagged, .deleted, .seen, .draft, .forwarded])))]),
        ("* OK [PERMANENTFLAGS (\\Deleted \\seen \\*)] Limited\r\n", [.response(.untagged(.condition(.ok, .permanentFlags([.deleted, .seen, .wildcard]), bytes("Limited"))))]),
        ("* OK [UNSEEN 12] Message 12 is first unseen\r\n", [.response(.untagged(.condition(.ok, .unseen(12), bytes("Message 12 is first unseen"))))]),
        ("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", [.response(.untagged(.condition(.ok, .uidValidity(UIDValidity(3857529045)), bytes("UIDs valid"))))]),
        ("* OK [UIDNEXT 4392] Predicted next UID\r\n", [.response(.untagged(.condition(.ok, .uidNext(UID(4392)), bytes("Predicted next UID"))))]),
        ("* OK [HIGHESTMODSEQ 715194045007] Highest\r\n", [.response(.untagged(.condition(.ok, .highestModSeq(ModSeq(715194045007)), bytes("Highest"))))]),
        ("* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
         [.response(.untagged(.condition(.ok, .noModSeq, bytes("Sorry, this mailbox format doesn't support modsequences"))))]),
        ("A142 OK [READ-WRITE] SELECT completed\r\n", [.response(.tagged(TaggedResponse(tag: "A142", status: .ok, code: .readWrite, text: bytes("SELECT completed"))))]),
        ("A932 OK [READ-ONLY] EXAMINE completed\r\n", [.response(.tagged(TaggedResponse(tag: "A932", status: .ok, code: .readOnly, text: bytes("EXAMINE completed"))))]),
        ("A003 NO [TRYCREATE] No such mailbox\r\n", [.response(.tagged(TaggedResponse(tag: "A003", status: .no, code: .tryCreate, text: bytes("No such mailbox"))))]),
        ("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
         [.response(.tagged(TaggedResponse(tag: "A003", status: .ok, code: .appendUID(UIDValidity(38505), UIDSet([UID(3955)])), text: bytes("APPEND completed"))))]),
        ("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
         [.response(.tagged(TaggedResponse(tag: "A004", status: .ok, code: .copyUID(UIDValidity(38505), source: UIDSet(ranges: [304...304, 319...320]), destination: UIDSet(ranges: [3956...3958])), text: bytes("Done"))))]),
        ("d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
         [.response(.tagged(TaggedResponse(tag: "d105", status: .ok, code: .modified(UIDSet([UID(7), UID(9)])), text: bytes("Conditional STORE failed"))))]),
        ("* OK [CLOSED] Previous mailbox closed\r\n", [.response(.untagged(.condition(.ok, .closed, bytes("Previous mailbox closed"))))]),
        ("* NO [ALERT] System shutdown in 10 minutes\r\n", [.response(.untagged(.condition(.no, .alert, bytes("System shutdown in 10 minutes"))))]),
        ("* OK [UIDNOTSTICKY] Non-persistent UIDs\r\n", [.response(.untagged(.condition(.ok, .uidNotSticky, bytes("Non-persistent UIDs"))))]),
        ("* OK [X-UNKNOWN-CODE some args] text\r\n", [.response(.untagged(.condition(.ok, .other("X-UNKNOWN-CODE", bytes("some args")), bytes("text"))))]),
        ("* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n", [.response(.untagged(.list(ListEntry(attributes: ["\\Noselect"], delimiter: 47, name: MailboxName(bytes: bytes("~/Mail/foo"))))))]),
        ("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n", [.response(.untagged(.list(ListEntry(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: 47, name: MailboxName(bytes: bytes("Sent Items"))))))]),
        ("* LIST () NIL INBOX\r\n", [.response(.untagged(.list(ListEntry(attributes: [], delimiter: nil, name: .inbox))))]),
        ("* LIST () \".\" {6}\r\na\"b\\cd\r\n", [.response(.untagged(.list(ListEntry(attributes: [], delimiter: 46, name: MailboxName(bytes: bytes("a\"b\\cd"))))))]),
        ("* LIST (\\HasChildren) \"/\" \"Entw&APw-rfe\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
         [.response(.untagged(.list(ListEntry(attributes: ["\\HasChildren"], delimiter: 47, name: MailboxName(bytes: bytes("Entw&APw-rfe"))))))]),
        ("* LSUB () \".\" #news.comp.mail.misc\r\n", [.response(.untagged(.lsub(ListEntry(attributes: [], delimiter: 46, name: MailboxName(bytes: bytes("#news.comp.mail.misc"))))))]),
        ("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n", [.response(.untagged(.status(MailboxName(bytes: bytes("blurdybloop")), [.messages: 231, .uidNext: 44292])))]),
        ("* STATUS \"A b\" (MESSAGES 2 UIDVALIDITY 9 HIGHESTMODSEQ 90060115205545359)\r\n",
         [.response(.untagged(.status(MailboxName(bytes: bytes("A b")), [.messages: 2, .uidValidity: 9, .highestModSeq: 90060115205545359])))]),
        ("* SEARCH 2 84 882\r\n", [.response(.untagged(.search([2, 84, 882], modSeq: nil)))]),
        ("* SEARCH\r\n", [.response(.untagged(.search([], modSeq: nil)))]),
        ("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n", [.response(.untagged(.search([2, 5, 6, 7, 11, 12, 18, 19, 20, 23], modSeq: ModSeq(917162500))))]),
        ("* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3\r\n", [.response(.untagged(.esearch(ESearchResponse(tag: "A282", uid: true, min: 2, count: 3))))]),
        ("* ESEARCH (TAG \"A283\") UID ALL 2,10:11\r\n", [.response(.untagged(.esearch(ESearchResponse(tag: "A283", uid: true, all: UIDSet(ranges: [2...2, 10...11])))))]),
        ("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n",
         [.response(.untagged(.vanished(earlier: true, UIDSet(ranges: [41...41, 43...116, 118...118, 120...211, 214...540]))))]),
        ("* VANISHED 405,407,410,425\r\n", [.response(.untagged(.vanished(earlier: false, UIDSet([UID(405), UID(407), UID(410), UID(425)]))))]),
        ("* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n", [.response(.untagged(.fetch(sequence: 23, [.flags([.seen]), .uid(UID(4827313))])))]),
        ("* 4 FETCH (UID 8 MODSEQ (12121231000) FLAGS (\\Seen $Forwarded))\r\n",
         [.response(.untagged(.fetch(sequence: 4, [.uid(UID(8)), .modSeq(ModSeq(12121231000)), .flags([.seen, .forwarded])])))]),
        ("* 12 FETCH (UID 3 RFC822.SIZE 4286 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n",
         [.response(.untagged(.fetch(sequence: 12, [.uid(UID(3)), .rfc822Size(4286), .internalDate(837596665)])))]),
        ("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (MESSAGE-ID)] {21}\r\nMessage-ID: <a@b>\r\n\r\n)\r\n",
         [.response(.untagged(.fetch(sequence: 1, [.uid(UID(1)), .body(section: bytes("HEADER.FIELDS (MESSAGE-ID)"), origin: nil, data: .inline(bytes("Message-ID: <a@b>\r\n\r\n")))])))]),
        ("* 2 FETCH (BODY[TEXT]<0> \"abc\" ENVELOPE (NIL \"s\" ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))\r\n",
         [.response(.untagged(.fetch(sequence: 2, [.body(section: bytes("TEXT"), origin: 0, data: .inline(bytes("abc"))), .other("ENVELOPE")])))]),
        ("* 3 FETCH (UID 9 BODY[] NIL)\r\n", [.response(.untagged(.fetch(sequence: 3, [.uid(UID(9)), .body(section: [], origin: nil, data: .nilValue)])))]),
        ("* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n", [.response(.untagged(.id(["name": "Dovecot", "version": ""])))]),
        ("* ID NIL\r\n", [.response(.untagged(.id(nil)))]),
        ("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\"))\r\n",
         [.response(.untagged(.namespace(NamespaceResponse(personal: [Namespace(prefix: [], delimiter: 47)], otherUsers: [Namespace(prefix: bytes("~"), delimiter: 47)],
                                                           shared: [Namespace(prefix: bytes("#shared/"), delimiter: 47), Namespace(prefix: bytes("#public/"), delimiter: 47)]))))]),
        ("* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n", [.response(.untagged(.namespace(NamespaceResponse(personal: [Namespace(prefix: bytes("INBOX."), delimiter: 46)], otherUsers: [], shared: []))))]),
        ("* XSTRANGE whatever (goes) here\r\n", [.response(.untagged(.other("XSTRANGE", bytes("whatever (goes) here"))))]),
        // Bare LF line endings are tolerated.
        ("* 5 EXISTS\n", [.response(.untagged(.exists(5)))]),
        // Several responses in one chunk.
        ("* 1 EXISTS\r\n* 0 RECENT\r\nA1 OK done\r\n", [.response(.untagged(.exists(1))), .response(.untagged(.recent(0))), .response(.tagged(TaggedResponse(tag: "A1", status: .ok, code: nil, text: bytes("done"))))]),
        // A streamed message body: UID first (Dovecot order), then the body.
        ("* 7 FETCH (UID 42 FLAGS (\\Seen) BODY[] {11}\r\nHello\r\nBody)\r\n", [
            .streamBegin(StreamInfo(sequence: 7, uid: 42, section: [], size: 11)),
            .streamBytes(bytes("Hello\r\nBody")), .streamEnd,
            .response(.untagged(.fetch(sequence: 7, [.uid(UID(42)), .flags([.seen]), .body(section: [], origin: nil, data: .streamed(size: 11))]))),
        ]),
        // Body first, UID after it; a literal8 (~{n}) and an empty body.
        ("* 8 FETCH (BINARY[] ~{3}\r\n\u{0}ab UID 43)\r\n", [
            .streamBegin(StreamInfo(sequence: 8, uid: nil, section: [], size: 3)), .streamBytes([0, 97, 98]), .streamEnd,
            .response(.untagged(.fetch(sequence: 8, [.body(section: [], origin: nil, data: .streamed(size: 3)), .uid(UID(43))]))),
        ]),
        ("* 9 FETCH (UID 44 RFC822 {0}\r\n)\r\n", [
            .streamBegin(StreamInfo(sequence: 9, uid: 44, section: [], size: 0)), .streamEnd,
            .response(.untagged(.fetch(sequence: 9, [.uid(UID(44)), .body(section: [], origin: nil, data: .streamed(size: 0))]))),
        ]),
    ]

    @Test(arguments: cases.indices)
    func wholeAndSplitAtEveryByte(index: Int) throws {
        let (text, expected) = Self.cases[index]
        let input = bytes(text)
        #expect(try events(input) == expected, "\(text)")
        for split in 0...input.count {
            #expect(try events(input, splitAt: [split]) == expected, "split at \(split): \(text)")
        }
        #expect(try events(input, splitAt: Array(0...input.count)) == expected, "byte by byte: \(text)")
    }

    /// RFC 3501 §8: the server side of the sample session, as one stream.
    @Test func rfc3501SampleSession() throws {
        let server = """
        * OK IMAP4rev1 Service Ready\r
        a001 OK LOGIN completed\r
        * 18 EXISTS\r
        * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r
        * 2 RECENT\r
        * OK [UNSEEN 17] Message 17 is the first unseen message\r
        * OK [UIDVALIDITY 3857529045] UIDs valid\r
        a002 OK [READ-WRITE] SELECT completed\r
        * 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>") BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))\r
        a003 OK FETCH completed\r
        * 12 FETCH (BODY[HEADER] {342}\r
        Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r
        From: Terry Gray <gray@cac.washington.edu>\r
        Subject: IMAP4rev1 WG mtg summary and minutes\r
        To: imap@cac.washington.edu\r
        cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r
        Message-Id: <B27397-0100000@cac.washington.edu>\r
        MIME-Version: 1.0\r
        Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r
        \r
        )\r
        a004 OK FETCH completed\r
        * 12 FETCH (FLAGS (\\Seen \\Deleted))\r
        a005 OK +FLAGS completed\r
        * BYE IMAP4rev1 server logging out\r
        a006 OK LOGOUT completed\r

        """
        let input = bytes(server)
        let result = try events(input)
        let responses = result.compactMap { if case .response(let r) = $0 { r } else { nil } }
        #expect(responses.count == 16)
        guard case .untagged(.fetch(12, let atts)) = responses[8] else { Issue.record("no fetch"); return }
        #expect(atts.prefix(3) == [.flags([.seen]), .internalDate(837596665), .rfc822Size(4286)])
        guard case .untagged(.fetch(12, let header)) = responses[10], case .body(let section, nil, .inline(let data)) = header[0] else { Issue.record("no header"); return }
        #expect(section == bytes("HEADER"))
        #expect(data.count == 342)
        // And the same split at every byte gives the same responses.
        for split in stride(from: 0, to: input.count, by: 7) {
            #expect(try events(input, splitAt: [split]) == result)
        }
    }

    /// RFC 7162 examples: CONDSTORE FETCH, QRESYNC SELECT with VANISHED (EARLIER).
    @Test func rfc7162Examples() throws {
        let server = """
        * OK [HIGHESTMODSEQ 715194045007] Highest\r
        * 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))\r
        * 2 FETCH (UID 6 MODSEQ (75403) FLAGS (\\Deleted))\r
        s100 OK FETCH completed\r
        * OK [CLOSED]\r
        * 100 EXISTS\r
        * 11 RECENT\r
        * OK [UIDVALIDITY 67890007] UIDVALIDITY\r
        * OK [UIDNEXT 600] Predicted next UID\r
        * OK [HIGHESTMODSEQ 90060115205545359] Highest mailbox mod-sequence\r
        * OK [UNSEEN 7] There are some unseen messages in the mailbox\r
        * FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r
        * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen \\*)] Permanent flags\r
        * VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r
        * 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\r
        * 50 FETCH (UID 119 FLAGS (\\Draft $MDNSent) MODSEQ (90060115194045308))\r
        A02 OK [READ-WRITE] Sorry, UIDVALIDITY mismatch\r

        """
        let responses = try events(bytes(server)).compactMap { if case .response(let r) = $0 { r } else { nil } }
        #expect(responses.count == 17)
        #expect(responses[13] == .untagged(.vanished(earlier: true, UIDSet(ranges: [41...41, 43...116, 118...118, 120...211, 214...540]))))
        #expect(responses[15] == .untagged(.fetch(sequence: 50, [.uid(UID(119)), .flags([.draft, Flag("$MDNSent")]), .modSeq(ModSeq(90060115194045308))])))
    }

    @Test func largeStreamedBodyUsesBoundedMemoryPerEvent() throws {
        var parser = ResponseParser()
        let size = 5_000_000
        var total = 0
        var largest = 0
        var out = try parser.feed(bytes("* 1 FETCH (UID 1 BODY[] {\(size)}\r\n"))
        let chunk = [UInt8](repeating: 120, count: 65536)
        var sent = 0
        while sent < size {
            let n = min(chunk.count, size - sent)
            out += try parser.feed(Array(chunk[0..<n]))
            sent += n
            for case .streamBytes(let b) in out { total += b.count; largest = max(largest, b.count) }
            out.removeAll(where: { if case .streamBytes = $0 { true } else { false } })
        }
        out += try parser.feed(bytes(")\r\n"))
        #expect(total == size)
        #expect(largest <= 65536)
        #expect(out.last == .response(.untagged(.fetch(sequence: 1, [.uid(UID(1)), .body(section: [], origin: nil, data: .streamed(size: Int64(size)))]))))
    }

    @Test(arguments: [
        ("* STATUS \"unterminated (MESSAGES 1)\r\n", "the end of a quoted string"),
        ("* LIST (\\Noselect) \"/ foo\r\n", "quoted"),
        ("* 1 FETCH (UID 1 FLAGS (\\Seen)\r\n", ") to close"),
        ("* STATUS x (MESSAGES abc)\r\n", "a number"),
        ("* 1 FETCH (INTERNALDATE \"yesterday\")\r\n", "a date-time"),
        ("* OK [UIDVALIDITY x] y\r\n", "a number"),
        ("* 99999999999 EXISTS\r\n", "a message number"),
    ])
    func malformed(text: String, expected: String) {
        do {
            _ = try events(bytes(text))
            Issue.record("parsed \(text)")
        } catch {
            guard case .malformed(let what, _) = error else { Issue.record("\(error)"); return }
            #expect(what.contains(expected), "\(text): \(what)")
        }
    }

    @Test func hostileSizesAreBounded() {
        #expect(throws: IMAPParserError.literalTooLarge(size: Int64.max, limit: ParserOptions().maxLiteralSize)) {
            _ = try events(bytes("* 1 FETCH (BODY[] {99999999999999999999}\r\n"))
        }
        #expect(throws: IMAPParserError.literalTooLarge(size: 99_999_999_999_999, limit: ParserOptions().maxLiteralSize)) {
            _ = try events(bytes("* 1 FETCH (BODY[] {99999999999999}\r\n"))
        }
        // A non-body literal above the inline bound is refused, not buffered.
        #expect(throws: IMAPParserError.literalTooLarge(size: 2_000_000, limit: Int64(ParserOptions().maxInlineLiteralSize))) {
            _ = try events(bytes("* LIST () \"/\" {2000000}\r\n"))
        }
        // 1 MB without a line end: refused once past the line bound, in pieces.
        var parser = ResponseParser()
        var failed = false
        for _ in 0..<16 {
            do { _ = try parser.feed([UInt8](repeating: 65, count: 65536)) } catch {
                #expect(error == .lineTooLong(limit: ParserOptions().maxLineLength))
                failed = true
                break
            }
        }
        #expect(failed)
        // 1,000 nested parentheses.
        let nested = "* 1 FETCH (X-DEEP " + String(repeating: "(", count: 1000) + String(repeating: ")", count: 1000) + ")\r\n"
        #expect(throws: IMAPParserError.nestingTooDeep(limit: 100)) { _ = try events(bytes(nested)) }
        // Too many inline literals in one response.
        var options = ParserOptions()
        options.maxResponseSize = 10_000
        var many = "* ID ("
        for i in 0..<20 { many += "\"k\(i)\" {1000}\r\n" + String(repeating: "v", count: 1000) }
        #expect(throws: IMAPParserError.responseTooLarge(limit: 10_000)) { _ = try events(bytes(many + ")\r\n"), options: options) }
    }
}
