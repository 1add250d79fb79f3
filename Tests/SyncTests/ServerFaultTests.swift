#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import State
import Support
import TestSupport
import Dispatch

/// A real server that says no part-way through a pass (Dovecot with a storage quota): a
/// clear error, what went is recorded and counted, nothing is lost or sent twice, and the
/// rest of the account still syncs.
@Suite struct ServerFaultTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    @Test func overQuotaPartWayThroughUploads() async throws {
        let a = try SyncAccount(fixture, userFields: "userdb_mail_plugins=quota userdb_quota=count userdb_quota_vsizes=yes userdb_quota_rule=*:storage=60K")
        defer { a.dir.remove() }
        try await a.append("News", (0..<3).map { mail("news\($0)") })
        let filler = String(repeating: "quota filler line\r\n", count: 45)
        for i in 0..<100 { try a.deliverLocally("INBOX", Array("Message-ID: <q\(i)@quota.test>\r\nSubject: \(i)\r\n\r\n\(filler)".utf8)) }

        let first = try await a.sync()
        #expect(first.status == 1, "\(first.standardOutput)\(first.standardError)")
        #expect(first.standardError.contains("OVERQUOTA") || first.standardError.lowercased().contains("quota"), "\(first.standardError)")
        #expect(a.localMessages("News").count == 3, "the other folder still synced: \(first.standardOutput)")
        #expect(a.localMessages("INBOX").count == 100, "nothing local is lost")
        let stored = try await a.serverMessages("INBOX").count
        #expect(stored > 0 && stored < 100, "the quota stopped the uploads part-way (\(stored))")
        #expect(first.standardOutput.contains("work/INBOX: \(stored) up, then failed"), "the count is what went: \(first.standardOutput)")
        let state = try StateStore.open(directory: a.dir.path + "/state")
        let folder = try state.folder(of: try state.account(named: "work", protocol: "imap"), remoteName: Array("INBOX".utf8), localName: "INBOX")
        #expect(try state.pairs(in: folder.id).count == stored, "what went is paired")

        let again = try await a.sync()
        #expect(again.status == 1)
        #expect(try await a.serverMessages("INBOX").count == stored, "nothing sent twice: \(again.standardOutput)")
        #expect(ids(try await a.serverMessages("INBOX").values.map(\.body)).count == Set(ids(try await a.serverMessages("INBOX").values.map(\.body))).count)
    }

    /// The server restarts in the middle of a download and of an upload (the proxy holds the
    /// connection still meanwhile, so the restart lands mid-transfer every time). Dovecot lets
    /// a running session finish, so the pass may complete; either way it ends cleanly or with
    /// an error naming the server, and a rerun leaves each message exactly once on both
    /// sides. (A connection that really breaks mid-transfer is `scripts/torture`'s cuts.)
    @Test func serverRestartMidFetchAndMidAppend() async throws {
        let server = try await DovecotFixture.start(compress: false)
        defer { server.stop() }
        for direction in [FaultProxy.Direction.toClient, .toServer] {
            let proxy = try FaultProxy(targetPort: server.imapsPort, imapFraming: false)
            defer { proxy.stop() }
            let a = try SyncAccount(server, extra: "", userFields: "", plainPort: nil)
            defer { a.dir.remove() }
            // Through the proxy, still TLS: the same config with the proxy's port.
            let text = readFile(a.config)!.replacing("port = \(server.imapsPort)", with: "port = \(proxy.port)")
            writeFile(a.config, text, mode: 0o600)
            let filler = String(repeating: "restart filler line\r\n", count: 400)
            let bodies = (0..<300).map { Array("Message-ID: <r\(direction)\($0)@restart.test>\r\nSubject: \($0)\r\n\r\n\(filler)".utf8) }
            if direction == .toClient { try await a.append("INBOX", bodies) } else { for b in bodies { try a.deliverLocally("INBOX", b) } }
            proxy.stall(direction, afterBytes: 1 << 20, seconds: 4)
            let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", a.config], outputPath: a.dir.path + "/log")
            let deadline = monotonicSeconds() + 60
            while proxy.stalledConnections == 0 && !process.hasExited && monotonicSeconds() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(proxy.stalledConnections == 1, "\(direction): the transfer was under way")
            try await server.restart(downtime: 0.5)
            let status = await runBlockingWait(process)
            let log = readFile(a.dir.path + "/log") ?? ""
            // Either the pass reconnected and finished, or it failed naming the server.
            #expect(status == 0 || log.contains("127.0.0.1"), "\(direction): \(log)")
            print("server restart mid-\(direction == .toClient ? "FETCH" : "APPEND"): the pass exited \(status.map(String.init) ?? "by a signal"): \(log.split(separator: "\n").filter { !$0.contains("warning: account") }.prefix(3))")
            let rerun = try await a.sync()
            #expect(rerun.status == 0, "\(direction): \(rerun.standardOutput)\(rerun.standardError)")
            let remote = try await a.serverMessages("INBOX").values.map(\.body)
            let local = a.localMessages("INBOX").map(\.body)
            #expect(remote.count == 300 && Set(ids(remote)).count == 300, "\(direction): once on the server (\(remote.count))")
            #expect(local.count == 300 && Set(ids(local)).count == 300, "\(direction): once here (\(local.count))")
            let same = Set(remote.map(lf)) == Set(local)
            #expect(same, "\(direction): the same bytes on both sides")
        }
    }

    func runBlockingWait(_ process: SpawnedProcess) async -> Int32? {
        await withCheckedContinuation { c in
            DispatchQueue(label: "test.wait").async { process.wait(); c.resume(returning: process.status) }
        }
    }
}
