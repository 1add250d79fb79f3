import Testing
@testable import IMAP
import Support

func text(_ parts: [CommandPart]) -> String {
    var out = ""
    for part in parts {
        switch part {
        case .bytes(let b): out += String(decoding: b, as: UTF8.self)
        case .literalData(let b, _): out += String(decoding: b, as: UTF8.self)
        case .messageData: out += "<message>"
        }
    }
    return out
}

@Suite struct EncoderTests {
    let plain = CommandEncoder()

    @Test(arguments: [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("a😀b", "a&2D3eAA-b"),
        ("", ""),
    ])
    func modifiedUTF7RoundTrip(name: String, wire: String) {
        #expect(String(decoding: ModifiedUTF7.encode(name), as: UTF8.self) == wire)
        #expect(ModifiedUTF7.decode(Array(wire.utf8)) == name)
    }

    @Test(arguments: ["&", "&Jjo", "&AGE-", "&U,BTF2XlZyyKng-x\u{1}", "&Jjo!-"])
    func invalidModifiedUTF7(wire: String) {
        #expect(ModifiedUTF7.decode(Array(wire.utf8)) == nil)
    }

    @Test func mailboxArgumentsChooseAtomQuotedOrLiteral() {
        func select(_ name: MailboxName, _ encoder: CommandEncoder = CommandEncoder()) -> [CommandPart] {
            encoder.encode(.select(name, condstore: false, qresync: nil), tag: "A1")
        }
        #expect(text(select(MailboxName("INBOX"))) == "A1 SELECT INBOX\r\n")
        #expect(text(select(MailboxName("Entwürfe"))) == "A1 SELECT Entw&APw-rfe\r\n")
        #expect(text(select(MailboxName("Sent Items"))) == "A1 SELECT \"Sent Items\"\r\n")
        #expect(text(select(MailboxName(bytes: Array("a\"b".utf8)))) == "A1 SELECT \"a\\\"b\"\r\n")
        #expect(text(select(MailboxName(bytes: Array("a\\b".utf8)))) == "A1 SELECT \"a\\\\b\"\r\n")
        #expect(text(select(MailboxName(bytes: Array("50%".utf8)))) == "A1 SELECT \"50%\"\r\n")
        #expect(text(select(MailboxName(bytes: []))) == "A1 SELECT \"\"\r\n")
        // UTF-8 without UTF8=ACCEPT: a literal; synchronizing unless LITERAL+ / LITERAL-.
        let utf8Name = MailboxName("Отправленные", utf8: true)
        let sync = select(utf8Name)
        #expect(text(sync) == "A1 SELECT {24}\r\nОтправленные\r\n")
        guard case .literalData(_, synchronizing: true) = sync[1] else { Issue.record("expected a synchronizing literal"); return }
        let plus = select(utf8Name, CommandEncoder(literalPlus: true))
        #expect(text(plus) == "A1 SELECT {24+}\r\nОтправленные\r\n")
        let minus = select(utf8Name, CommandEncoder(literalMinus: true))
        #expect(text(minus).hasPrefix("A1 SELECT {24+}"))
        #expect(text(select(utf8Name, CommandEncoder(utf8Accept: true))) == "A1 SELECT \"Отправленные\"\r\n")
        // A line break can never be quoted.
        #expect(text(select(MailboxName(bytes: Array("a\r\nb".utf8)))) == "A1 SELECT {4}\r\na\r\nb\r\n")
    }

