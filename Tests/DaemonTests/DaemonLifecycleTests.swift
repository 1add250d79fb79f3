#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import Transport
import TestSupport

@Suite(.serialized) struct DaemonLifecycleTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    @Test func sdNotifyProtocol() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        let socketPath = a.dir.path + "/notify"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in socketPath.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log",
                                       environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
        var received: [String] = []
        func drain() {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                received.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
        let deadline = monotonicSeconds() + 15
        while monotonicSeconds() < deadline {
            drain()
            let all = received.joined(separator: "\n")
            if all.contains("READY=1") && all.contains("STATUS=") && all.contains("WATCHDOG=1") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let start = monotonicSeconds()
        daemon.process.kill(SIGTERM)
        let status = daemon.process.wait(timeout: 10)
        drain()
        let all = received.joined(separator: "\n")
        #expect(all.contains("READY=1"), "\(all)")
        #expect(all.contains("STATUS="))
        #expect(all.contains("WATCHDOG=1"))
        #expect(all.contains("STOPPING=1"))
        #expect(status == 0)
        #expect(monotonicSeconds() - start < 5)
    }

    /// One account that cannot log in must not hold back the "ready" line (scripts and
    /// users wait for it): it comes once every account's first pass is over, naming the one
    /// that failed; the working account is synced.
    @Test func readyComesWhenOneAccountFails() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        try await a.session().append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(Array("Subject: r\r\n\r\nr\r\n".utf8)))], to: .inbox)
        let broken = a.accountText(name: "broken", user: (a.user.name, "wrong-password"), maildir: a.dir.path + "/broken")
        a.write(more: broken)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready: first sync of 1 of 2 account(s) done; broken (", timeout: 60), "\(readFile(daemon.log) ?? "")")
        #expect(readFile(daemon.log)?.contains("failed and is retried; watching for changes") == true)
        #expect(a.localCount() == 1)
    }

    /// A second daemon on the same state would run every account twice over: it refuses,
    /// naming the first one's pid, and the first one goes on.
    @Test func secondDaemonOnTheSameStateRefuses() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        let first = try RunningDaemon(config: a.config, log: a.dir.path + "/first.log")
        defer { first.stop() }
        #expect(try await first.waitForLog("ready"), "\(readFile(first.log) ?? "")")
        let second = try await runMailmirror(["daemon", "--config", a.config], timeout: 30)
        #expect(second.status == 1)
        #expect(second.standardError.contains("another mailmirror daemon (pid \(first.process.pid)) runs on this state"), "\(second.standardError)")
        #expect(!first.process.hasExited)
    }

    @Test func sigtermDuringALargeInitialDownloadThenSyncCompletes() async throws {
        // The download stalls halfway (a proxy holds the server's bytes for 30 s), so the
        // SIGTERM lands in the middle of it however fast or loaded the machine is.
        let proxy = try FaultProxy(targetPort: fixture.imapsPort, imapFraming: false)
        defer { proxy.stop() }
        proxy.stall(.toClient, afterBytes: 12 << 20, seconds: 30)
        let a = try DaemonAccount(fixture, port: proxy.port)
        defer { a.dir.remove() }
        let s = try await a.session()
        // 3,000 messages of ~8 KB: a download of seconds, not one the poll below could miss
        // under the whole suite's load.
        let filler = Array(String(repeating: "filler line of a larger message body, to make it take time\r\n", count: 130).utf8)
        let messages = (0..<3000).map { AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("big\($0)") + filler)) }
        for start in stride(from: 0, to: messages.count, by: 200) {
            _ = try await s.append(Array(messages[start..<min(start + 200, messages.count)]), to: .inbox)
        }
        await s.logout()
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        // Polled on a Dispatch thread, not the cooperative pool: under the suite's load a
        // Task.sleep can oversleep the whole download.
        let process = daemon.process
        try await runBlocking(label: "test.wait-download") {
            let deadline = monotonicSeconds() + 60
            while (a.localCount() < 200 || proxy.stalledConnections == 0) && monotonicSeconds() < deadline && !process.hasExited { usleep(2000) }
        }
        #expect(a.localCount() < 3000, "the download was still running when SIGTERM came")
        let start = monotonicSeconds()
        daemon.process.kill(SIGTERM)
        let status = daemon.process.wait(timeout: 15)
        let elapsed = monotonicSeconds() - start
        print("daemon: SIGTERM during the initial download, exit \(status.map(String.init) ?? "signal") after \(Int(elapsed * 1000)) ms with \(a.localCount()) of 3000 local")
        #expect(status == 0)
        #expect(elapsed < 5)
        let sync = try await runMailmirror(["sync", "--config", a.config])
        #expect(sync.status == 0, "\(sync.standardError)")
        let store = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let bodies = try store.scan().messages.map { readFile(store.filePath(of: $0)) ?? "" }
        #expect(bodies.count == 3000)
        #expect(Set(bodies).count == 3000, "no duplicates")
    }

    @Test func sighupAddsAnAccountAndABrokenConfigKeepsTheOldOne() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        let other = try fixture.makeUser("second")
        let o = try await a.session(other)
        _ = try await o.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("other1")))], to: .inbox)
        await o.logout()
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"))
        let otherMaildir = a.dir.path + "/other-mail"
        a.write(more: a.accountText(name: "second", user: other, maildir: otherMaildir))
        daemon.process.kill(SIGHUP)
        let arrived = await measure(timeout: 15) { a.localCount(root: otherMaildir) == 1 }
        #expect(arrived != nil, "the added account synced after SIGHUP: \(readFile(daemon.log) ?? "")")

        writeFile(a.config, "[general]\nthis is not toml\n", mode: 0o600)
        daemon.process.kill(SIGHUP)
        #expect(try await daemon.waitForLog("is not valid, keeping the running configuration"))
        #expect(!daemon.process.hasExited)
        // The old configuration still works: new mail still arrives.
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("after-broken")))], to: .inbox)
        await s.logout()
        #expect(await measure(timeout: 10) { a.localCount() == 1 } != nil)
        // status shows the running daemon's view.
        a.write(more: a.accountText(name: "second", user: other, maildir: otherMaildir))
        let status = try await runMailmirror(["status", "--config", a.config])
        #expect(status.standardOutput.contains("daemon: connected (push: NOTIFY)"), "\(status.standardOutput)")
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        let server = try await DovecotFixture.start(compress: true)
        let a = try DaemonAccount(server)
        defer { a.dir.remove(); server.stop() }
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"))
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        // While the server is down a message is delivered here: it must reach the server once
        // the daemon is back in (nothing made while it was away is missed, either side).
        server.stop()
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let w = try inbox.beginDelivery()
        try w.write(Array(daemonMail("while-down").filter { $0 != 13 }))
        _ = try inbox.deliver(w, flags: MessageFlags())
        try await server.restart(downtime: 2)
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("after-restart")))], to: .inbox)
        let arrived = await measure(timeout: 30) { a.localCount() == 2 }
        print("daemon: message appended after a server restart arrived after \(arrived.map { "\(Int($0 * 1000)) ms" } ?? "—")")
        #expect(arrived != nil, "\(readFile(daemon.log) ?? "")")
        var uploaded = false
        let deadline = monotonicSeconds() + 30
        while !uploaded && monotonicSeconds() < deadline {
            uploaded = (try await s.status(.inbox, items: [.messages]).messages ?? 0) == 2
            if !uploaded { try await Task.sleep(for: .milliseconds(100)) }
        }
        await s.logout()
        #expect(uploaded, "the message delivered while the server was down reached it: \(readFile(daemon.log) ?? "")")
    }

    /// The user unit and the shard template: the keys the daemon relies on, and
    /// `systemd-analyze verify --user` finds nothing wrong (with a runtime directory of its
    /// own, without which it cannot start its manager and would check nothing).
    @Test(arguments: ["mailmirror.service", "mailmirror@.service"]) func systemdUnitHasWhatItNeeds(_ name: String) async throws {
        let unit = readFile(repositoryRoot + "/systemd/" + name) ?? ""
        var keys: [String: String] = [:]
        var sections: [String] = []
        for line in unit.split(separator: "\n") where !line.hasPrefix("#") {
            if line.hasPrefix("[") { sections.append(String(line)); continue }
            if let eq = line.firstIndex(of: "=") { keys[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        #expect(sections == ["[Unit]", "[Service]", "[Install]"])
        #expect(keys["Type"] == "notify")
        #expect(keys["ExecStart"]?.contains("mailmirror daemon") == true)
        #expect(keys["ExecReload"]?.contains("-HUP") == true)
        #expect(keys["Restart"] == "on-failure")
        #expect(keys["WatchdogSec"].flatMap { Int($0) }.map { $0 > 0 } == true)
        #expect(keys["NoNewPrivileges"] == "yes" && keys["PrivateTmp"] == "yes")
        #expect(keys["WantedBy"] == "default.target")
        if name.contains("@") {
            #expect(keys["ExecStart"]?.hasSuffix("daemon --config %E/mailmirror/%i.toml") == true)
            #expect(keys["Environment"] == "XDG_STATE_HOME=%S/mailmirror-shards/%i", "each shard has a state of its own")
        }
        // Not skipped quietly: scripts/install-deps installs it (Debian `systemd`).
        let hasAnalyze = try await runCommand(["sh", "-c", "command -v systemd-analyze"]).status == 0
        #expect(hasAnalyze, "systemd-analyze is missing: run scripts/install-deps (Debian package systemd)")
        guard hasAnalyze else { return }
        let dir = TemporaryDirectory("mailmirror-unit")
        defer { dir.remove() }
        // A template is verified as an instance of it.
        let copy = dir.path + "/" + name.replacing("@.", with: "@shard.")
        writeFile(copy, unit)
        let analyze = try await runCommand(["sh", "-c", "mkdir -p \(dir.path)/run && chmod 700 \(dir.path)/run && XDG_RUNTIME_DIR=\(dir.path)/run systemd-analyze verify --user \(copy) 2>&1 | grep -v 'mailmirror is not executable' || true"])
        #expect(!analyze.standardOutput.contains("Failed to initialize manager"), "verify must run: \(analyze.standardOutput)")
        #expect(analyze.standardOutput.allSatisfy { $0.isWhitespace }, "\(analyze.standardOutput)")
    }
}
