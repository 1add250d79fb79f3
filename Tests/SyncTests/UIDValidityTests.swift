#if canImport(Glibc)
import Glibc
#endif
import Testing
import Config
import IMAP
import Support
import Sync
import Maildir
import TestSupport

/// On each of the three servers: Courier once re-matched nothing here (its FETCH answer
/// spells the header field names as quoted strings).
@Suite struct UIDValidityTests {

    /// The server folder is recreated with the same messages (new UIDVALIDITY, new UIDs)
    /// plus one extra, while one extra arrived locally: the pass re-matches by Message-ID and
    /// size — no duplicates, no loss, local files kept, both extras carried over.
    @Test(arguments: ServerKind.allCases)
    func recreatedFolderIsRematched(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        var originals = (1...6).map { mail("v\($0)") }
        // One message without a Message-ID: matched by Date/From/Subject and size.
        originals.append(Array("From: c@example.com\r\nSubject: no id\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n".utf8))
        try await a.append("Archive", originals)
        _ = try await a.sync()
        _ = try await a.sync()
        let filesBefore = Set(a.localMessages("Archive").map(\.name))
        #expect(filesBefore.count == 7)

        let s = try await a.session()
        let before = try await s.status(a.serverFolder("Archive"), items: [.uidValidity]).uidValidity
        try await s.delete(a.serverFolder("Archive"))
        await s.logout()
        try await a.append("Archive", originals.reversed() + [mail("server-extra")])
        let s2 = try await a.session()
        let after = try await s2.status(a.serverFolder("Archive"), items: [.uidValidity]).uidValidity
        await s2.logout()
        #expect(before != after, "the test needs a new UIDVALIDITY")
        try a.deliverLocally("Archive", mail("local-extra"))

        // A dry run shows the re-match and what follows it, and changes nothing.
        let snapshot = try await a.snapshot()
        let dry = try await a.sync(["--dry-run"])
        #expect(dry.status == 0, "\(dry.standardError)")
        #expect(dry.standardOutput.contains("work/Archive: would be 1 down, 1 up, 7 re-matched after a UIDVALIDITY change"), "\(dry.standardOutput)")
        #expect(try await a.snapshot() == snapshot)

        let result = try await a.sync()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("UIDVALIDITY changed"), "\(result.standardError)")
        let server = try await a.serverMessages("Archive")
        let local = a.localMessages("Archive")
        let expected = (ids(originals) + ["local-extra", "server-extra"]).sorted()
        #expect(ids(server.values.map(\.body)) == expected)
        #expect(ids(local.map(\.body)) == expected)
        // The local extra carried over is byte for byte its file (invariant 5).
        let carried = server.values.first { ids([$0.body]) == ["local-extra"] }.map { lf($0.body) }
        #expect(carried == lf(mail("local-extra")))
        // The matched messages kept their files (same base names).
        let names = Set(local.map(\.name))
        #expect(filesBefore.isSubset(of: names), "\(filesBefore.subtracting(names))")

