#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import TestSupport

/// Keywords both ways with `keywords = "maildir"` (the default) against the fixture Dovecot:
/// a folder's `dovecot-keywords` and letters `a`…`z` in file names, merged three ways like
/// flags (docs/keywords.md).
@Suite struct KeywordSyncTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// The keywords of the local file with this Message-ID, by the folder's table.
    func localKeywords(_ a: SyncAccount, id: String, folder: String = "INBOX") throws -> Set<String> {
        let f = MaildirStore(root: a.maildir, layout: .fs).folder(folder.split(separator: "/").map(String.init))
        let table = try MaildirKeywords.read(in: f)
        for m in try f.scan().messages {
            let body = readBytes(f.filePath(of: m)) ?? []
            if String(decoding: body, as: UTF8.self).contains("<\(id)@mailmirror.test>") { return Set(table.keywords(of: m.flags)) }
        }
        Issue.record("no local file for \(id)")
        return []
    }

    /// Sets or clears keywords (and flags) of the local file with this Message-ID the way a
    /// reader of Dovecot's scheme does: a letter from the folder's table (given one if new).
    func changeLocally(_ a: SyncAccount, id: String, add: [String] = [], remove: [String] = [], folder: String = "INBOX") throws {
        let f = MaildirStore(root: a.maildir, layout: .fs).folder(folder.split(separator: "/").map(String.init))
        var table = try MaildirKeywords.read(in: f)
        for m in try f.scan().messages {
            let body = readBytes(f.filePath(of: m)) ?? []
            guard String(decoding: body, as: UTF8.self).contains("<\(id)@mailmirror.test>") else { continue }
            var flags = m.flags
            for k in add { if let l = table.assign(k) { flags.insert(l) } }
            for k in remove { if let l = table.letter(for: k) { flags.remove(l) } }
            try table.write(to: f)
            _ = try f.setFlags(m, to: flags)
            return
        }
        Issue.record("no local file for \(id)")
    }

    /// The server's keywords (and flags) of the message with this Message-ID.
    func serverFlags(_ a: SyncAccount, id: String, folder: String = "INBOX") async throws -> Set<String> {
        for (_, m) in try await a.serverMessages(folder) where String(decoding: m.body, as: UTF8.self).contains("<\(id)@mailmirror.test>") {
            return Set(m.flags.map(\.rawValue))
        }
        Issue.record("no server message for \(id)")
        return []
    }

    func storeOnServer(_ a: SyncAccount, _ operation: StoreOperation, _ flags: [String], id: String) async throws {
        let s = try await a.session()
        defer { Task { await s.logout() } }
        _ = try await s.select(MailboxName("INBOX"))
        let hits = try await s.search([.header("Message-ID", Array("\(id)@mailmirror.test".utf8))])
        #expect(hits.count == 1)
        _ = try await s.store(hits, operation, flags.map(Flag.init))
    }

    /// Server keywords reach the files (letters and `dovecot-keywords`), local letters reach
    /// the server, a removal on one side wins over no change on the other, a change on both
    /// sides merges, and a Dovecot whose mail location is the local Maildir reports the same
    /// keywords (FETCH FLAGS) — Dovecot's scheme, round trip.
    @Test func keywordsGoBothWaysAndMerge() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("k1")], flags: [.seen, Flag("$Junk"), Flag("$label1")])
        try await a.append("INBOX", [mail("k2")])
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        #expect(try localKeywords(a, id: "k1") == ["$Junk", "$label1"])
        #expect(try localKeywords(a, id: "k2").isEmpty)

        // Local → server: a known keyword and a new one.
        try changeLocally(a, id: "k2", add: ["$Junk", "Todo"])
        try await maildirSettles()
        let second = try await a.sync()
        #expect(second.status == 0, "\(second.standardError)")
        #expect(try await serverFlags(a, id: "k2") == ["$Junk", "Todo"])

        // A removal on one side wins over no change on the other, both directions.
        try await storeOnServer(a, .remove, ["$label1"], id: "k1")
        try changeLocally(a, id: "k2", remove: ["$Junk"])
        try await maildirSettles()
        let third = try await a.sync()
        #expect(third.status == 0, "\(third.standardError)")
        #expect(try localKeywords(a, id: "k1") == ["$Junk"])
        #expect(try await serverFlags(a, id: "k2") == ["Todo"])

        // A change on both sides of one message: both kept.
        try await storeOnServer(a, .add, ["Work"], id: "k1")
        try changeLocally(a, id: "k1", add: ["Todo"], remove: ["$Junk"])
        try await maildirSettles()
        let fourth = try await a.sync()
        #expect(fourth.status == 0, "\(fourth.standardError)")
        #expect(try localKeywords(a, id: "k1") == ["Todo", "Work"])
        #expect(try await serverFlags(a, id: "k1") == ["\\Seen", "Todo", "Work"])

        // Settled: a pass changes nothing more.
        try await maildirSettles()
        let quiet = try await a.sync()
        #expect(quiet.status == 0 && !quiet.standardOutput.contains("flag"), "\(quiet.standardOutput)")

        // A Dovecot serving a copy of the local Maildir reports the same keywords.
        let reader = try fixture.makeUser("kwreader", fields: "")
        let home = fixture.directory + "/mail/" + reader.name
        let copied = try await runCommand(["sh", "-c", "rm -rf \(shellQuote(home)) && cp -r \(shellQuote(a.maildir + "/INBOX")) \(shellQuote(home))"
                                             + " && chown -R --reference=\(shellQuote(fixture.directory + "/mail")) \(shellQuote(home))"])
        #expect(copied.status == 0, "\(copied.standardError)")
        let doveadm = "doveadm -c \(fixture.directory)/dovecot.conf"
        let fetched = try await runCommand(["sh", "-c", "\(doveadm) -f tab fetch -u \(reader.name) 'hdr.message-id flags' mailbox INBOX all"])
        #expect(fetched.status == 0, "\(fetched.standardError)")
        let records = fetched.standardOutput.split(separator: "\n").map(String.init)
        let k1 = try #require(records.first { $0.contains("<k1@") }, "\(fetched.standardOutput)")
        let k2 = try #require(records.first { $0.contains("<k2@") }, "\(fetched.standardOutput)")
        #expect(k1.contains("Todo") && k1.contains("Work") && !k1.contains("$Junk") && !k1.contains("$label1"), "\(k1)")
        #expect(k2.contains("Todo") && !k2.contains("$Junk"), "\(k2)")
    }

    /// A folder with 30 keywords: 26 get letters, the other 4 live in the state, are synced
    /// with the server and listed by `status`; changes to either kind go both ways, and
    /// nothing is taken from the server because the files cannot carry it.
    @Test func aFolderWithThirtyKeywords() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let all = (1...30).map { "kw\($0 < 10 ? "0" : "")\($0)" }
        try await a.append("INBOX", [mail("many")], flags: all.map(Flag.init))
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        let local = try localKeywords(a, id: "many")
        #expect(local.count == 26, "\(local)")
        let inState = Set(all).subtracting(local)
        #expect(inState.count == 4)
        let status = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(status.standardOutput.contains("4 keyword(s) kept in the state"), "\(status.standardOutput)")
        for k in inState { #expect(status.standardOutput.contains(k)) }

        // Nothing changed: the state-only keywords stay on the server.
        try await maildirSettles()
        let quiet = try await a.sync()
        #expect(quiet.status == 0)
        #expect(try await serverFlags(a, id: "many") == Set(all))

        // Server: one of each kind removed; here: one letter removed.
        let gone = [inState.sorted()[0], local.sorted()[0]]
        try await storeOnServer(a, .remove, gone, id: "many")
        let localGone = local.sorted()[1]
        try changeLocally(a, id: "many", remove: [localGone])
        try await maildirSettles()
        let second = try await a.sync()
        #expect(second.status == 0, "\(second.standardError)")
        #expect(try await serverFlags(a, id: "many") == Set(all).subtracting(gone + [localGone]))
        #expect(try localKeywords(a, id: "many") == local.subtracting(gone + [localGone]))
        let after = try await runMailmirror(["status", "--json", "--config", a.config], timeout: 60)
        #expect(after.standardOutput.contains("\"keywords_in_state\":[\""), "\(after.standardOutput)")
        #expect(!after.standardOutput.contains(inState.sorted()[0] + "\""), "the removed one is no longer held: \(after.standardOutput)")
    }

    /// A folder whose server cannot keep keywords (Dovecot's ACL without the `w` right:
    /// PERMANENTFLAGS has no `\*`): local keywords stay on the files, are not sent, not
    /// retried pass after pass, and `status` names them.
    @Test func aServerThatRefusesNewKeywords() async throws {
        let a = try SyncAccount(fixture, userFields: "userdb_mail_plugins=acl userdb_acl=vfile")
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("r1")])
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        // The owner may read, see, delete, expunge, insert — but not write flags or keywords.
        let acl = fixture.directory + "/mail/" + a.user.name + "/dovecot-acl"
        let written = try await runCommand(["sh", "-c", "echo 'owner lrstipekxa' > \(shellQuote(acl))"
                                              + " && chown --reference=\(shellQuote(fixture.directory + "/mail/" + a.user.name)) \(shellQuote(acl))"])
        #expect(written.status == 0, "\(written.standardError)")
        let s = try await a.session()
        let selected = try await s.select(MailboxName("INBOX"))
        await s.logout()
        #expect(!selected.permanentFlags.contains(.wildcard), "\(selected.permanentFlags)")

        try changeLocally(a, id: "r1", add: ["Todo"])
        try await maildirSettles()
        let second = try await a.sync()
        #expect(second.status == 0, "\(second.standardError)")
        #expect(second.standardError.contains("cannot keep the keyword(s) Todo"), "\(second.standardError)")
        #expect(try await serverFlags(a, id: "r1").isEmpty)
        #expect(try localKeywords(a, id: "r1") == ["Todo"], "kept on the file")
        let status = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(status.standardOutput.contains("cannot keep, kept here only: Todo"), "\(status.standardOutput)")

        // Not tried again, not warned again.
        try a.deliverLocally("INBOX", mail("r2"))   // touches the folder: a full pass
        try await maildirSettles()
        let third = try await a.sync()
        #expect(third.status == 0, "\(third.standardError)")
        #expect(!third.standardError.contains("cannot keep"), "\(third.standardError)")
        #expect(try localKeywords(a, id: "r1") == ["Todo"])
    }

    /// `keywords = "none"`: nothing of keywords is mirrored — no `dovecot-keywords`, no
    /// letters, and a lowercase letter a reader sets stays local.
    @Test func noneMirrorsNoKeywords() async throws {
        let a = try SyncAccount(fixture, extra: "keywords = \"none\"")
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("x1")], flags: [.seen, Flag("$Junk")])
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        let files = a.localMessages("INBOX")
        #expect(files.count == 1 && files[0].flags == MessageFlags("S"), "\(files.map(\.name))")
        #expect(access(a.maildir + "/INBOX/dovecot-keywords", F_OK) != 0)
        try changeLocally(a, id: "x1", add: ["Todo"])
        try await maildirSettles()
        let second = try await a.sync()
        #expect(second.status == 0, "\(second.standardError)")
        #expect(try await serverFlags(a, id: "x1") == ["\\Seen", "$Junk"])
    }

    /// Keywords survive the engine's other paths: a move on the server (the file is moved,
    /// its letters those of the target folder's table), a move here (the server keeps the
    /// keyword, the target's file gets its letter), and a re-match after the server's
    /// UIDVALIDITY changed (the local file's keywords win over the restored copy's).
    @Test func movesAndRematchKeepKeywords() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Archive", [mail("pad")], flags: [Flag("Other")])   // Archive's letter a is "Other"
        try await a.append("INBOX", [mail("mv1"), mail("mv2")], flags: [Flag("$Junk")])
        #expect(try await a.sync().status == 0)
        #expect(try await a.sync().status == 0)

        // Server move INBOX → Archive.
        let s = try await a.session()
        _ = try await s.select(MailboxName("INBOX"))
        let hits = try await s.search([.header("Message-ID", Array("mv1@mailmirror.test".utf8))])
        _ = try await s.move(hits, to: a.serverFolder("Archive"))
        await s.logout()
        let moved = try await a.sync()
        #expect(moved.status == 0, "\(moved.standardError)")
        #expect(moved.standardOutput.contains("1 moved here") && !moved.standardOutput.contains("1 down"), "moved, not downloaded: \(moved.standardOutput)")
        #expect(try localKeywords(a, id: "mv1", folder: "Archive") == ["$Junk"])
        #expect(try await serverFlags(a, id: "mv1", folder: "Archive") == ["$Junk"])

        // Local move INBOX → Archive (a reader renames the file across folders as it is).
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"]), archive = store.folder(["Archive"])
        let file = try #require(try inbox.scan().messages.first { String(decoding: readBytes(inbox.filePath(of: $0)) ?? [], as: UTF8.self).contains("<mv2@") })
        #expect(rename(inbox.filePath(of: file), archive.path + "/cur/" + file.fileName) == 0)
        try await maildirSettles()
        let local = try await a.sync()
        #expect(local.status == 0, "\(local.standardError)")
        #expect(try await serverFlags(a, id: "mv2", folder: "Archive").contains("$Junk"), "the move takes no keyword away")
        try await maildirSettles()
        #expect(try await a.sync().status == 0)
        #expect(try localKeywords(a, id: "mv2", folder: "Archive").contains("$Junk"))

        // The Archive folder recreated on the server (new UIDVALIDITY) without keywords.
        let s2 = try await a.session()
        try await s2.delete(a.serverFolder("Archive"))
        await s2.logout()
        try await a.append("Archive", [mail("pad"), mail("mv1"), mail("mv2")])
        let rematched = try await a.sync()
        #expect(rematched.status == 0, "\(rematched.standardError)")
        #expect(rematched.standardError.contains("UIDVALIDITY changed"), "\(rematched.standardError)")
        #expect(try await serverFlags(a, id: "mv1", folder: "Archive") == ["$Junk"], "the file's keyword goes back up")
        #expect(try await serverFlags(a, id: "pad", folder: "Archive") == ["Other"])
        #expect(a.localMessages("Archive").count == 3, "nothing copied twice")
    }
}
