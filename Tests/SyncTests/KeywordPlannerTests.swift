import Testing
@testable import Sync
import Config
import IMAP
import Maildir
import Support

/// Keywords in the pure planner and the codes that carry them (docs/keywords.md).
@Suite struct KeywordPlannerTests {
    let uid = UID(7)
    let name = "1.M1P1.host,S=10"
    let slot: UInt8 = 128

    @Test func theStateFormKeepsSlotsAndFileNamesNeverShowThem() {
        let f = MessageFlags("FSa 128 200")
        #expect(f.contains(UInt8(ascii: "a")) && f.contains(128) && f.contains(200))
        #expect(f.stored == "FSa 128 200" && MessageFlags(f.stored) == f)
        #expect(f.description == "FSa" && f.fileLetters == MessageFlags("FSa"))
        #expect(MessageFileName.fileName(baseName: "b", flags: MessageFlags(" 130"), in: .new) == "b", "a slot alone is no info part")
        #expect(MessageFileName.fileName(baseName: "b", flags: f, in: .cur) == "b:2,FSa")
        #expect(MessageFlags("S 5 999 x") == MessageFlags("S"), "numbers outside the slots are ignored")
    }

    @Test func codesAreGivenOutPerMode() {
        let maildir = FolderKeywords(mode: .maildir)
        let letters = (0..<30).compactMap { maildir.code(for: "kw\($0)") }
        #expect(letters.prefix(26) == ArraySlice((UInt8(ascii: "a")...UInt8(ascii: "z")).map { $0 }))
        #expect(Array(letters.suffix(4)) == [128, 129, 130, 131])
        #expect(maildir.code(for: "KW0") == UInt8(ascii: "a"), "keywords compare without case")
        #expect(maildir.stateOnly == MessageFlags(" 128 129 130 131"))
        #expect(maildir.needsSaving)
        let notmuch = FolderKeywords(mode: .notmuch)
        #expect(notmuch.code(for: "Work") == 128 && notmuch.tagged.contains(128))
        #expect(notmuch.code(for: "inbox") == 129 && notmuch.stateOnly.contains(129), "notmuch's own name: held by the state")
        let none = FolderKeywords.none
        #expect(none.code(for: "Work") == nil)
        #expect(none.letters([.seen, Flag("$Junk"), .forwarded]) == MessageFlags("PS"))
        let flags = maildir.letters([.seen, Flag("kw1"), Flag("kw29"), .forwarded])
        #expect(flags == MessageFlags("PSb 131"))
        #expect(Set(maildir.imapFlags(flags).map(\.rawValue)) == ["\\Seen", "$Forwarded", "kw1", "kw29"])
        #expect(maildir.unstorable([.seen, .flagged, Flag("kw1")]).contains(UInt8(ascii: "a")))
        #expect(!maildir.unstorable([.seen, .flagged, Flag("kw1")]).contains(UInt8(ascii: "b")))
        #expect(maildir.unstorable([.seen, .wildcard]).isEmpty)
    }

    func plan(agreed: String, remote: String, local: String, scope: FlagScope) -> FolderPlan {
        FolderPlanner.plan(remote: [uid: MessageFlags(remote)], local: [name: MessageFlags(local)],
                           pairs: [PlannedPair(id: 1, uid: uid, localName: name, flags: MessageFlags(agreed))],
                           policy: SyncPolicy(), scope: scope)
    }

    @Test func lettersMergeThreeWaysLikeFlags() {
        let scope = FlagScope(mirrored: MessageFlags("DFPRSTab"))
        // Server added a, here b was removed: both carried, unknown letter c stays.
        let p = plan(agreed: "Sb", remote: "Sab", local: "Sc", scope: scope)
        #expect(p.localFlags == [.init(localName: name, flags: MessageFlags("Sac"))])
        #expect(p.remoteFlags.count == 1 && p.remoteFlags[0].remove == MessageFlags("b") && p.remoteFlags[0].add.isEmpty)
        #expect(p.agreedFlags == [.init(pairID: 1, flags: MessageFlags("Sa"))])
        // A letter no keyword has (c) is never sent.
        let q = plan(agreed: "S", remote: "S", local: "Sc", scope: scope)
        #expect(q.remoteFlags.isEmpty && q.agreedFlags.isEmpty)
    }

