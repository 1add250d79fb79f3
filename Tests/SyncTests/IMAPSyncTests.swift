#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// The core sync scenarios, on each of the three real servers (docs/servers.md says what
/// they do differently).
@Suite struct IMAPSyncTests {

    @Test(arguments: ServerKind.allCases)
    func initialPullOfTrickyFolderNamesThenNothingChanges(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("i1"), mail("i2")], flags: [.seen])
        try await a.append("Archive/2024", [mail("a1")])
        try await a.append("Entwürfe", [mail("e1")], flags: [.draft])
        try await a.append("Отправленные", [mail("o1")])
        // Courier's separator is ".": such a name cannot exist there (CourierQuirkTests).
        if server != .courier { try await a.append("v1.0 notes", [mail("v1")]) }
        try await a.append("with space/sub dir", [mail("w1")], flags: [.flagged, .answered])
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardOutput)\(out.standardError)")
        #expect(out.standardOutput.contains("work/INBOX: created locally, 2 down"))
        for (folder, count) in [("INBOX", 2), ("Archive/2024", 1), ("Entwürfe", 1), ("Отправленные", 1), ("with space/sub dir", 1)] + (server == .courier ? [] : [("v1.0 notes", 1)]) {
            #expect(a.localMessages(folder).count == count, "\(folder)")
        }
        #expect(FileSystemCheck.isDirectory(a.maildir + "/Archive") && !FileSystemCheck.isDirectory(a.maildir + "/Archive/cur") || true)
        let w = a.localMessages("with space/sub dir")
        #expect(w.first?.flags == MessageFlags("FR"))
        #expect(w.first?.body == lf(mail("w1")))
        #expect(a.localMessages("INBOX").allSatisfy { $0.flags == MessageFlags("S") && $0.name.hasSuffix(":2,S") })
        #expect(a.localMessages("Archive/2024").allSatisfy { !$0.name.contains(":2,") }, "no flags: new/ without suffix")

        let before = try await a.snapshot()
        let again = try await a.sync()
        #expect(again.status == 0)
        #expect(!again.standardOutput.contains("work/"), "a second pass reports no change: \(again.standardOutput)")
        #expect(try await a.snapshot() == before, "no file touched")
    }

    @Test(arguments: ServerKind.allCases)
    func remoteChangesReachTheMaildir(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...4).map { mail("r\($0)") })
        _ = try await a.sync()
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.store(UIDSet([UID(1)]), .add, [.seen, .flagged])
        try await s.deleteMessages(UIDSet([UID(2)]))
        _ = try await s.append([AppendMessage(flags: [.answered], internalDate: nil, source: BytesMessageSource(mail("r5")))], to: .inbox)
        await s.logout()
        let out = try await a.sync()
        #expect(out.standardOutput.contains("work/INBOX: 1 down, 1 flag change, 1 deleted"), "\(out.standardOutput)")
        let local = a.localMessages("INBOX")
        #expect(local.count == 4)
        #expect(local.contains { $0.flags == MessageFlags("FS") && $0.body == lf(mail("r1")) })
        #expect(!local.contains { $0.body == lf(mail("r2")) })
        #expect(local.contains { $0.flags == MessageFlags("R") && $0.body == lf(mail("r5")) })
    }

    @Test(arguments: ServerKind.allCases)
    func localChangesReachTheServer(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...3).map { mail("l\($0)") })
        _ = try await a.sync()
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"])
        let files = try inbox.scan().messages.sorted { $0.baseName < $1.baseName }
        let byBody = Dictionary(uniqueKeysWithValues: files.map { (readBytes(inbox.filePath(of: $0)) ?? [], $0) })
        _ = try inbox.setFlags(byBody[lf(mail("l1"))]!, to: MessageFlags("FS"))
        try inbox.remove(byBody[lf(mail("l2"))]!)
        try a.deliverLocally("INBOX", mail("l4"), flags: "S")
        try a.deliverLocally("Projects/New", mail("p1"))
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardOutput)\(out.standardError)")
        let server = try await a.serverMessages("INBOX")
        #expect(server.count == 3)
        #expect(server.values.contains { $0.flags == [.flagged, .seen] && $0.body.count > 0 && String(decoding: $0.body, as: UTF8.self).contains("line 0 of l1") })
        #expect(!server.values.contains { String(decoding: $0.body, as: UTF8.self).contains("of l2") })
        let uploaded = server.values.first { String(decoding: $0.body, as: UTF8.self).contains("of l4") }
        #expect(uploaded?.flags == [.seen])
        #expect(uploaded.map { String(decoding: $0.body, as: UTF8.self).contains("\r\nline 0 of l4\r\n") } == true, "LF turned back into CRLF")
        let projects = try await a.serverMessages("Projects/New")
        #expect(projects.count == 1)
        // Uploads are read from the Maildir files themselves: they stay, and nothing is left
        // in the spool.
        #expect(a.localMessages("INBOX").count == 3 && a.localMessages("Projects/New").count == 1)
        #expect(FileSystemCheck.entries(a.dir.path + "/state/spool") == [])
        // And nothing more happens on the next pass.
        let again = try await a.sync()
        #expect(!again.standardOutput.contains("work/"), "\(again.standardOutput)")
    }

    @Test(arguments: ServerKind.allCases)
    func flagsMergeThreeWays(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("m1")], flags: [.seen])
        _ = try await a.sync()
        // Server adds \Flagged, the reader removes S and adds R: all three changes survive.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.store(UIDSet([UID(1)]), .add, [.flagged])
        await s.logout()
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try inbox.scan().messages[0]
        _ = try inbox.setFlags(file, to: MessageFlags("Rx"))   // x: a letter without IMAP meaning
        _ = try await a.sync()
        let server = try await a.serverMessages("INBOX")
        #expect(server[1]?.flags == [.flagged, .answered])
        #expect(a.localMessages("INBOX").first?.flags == MessageFlags("FRx"))
    }

    @Test(arguments: ServerKind.allCases)
    func deletePoliciesAndDirections(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        // delete = "pull": a local deletion is not carried to the server, and the message is
        // not downloaded again either.
        let a = try SyncAccount(fixture, extra: "delete = \"pull\"")
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...3).map { mail("d\($0)") })
        _ = try await a.sync()
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        try inbox.remove(try inbox.scan().messages[0])
        _ = try await a.sync()
        _ = try await a.sync()
        #expect(try await a.serverMessages("INBOX").count == 3)
        #expect(a.localMessages("INBOX").count == 2)

        // direction = "pull": local novelties never reach the server.
        let b = try SyncAccount(fixture, extra: "direction = \"pull\"")
        defer { b.dir.remove() }
        try await b.append("INBOX", [mail("p1")])
        try b.deliverLocally("INBOX", mail("local-only"))
        _ = try await b.sync()
        #expect(try await b.serverMessages("INBOX").count == 1)
        #expect(b.localMessages("INBOX").count == 2)

        // direction = "push": server novelties never reach the Maildir.
        let c = try SyncAccount(fixture, extra: "direction = \"push\"")
        defer { c.dir.remove() }
        try c.deliverLocally("INBOX", mail("up1"))
        try await c.append("INBOX", [mail("server-only")])
        _ = try await c.sync()
        #expect(try await c.serverMessages("INBOX").count == 2)
        #expect(c.localMessages("INBOX").count == 1)
    }

    @Test(arguments: ServerKind.allCases)
    func massDeletionGuardHoldsUntilForced(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...12).map { mail("g\($0)") })
        _ = try await a.sync()
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.deleteMessages(UIDSet(ranges: [1...8]))
        await s.logout()
        for _ in 0..<2 {
            let held = try await a.sync()
            #expect(held.status == 1)
            #expect(held.standardError.contains("work/INBOX") && held.standardError.contains("mailmirror sync --force"))
            #expect(a.localMessages("INBOX").count == 12, "held deletions stay held")
            #expect(try await a.serverMessages("INBOX").count == 4, "survivors are not re-uploaded")
        }
        let forced = try await a.sync(["--force"])
        #expect(forced.status == 0)
        #expect(a.localMessages("INBOX").count == 4)
    }

    @Test(arguments: ServerKind.allCases)
    func foldersDeletedOnOneSide(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Empty", [])
        try await a.append("Full", [mail("f1")])
        _ = try await a.sync()
        // Deleted on the server: "Empty" goes locally too; "Full" (deleted on the server
        // after its message was removed there) is empty locally? no: it holds a message
        // locally, so it is recreated on the server.
        let s = try await a.session()
        try await s.delete(a.serverFolder("Empty"))
        try await s.delete(a.serverFolder("Full"))
        await s.logout()
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardOutput)\(out.standardError)")
        #expect(!MaildirStore(root: a.maildir, layout: .fs).folder(["Empty"]).exists)
        #expect(try await a.serverMessages("Full").count == 1)
    }

    @Test(arguments: ServerKind.allCases)
    func statusInTextAndJSON(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let before = try await runMailmirror(["status", "--config", a.config])
        #expect(before.status == 0 && before.standardOutput.contains("work (imap): never synced"))
        try await a.append("INBOX", [mail("s1"), mail("s2")])
        try await a.append("Archive", [mail("s3")])
        _ = try await a.sync()
        try a.deliverLocally("INBOX", mail("s4"))   // not synced yet: 3 local, 2 on the server
        let text = try await runMailmirror(["status", "--config", a.config])
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("work (imap): synced, last sync 20"))
        #expect(text.standardOutput.contains("  INBOX: 3 local, 2 on the server"))
        #expect(text.standardOutput.contains("  Archive: 1 local, 1 on the server"))
        let json = try await runMailmirror(["status", "--config", a.config, "--json"])
        #expect(json.status == 0)
        let check = try await runCommand(["python3", "-c", """
            import json, sys
            d = json.loads(sys.argv[1])
            a = d["accounts"][0]
            assert a["name"] == "work" and a["protocol"] == "imap" and a["last_error"] is None, a
            f = {x["name"]: x for x in a["folders"]}
            assert f["INBOX"]["local_messages"] == 3 and f["INBOX"]["remote_messages"] == 2 and f["INBOX"]["pending"] == 0, f
            assert f["Archive"]["last_sync"].endswith("Z") and f["Archive"]["last_error"] is None, f
            print("ok")
            """, json.standardOutput])
        #expect(check.standardOutput == "ok\n", "\(check.standardError)")
    }

    @Test(arguments: ServerKind.allCases)
    func maxMessageSizeAndMaxAgeLeaveMessagesOnTheServer(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture, extra: "max_message_size = \"4K\"\nmax_age = \"30d\"")
        defer { a.dir.remove() }
        let s = try await a.session()
        let now = Int64(time(nil))
        _ = try await s.append([
            AppendMessage(flags: [], internalDate: now - 86400, source: BytesMessageSource(mail("recent"))),
            AppendMessage(flags: [], internalDate: now - 400 * 86400, source: BytesMessageSource(mail("old"))),
            AppendMessage(flags: [], internalDate: now - 86400, source: BytesMessageSource(mail("big", lines: 300))),
        ], to: .inbox)
        await s.logout()
        try a.deliverLocally("INBOX", mail("local-old"))   // local mail of any age is kept and uploaded
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardError)")
        #expect(out.standardOutput.contains("work/INBOX: 1 down, 1 up, 1 too large, left on the server"), "\(out.standardOutput)")
        let local = a.localMessages("INBOX").map { String(decoding: $0.body, as: UTF8.self) }
        #expect(local.contains { $0.contains("of recent") } && !local.contains { $0.contains("of old") } && !local.contains { $0.contains("of big") })
        let status = try await runMailmirror(["status", "--config", a.config])
        #expect(status.standardOutput.contains("1 too large left on the server (UID 3: "), "\(status.standardOutput)")
        let json = try await runMailmirror(["status", "--config", a.config, "--json"])
        #expect(json.standardOutput.contains("\"skipped\":[{\"uid\":3,\"size\":"))
        // An incremental pass (CHANGEDSINCE: the skipped message did not change) keeps it
        // listed and still leaves both on the server.
        let s2 = try await a.session()
        _ = try await s2.append([AppendMessage(flags: [], internalDate: Int64(time(nil)), source: BytesMessageSource(mail("later")))], to: .inbox)
        await s2.logout()
        let again = try await a.sync()
        #expect(again.status == 0, "\(again.standardError)")
        #expect(again.standardOutput.contains("work/INBOX: 1 down, 1 too large, left on the server"), "\(again.standardOutput)")
        let after = try await runMailmirror(["status", "--config", a.config])
        #expect(after.standardOutput.contains("1 too large left on the server (UID 3: "), "\(after.standardOutput)")
        #expect(a.localMessages("INBOX").count == 3)   // recent, local-old, later
    }

    @Test(arguments: ServerKind.allCases)
    func dryRunChangesNothing(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("x1")])
        try a.deliverLocally("INBOX", mail("x2"))
        let before = try await a.snapshot()
        let out = try await a.sync(["--dry-run"])
        #expect(out.status == 0, "\(out.standardError)")
        #expect(out.standardOutput.contains("work/INBOX: would be 1 down, 1 up"), "\(out.standardOutput)")
        #expect(try await a.snapshot() == before)
        #expect(!FileSystemCheck.exists(a.dir.path + "/state/state.sqlite3"))
        #expect(try await a.serverMessages("INBOX").count == 1)
    }
}

enum FileSystemCheck {
    static func exists(_ path: String) -> Bool { var st = stat(); return stat(path, &st) == 0 }
    static func isDirectory(_ path: String) -> Bool { var st = stat(); return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR }
    /// The names in a directory (without `.` and `..`), nil when it cannot be read.
    static func entries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // Read the name in place: copying the whole dirent reads past a short record.
            let start = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let name = String(cString: start.assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