    @Test func commandsAsTheServerExpectsThem() {
        let e = CommandEncoder(literalPlus: true)
        #expect(text(e.encode(.login(username: Array("alice".utf8), password: Array("p w\"".utf8)), tag: "t1")) == "t1 LOGIN alice \"p w\\\"\"\r\n")
        #expect(text(e.encode(.select(.inbox, condstore: false, qresync: QResyncParameters(uidValidity: UIDValidity(67890007), modSeq: ModSeq(90060115194045000), knownUIDs: UIDSet(ranges: [41...211, 214...541]))), tag: "A02"))
                == "A02 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n")
        #expect(text(e.encode(.examine(.inbox, condstore: true, qresync: nil), tag: "a")) == "a EXAMINE INBOX (CONDSTORE)\r\n")
        #expect(text(e.encode(.uidFetch(UIDSet(ranges: [1...UInt32.max]), [.uid, .flags], changedSince: ModSeq(12345), vanished: true), tag: "a"))
                == "a UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
        #expect(text(e.encode(.uidFetch(UIDSet([UID(5)]), [.uid, .flags, .internalDate, .rfc822Size, .bodyPeek(section: "")], changedSince: nil, vanished: false), tag: "a"))
                == "a UID FETCH 5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n")
        #expect(text(e.encode(.uidStore(UIDSet([UID(1), UID(2), UID(3)]), .add, [.deleted], silent: true, unchangedSince: ModSeq(7)), tag: "a"))
                == "a UID STORE 1:3 (UNCHANGEDSINCE 7) +FLAGS.SILENT (\\Deleted)\r\n")
        #expect(text(e.encode(.uidExpunge(UIDSet([UID(3), UID(4), UID(9)])), tag: "a")) == "a UID EXPUNGE 3:4,9\r\n")
        #expect(text(e.encode(.uidMove(UIDSet([UID(9)]), MailboxName("Archive")), tag: "a")) == "a UID MOVE 9 Archive\r\n")
        #expect(text(e.encode(.status(MailboxName("Sent"), [.uidNext, .uidValidity, .messages, .highestModSeq]), tag: "a"))
                == "a STATUS Sent (UIDNEXT UIDVALIDITY MESSAGES HIGHESTMODSEQ)\r\n")
        #expect(text(e.encode(.list(reference: [], pattern: Array("*".utf8), returnSpecialUse: true), tag: "a")) == "a LIST \"\" * RETURN (SPECIAL-USE)\r\n")
        #expect(text(e.encode(.uidSearch(criteria: [.header("X-Mailmirror-Token", Array("abc123".utf8)), .uid(UIDSet.from(UID(40)))], returnAll: true), tag: "a"))
                == "a UID SEARCH RETURN (ALL) HEADER X-Mailmirror-Token \"abc123\" UID 40:*\r\n")
        #expect(text(e.encode(.uidSearch(criteria: [.since(1_700_000_000)], returnAll: false), tag: "a")) == "a UID SEARCH SINCE 14-Nov-2023\r\n")
        #expect(text(e.encode(.id([("name", "mailmirror")]), tag: "a")) == "a ID (\"name\" \"mailmirror\")\r\n")
        #expect(text(e.encode(.enable(["CONDSTORE", "QRESYNC"]), tag: "a")) == "a ENABLE CONDSTORE QRESYNC\r\n")
        #expect(text(e.encode(.authenticate(mechanism: "PLAIN", initialResponse: Array("AGFsaWNlAHB3".utf8)), tag: "a")) == "a AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n")
    }

    @Test func uidSetCompressionParsingAndChunking() {
        let set = UIDSet([9, 1, 2, 3, 4, 5, 7, 10, 11, 12].map { UID($0) })
        #expect(set.description == "1:5,7,9:12")
        #expect(set.count == 10)
        #expect(set.contains(UID(7)) && !set.contains(UID(6)) && set.contains(UID(12)) && !set.contains(UID(13)))
        #expect(Array(set).map(\.rawValue) == [1, 2, 3, 4, 5, 7, 9, 10, 11, 12])
        #expect(UIDSet(parsing: "12:9,1,3:2") == UIDSet(ranges: [1...3, 9...12]))
        #expect(UIDSet(parsing: "5:*")?.description == "5:*")
        #expect(UIDSet(parsing: "0") == nil && UIDSet(parsing: "a") == nil && UIDSet(parsing: "1,,2") == nil)
        let sparse = UIDSet((1...20000).filter { $0 % 2 == 0 }.map { UID(UInt32($0)) })
        let chunks = sparse.chunked(maxLength: 1000)
        #expect(chunks.allSatisfy { $0.description.utf8.count <= 1000 })
        #expect(chunks.reduce(0) { $0 + $1.count } == 10000)
    }

    /// MESSAGELIMIT (RFC 9738): no piece names more UIDs than the limit, ranges are split
    /// where they must be, nothing is lost or doubled, and `n:*` stays whole.
    @Test(arguments: [1, 7, 100, 1000]) func uidSetChunksWithinAMessageLimit(_ limit: Int) {
        let set = UIDSet(ranges: [1...250, 300...300, 302...304, 1000...1999, 5000...5000])
        let chunks = set.chunked(maxLength: 4000, maxCount: limit)
        #expect(chunks.allSatisfy { $0.count <= limit && $0.description.utf8.count <= 4000 })
        #expect(chunks.reduce(0) { $0 + $1.count } == set.count)
        #expect(UIDSet(ranges: chunks.flatMap(\.ranges)) == set)
        #expect(chunks.count == (set.count + limit - 1) / limit)   // full pieces but the last
        #expect(UIDSet.from(UID(5)).chunked(maxCount: limit) == [UIDSet.from(UID(5))])
        let sparse = UIDSet((1...5000).filter { $0 % 2 == 0 }.map { UID(UInt32($0)) })
        let both = sparse.chunked(maxLength: 900, maxCount: limit)
        #expect(both.allSatisfy { $0.count <= limit && $0.description.utf8.count <= 900 })
        #expect(UIDSet(ranges: both.flatMap(\.ranges)) == sparse)
    }

    @Test func sequenceFetchIsWrittenLikeAUIDSet() {
        let e = CommandEncoder(literalPlus: true)
        #expect(text(e.encode(.fetch(UIDSet(ranges: [5001...10000]), [.uid, .flags]), tag: "A1")) == "A1 FETCH 5001:10000 (UID FLAGS)\r\n")
    }

    @Test func datesRoundTrip() {
        #expect(IMAPDate.format(837596665) == "17-Jul-1996 09:44:25 +0000")
        #expect(IMAPDate.parse(Array(IMAPDate.format(837596665).utf8)) == 837596665)
        #expect(IMAPDate.parse(Array(" 1-Jan-2000 00:00:00 +0100".utf8)) == 946681200)
        #expect(IMAPDate.format(5) == " 1-Jan-1970 00:00:05 +0000")
    }
}