    @Test func stateOnlyCodesFollowTheServerWithoutARename() {
        let scope = FlagScope(mirrored: FlagMapping.six.union(MessageFlags(" 128")), stateOnly: MessageFlags(" 128"))
        let added = plan(agreed: "S", remote: "S 128", local: "S", scope: scope)
        #expect(added.localFlags.isEmpty && added.remoteFlags.isEmpty, "no file carries it: nothing to rename, nothing taken away")
        #expect(added.agreedFlags == [.init(pairID: 1, flags: MessageFlags("S 128"))])
        let held = plan(agreed: "S 128", remote: "S 128", local: "S", scope: scope)
        #expect(held.isEmpty, "the file's lack of it is no removal")
        let removed = plan(agreed: "S 128", remote: "S", local: "S", scope: scope)
        #expect(removed.remoteFlags.isEmpty && removed.agreedFlags == [.init(pairID: 1, flags: MessageFlags("S"))])
    }

    @Test func unstorableKeywordsStayLocalAndAreNoted() {
        let scope = FlagScope(mirrored: MessageFlags("DFPRSTa"), unstorable: MessageFlags("a"))
        let p = plan(agreed: "S", remote: "S", local: "Sa", scope: scope)
        #expect(p.remoteFlags.isEmpty && p.localFlags.isEmpty)
        #expect(p.keptLocal == MessageFlags("a"))
    }

    @Test func tagsAreTheLocalSideWhereTheyChanged() {
        var scope = FlagScope(mirrored: FlagMapping.six.union(MessageFlags(" 128 129")))
        scope.tagged = MessageFlags(" 128 129")
        // Unchanged in notmuch: what was agreed; the server's change goes to the tags.
        let down = plan(agreed: "S 128", remote: "S 128 129", local: "S", scope: scope)
        #expect(down.localTags == [.init(localName: name, flags: MessageFlags(" 128 129"), was: MessageFlags(" 128"))])
        #expect(down.localFlags.isEmpty)
        // Changed in notmuch: its tags win where the server did not change.
        scope.localTags = { _ in MessageFlags(" 129") }
        let up = plan(agreed: "S 128", remote: "S 128", local: "S", scope: scope)
        #expect(up.remoteFlags.count == 1 && up.remoteFlags[0].add == MessageFlags(" 129") && up.remoteFlags[0].remove == MessageFlags(" 128"))
        #expect(up.localTags.isEmpty)
    }

    @Test func tagMappingKeepsNotmuchsOwnTagsHome() {
        let m = TagMapping(["$Junk": "spam"])
        #expect(m.tag(for: "$Junk") == "spam" && m.tag(for: "$junk") == "spam" && m.keyword(for: "spam") == "$Junk")
        #expect(m.tag(for: "Work") == "Work" && m.keyword(for: "Work") == "Work")
        #expect(m.keyword(for: "inbox") == nil && m.keyword(for: "unread") == nil && m.tag(for: "inbox") == nil)
        #expect(m.keyword(for: "my tag") == nil && m.keyword(for: "a(b") == nil)
        #expect(m.tag(for: "spam") == nil, "a keyword named like another's tag would collide")
        #expect(Notmuch.encode("a b/ü") == "a%20b/%C3%BC")
    }

    @Test func jsonAsNotmuchWritesIt() throws {
        let text = #"[[[null, [[{"id": "m\"2@x", "filename": ["/m/INBOX/cur/2.h:2,S"], "tags": ["inbox", "\u00fc\ud83d\ude00"], "n": -1.5e2, "t": true}, []]]]]]"#
        let v = try #require(JSONValue.parse(Array(text.utf8)))
        let m = v.array?[0].array?[0].array?[1].array?[0].array?[0]
        #expect(m?["id"]?.string == "m\"2@x")
        #expect(m?["tags"]?.array?.compactMap(\.string) == ["inbox", "ü😀"])
        #expect(m?["n"] == .number(-150) && m?["t"] == .bool(true))
        for bad in ["[1,", "{\"a\" 1}", "[1] x", "\"\\u12\"", ""] { #expect(JSONValue.parse(Array(bad.utf8)) == nil, "\(bad)") }
        #expect(JSONValue.parse(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)) == nil)
    }
}
