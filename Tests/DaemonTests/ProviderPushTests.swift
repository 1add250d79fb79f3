#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// Push on a server without NOTIFY that caps connections per user, like Outlook/Exchange
/// (16), Gmail (15) or Dovecot (10 per address): IDLE on as many folders as
/// `max_connections` leaves beside the sync pass, the rest by the poll (docs/servers.md).
@Suite(.serialized) struct ProviderPushTests {
    static let folders = ["A", "B", "C", "D", "E", "F"]

    /// A fresh server, an account with INBOX and six more folders, IDLE wanted on all.
    func setUp(serverOptions: [String], extra: String) async throws -> (DovecotFixture, DaemonAccount) {
        let server = try await DovecotFixture.start(compress: true, options: ["--no-notify"] + serverOptions)
        let a = try DaemonAccount(server, extra: "idle = [\"*\"]\nconnections = 1\n" + extra)
        // Polled folders are checked every 2 s (not the hour DaemonAccount sets).
        writeFile(a.config, readFile(a.config)!.replacing("poll_interval = \"1h\"", with: "poll_interval = \"2s\""), mode: 0o600)
        let s = try await a.session()
        for f in Self.folders { try await s.create(MailboxName(f)) }
        await s.logout()
        return (server, a)
    }

    /// `max_connections = 3` with one sync connection: IDLE on two folders (INBOX first),
    /// the log says which are polled, and mail reaches both kinds.
    @Test func idleStaysWithinMaxConnections() async throws {
        let (server, a) = try await setUp(serverOptions: [], extra: "max_connections = 3")
        defer { server.stop(); a.dir.remove() }
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        #expect(try await daemon.waitForLog("IDLE on 2 of 7 folders (max_connections = 3"), "\(readFile(daemon.log) ?? "")")
        try await server.deliver(daemonMail("to-inbox"), to: "INBOX", user: a.user.name)
        try await server.deliver(daemonMail("to-f"), to: "F", user: a.user.name)
        #expect(await measure(timeout: 30) { a.localCount("INBOX") == 1 && a.localCount("F") == 1 } != nil, "\(readFile(daemon.log) ?? "")")
        #expect(!(readFile(daemon.log) ?? "").contains("refused"), "no connection was refused")
    }

    /// Dovecot says "* OK Still here" in IDLE every 2 minutes (every second here): a keepalive,
    /// not a change. It used to end IDLE with an event no folder claimed, and that asked for a
    /// pass of every folder — each keepalive, on each IDLE connection (0.7 CPU-seconds a minute
    /// for 50 accounts idling on 4 folders each, `Benchmarks/many-accounts`). Now it does not
    /// even end IDLE.
    @Test func keepalivesInIdleAskForNoPass() async throws {
        let (server, a) = try await setUp(serverOptions: ["--idle-notify=1"], extra: "")
        defer { server.stop(); a.dir.remove() }
        // The server does send them, and a session's IDLE does not end for them.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        let events = try await s.idle(timeout: 3.5)
        #expect(events.isEmpty, "\(events)")
        #expect(await s.keepalivesSeen >= 2)
        await s.logout()

        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        let before = readFile(daemon.log) ?? ""
        try await Task.sleep(for: .seconds(5))   // five keepalives on each of the seven IDLE connections
        let during = String((readFile(daemon.log) ?? "").dropFirst(before.count))
        // (IDLE ends empty every poll_interval, 2 s here, to be renewed: that is not an event.)
        let woken = during.split(separator: "\n").filter { $0.contains("IDLE returned") && !$0.contains("IDLE returned 0 event") }
        #expect(woken.isEmpty, "\(during)")
        #expect(!during.contains("pass requested: server change"), "\(during)")
        // A real change still asks for a pass, of that folder.
        try await server.deliver(daemonMail("after-keepalives"), to: "C", user: a.user.name)
        #expect(await measure(timeout: 30) { a.localCount("C") == 1 } != nil, "\(readFile(daemon.log) ?? "")")
    }

    /// The server allows fewer connections than `max_connections` says (5 per user here,
    /// 10 configured): the refused IDLE connections fall back to the poll, room is left for
    /// the sync pass, and mail still arrives everywhere; the log says what to set.
    @Test func refusedIdleConnectionsFallBackToThePoll() async throws {
        let (server, a) = try await setUp(serverOptions: ["--max-connections=5"], extra: "")
        defer { server.stop(); a.dir.remove() }
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready", timeout: 60), "\(readFile(daemon.log) ?? "")")
        // Which connection the server refuses depends on timing: one of the push's (IDLE
        // stays on fewer) or the sync pass's (the push then gives one back). Either way the
        // log says what to set.
        #expect(try await daemon.waitForLog("max_connections to what the server allows", timeout: 60), "\(readFile(daemon.log) ?? "")")
        let said = readFile(daemon.log) ?? ""
        #expect(said.contains("the server refused an IDLE connection") || said.contains("the sync pass could not connect beside"), "\(said)")
        for (i, f) in (["INBOX"] + Self.folders).enumerated() {
            try await server.deliver(daemonMail("m\(i)"), to: f, user: a.user.name)
        }
        let all = await measure(timeout: 60) { (["INBOX"] + Self.folders).allSatisfy { a.localCount($0) == 1 } }
        #expect(all != nil, "every folder got its message; daemon log:\n\(readFile(daemon.log) ?? "")")
        // The sync pass found a connection: no pass failed for want of one after push settled.
        let log = readFile(daemon.log) ?? ""
        #expect(!log.contains("check username and password_command"), "a refusal is not a wrong password: \(log)")
    }
}