        // And the pass after that has nothing to do.
        let next = try a.accountSync()
        let again = try await next.run()
        #expect(again.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(again.folders)")
        #expect(try await a.serverMessages("Archive").count == 9)
        #expect(a.localMessages("Archive").count == 9)
    }

    /// A file moved locally out of a folder that was recreated on the server since the last
    /// pass: the pair's UID now names another message there, so the move must not be done
    /// with UID MOVE (it moved the wrong message, and the right one came back as a download).
    @Test(arguments: ServerKind.allCases)
    func localMoveOutOfARecreatedFolderMovesTheRightMessage(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Source", [mail("m1"), mail("m2")])
        try await a.append("Target", [mail("t1")])
        _ = try await a.sync()
        _ = try await a.sync()
        // Recreated: "other" takes UID 1, which the state gives to m1.
        let s = try await a.session()
        try await s.delete(a.serverFolder("Source"))
        await s.logout()
        // "am1" holds "m1@…" in its Message-ID: a SEARCH HEADER finds both.
        try await a.append("Source", [mail("other"), mail("am1"), mail("m1"), mail("m2")])
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let source = store.folder(["Source"]), target = store.folder(["Target"])
        let moving = try source.scan().messages.first { readBytes(source.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("<m1@") } ?? false }!
        #expect(rename(source.filePath(of: moving), target.path + "/cur/" + moving.fileName) == 0)

        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("work/Source → Target: 1 moved on the server"), "\(first.standardOutput)")
        let second = try await a.sync()
        #expect(second.status == 0, "\(second.standardError)")
        #expect(ids(try await a.serverMessages("Source").values.map(\.body)) == ["am1", "m2", "other"])
        #expect(ids(try await a.serverMessages("Target").values.map(\.body)) == ["m1", "t1"])
        #expect(ids(a.localMessages("Source").map(\.body)) == ["am1", "m2", "other"])
        #expect(ids(a.localMessages("Target").map(\.body)) == ["m1", "t1"])
    }

    /// A first pass over a Maildir that another tool kept in step with the server (or after
    /// the state was lost): what is on both sides is paired by Message-ID and size, kept
    /// where it is, and never copied both ways; only the extras move. (Found by pointing it
    /// at the Maildir mbsync kept in Benchmarks/vs-mbsync: nothing paired, all of it copied
    /// both ways, because of mbsync's X-TUID lines.)
    @Test(arguments: ServerKind.allCases)
    func firstPassPairsWhatIsAlreadyOnBothSides(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let shared = (1...3).map { mail("both\($0)") }
        try await a.append("INBOX", shared + [mail("server-only")])
        // mbsync writes an X-TUID line into the files it keeps: still the same message.
        let names = try shared.enumerated().map { i, m in
            try a.deliverLocally("INBOX", i == 0 ? Array("X-TUID: pF5iZT6zJ/pT\r\n".utf8) + m : m, flags: "S")
        }
        try a.deliverLocally("INBOX", mail("local-only"))

        let result = try await a.sync()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("work/INBOX: 1 down, 1 up, 3 flag changes, 3 already on both sides, paired"), "\(result.standardOutput)")
        let expected = ["both1", "both2", "both3", "local-only", "server-only"]
        #expect(ids(try await a.serverMessages("INBOX").values.map(\.body)) == expected)
        let local = a.localMessages("INBOX")
        #expect(ids(local.map(\.body)) == expected)
        let baseNames = Set(local.map { String($0.name.split(separator: ":")[0]) })
        #expect(names.allSatisfy { baseNames.contains(String($0.split(separator: ":")[0])) }, "the files already here are kept")
        // The local \Seen flags reached the server's copies.
        #expect(try await a.serverMessages("INBOX").values.filter { $0.flags.contains(.seen) }.count == 3)

        let again = try await a.sync()
        #expect(again.status == 0 && again.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(again.standardOutput)")
    }

    /// The state is lost (deleted, or a new machine with the Maildir restored): the next pass
    /// pairs every message again, including those this Maildir uploaded (byte for byte the
    /// files) — nothing is copied either way.
    @Test(arguments: ServerKind.allCases)
    func lostStateCopiesNothing(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("s1"), mail("s2")])
        try a.deliverLocally("INBOX", mail("l1"))
        try a.deliverLocally("INBOX", mail("l2"), flags: "F")
        let first = try await a.sync()
        #expect(first.standardOutput.contains("work/INBOX: 2 down, 2 up"), "\(first.standardOutput)")
        #expect(try await runCommand(["rm", "-rf", a.dir.path + "/state"]).status == 0)

        let again = try await a.sync()
        #expect(again.status == 0, "\(again.standardError)")
        #expect(again.standardOutput.contains("work/INBOX: 4 already on both sides, paired"), "\(again.standardOutput)")
        #expect(ids(try await a.serverMessages("INBOX").values.map(\.body)) == ["l1", "l2", "s1", "s2"])
        #expect(ids(a.localMessages("INBOX").map(\.body)) == ["l1", "l2", "s1", "s2"])
    }
}
