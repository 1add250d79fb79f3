#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import Transport
import TestSupport

/// A running `mailmirror daemon` for one test account.
final class RunningDaemon: @unchecked Sendable {
    let process: SpawnedProcess
    let log: String

    init(config: String, log: String, environment: [String: String] = [:]) throws {
        self.log = log
        process = try SpawnedProcess([mailmirrorBinary, "daemon", "--config", config], environment: environment, outputPath: log)
    }

    /// Waits (bounded) until the log contains `text`.
    func waitForLog(_ text: String, timeout: Double = 30) async throws -> Bool {
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            if readFile(log)?.contains(text) == true { return true }
            if process.hasExited { return readFile(log)?.contains(text) == true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Waits (bounded) until the daemon reports its push connection up.
    func waitForPush(stateDirectory: String, timeout: Double = 30) async throws -> Bool {
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            if readFile(stateDirectory + "/daemon.status")?.contains("\tconnected\t") == true { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func stop() {
        process.kill(SIGTERM)
        process.wait(timeout: 10)
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns the seconds it took, or nil.
func measure(timeout: Double = 3, _ condition: () async throws -> Bool) async rethrows -> Double? {
    let start = monotonicSeconds()
    while monotonicSeconds() - start < timeout {
        if try await condition() { return monotonicSeconds() - start }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition() ? monotonicSeconds() - start : nil
}

struct DaemonAccount {
    let fixture: DovecotFixture
    let user: (name: String, password: String)
    let dir: TemporaryDirectory
    var maildir: String { dir.path + "/mail" }
    var config: String { dir.path + "/config.toml" }

    /// Connect here instead of the fixture's IMAPS port (a raw `FaultProxy` in front of it: TLS passes through).
    let port: UInt16?

    init(_ fixture: DovecotFixture, extra: String = "", port: UInt16? = nil) throws {
        self.fixture = fixture
        self.port = port
        user = try fixture.makeUser("daemon")
        dir = TemporaryDirectory("mailmirror-daemon")
        write(extra: extra)
    }

    func accountText(name: String = "work", extra: String = "", user: (name: String, password: String)? = nil, maildir: String? = nil) -> String {
        let u = user ?? self.user
        return """
        [[account]]
        name = "\(name)"
        host = "127.0.0.1"
        port = \(port ?? fixture.imapsPort)
        ca_file = "\(fixture.caFile)"
        username = "\(u.name)"
        password_command = "echo \(u.password)"
        maildir = "\(maildir ?? self.maildir)"
        poll_interval = "1h"
        \(extra)

        """
    }

    func write(extra: String = "", more: String = "") {
        writeFile(config, "[general]\nstate_dir = \"\(dir.path)/state\"\nlog_level = \"debug\"\n\n" + accountText(extra: extra) + more, mode: 0o600)
    }

    func session(_ u: (name: String, password: String)? = nil) async throws -> IMAPSession {
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile)
        let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
        try await s.login(username: (u ?? user).name, secret: (u ?? user).password)
        return s
    }

    func localCount(_ folder: String = "INBOX", root: String? = nil) -> Int {
        (try? MaildirStore(root: root ?? maildir, layout: .fs).folder([folder]).scan().messages.count) ?? 0
    }
}

func daemonMail(_ id: String) -> [UInt8] {
    Array("From: a@example.com\r\nSubject: \(id)\r\nMessage-ID: <\(id)@mailmirror.test>\r\n\r\nbody of \(id)\r\n".utf8)
}

@Suite(.serialized) struct DaemonPushTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    func pushBothWays(push: String) async throws {
        let a = try DaemonAccount(fixture, extra: "push = \"\(push)\"")
        defer { a.dir.remove() }
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("first")))], to: .inbox)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(a.localCount() == 1)

        // Server → Maildir: a new message appears locally (once the push connection is up).
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("second")))], to: .inbox)
        // Generous deadlines: the test suite runs everything at once on two cores; the latency
        // itself is Benchmarks/push-latency's to measure.
        let down = await measure(timeout: 15) { a.localCount() == 2 }
        print("push \(push): server → Maildir \(down.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(down != nil, "a message appended on the server reaches the Maildir within 15 s; daemon log:\n\(readFile(daemon.log) ?? "")")

        // Maildir → server: a flag set by a reader, then a new file.
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try inbox.scan().messages.first { (readFile(inbox.filePath(of: $0)) ?? "").contains("body of first") }!
        _ = try inbox.setFlags(file, to: MessageFlags("F"))
        _ = try await s.select(.inbox)
        let flag = try await measure(timeout: 15) {
            let r = try await s.fetch(UIDSet([UID(1)]), items: [.uid, .flags])
            return r.messages.first?.flags?.contains(.flagged) == true
        }
        print("push \(push): Maildir flag → server \(flag.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(flag != nil, "a flag set locally reaches the server within 15 s")
        let w = try inbox.beginDelivery()
        try w.write(Array("From: b@example.com\nSubject: local\nMessage-ID: <local@mailmirror.test>\n\nlocal body\n".utf8))
        _ = try inbox.deliver(w, flags: MessageFlags())
        let up = try await measure(timeout: 15) {
            let all = try await s.search([.all])
            return all.count == 3
        }
        print("push \(push): new Maildir file → server \(up.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(up != nil, "a new local file is APPENDed within 15 s")
        await s.logout()
    }

    @Test func pushWithNotify() async throws { try await pushBothWays(push: "auto") }

    @Test func onNewMailHookRunsAfterNewMail() async throws {
        let markerDir = TemporaryDirectory()
        defer { markerDir.remove() }   // (it was left in /tmp after every run)
        let marker = markerDir.path + "/hook-ran"
        let a = try DaemonAccount(fixture, extra: "on_new_mail = \"echo hook output; date >> \(marker)\"")
        defer { a.dir.remove() }
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"))
        #expect(readFile(marker) == nil, "no new mail yet: the hook did not run")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("hooked")))], to: .inbox)
        await s.logout()
        #expect(await measure(timeout: 5) { readFile(marker) != nil } != nil)
        #expect(try await daemon.waitForLog("on_new_mail: hook output"))
    }
    @Test func pushWithIdle() async throws { try await pushBothWays(push: "idle") }

    /// The Maildir root replaced under a running daemon (a disk mounted over the mount point,
    /// the folder moved away and made again): its watches saw only the old directory. After
    /// the next pass it watches the new one, and a local change there is pushed again.
    @Test func replacedMaildirRootIsWatchedAgain() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("kept")))], to: .inbox)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        // "Remount": the same content in a new directory where the old one was.
        #expect(try await runCommand(["sh", "-c", "mv '\(a.maildir)' '\(a.maildir).old' && cp -a '\(a.maildir).old' '\(a.maildir)'"]).status == 0)
        // A server change brings the next pass.
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("next")))], to: .inbox)
        #expect(await measure(timeout: 10) { a.localCount() == 2 } != nil, "\(readFile(daemon.log) ?? "")")
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try inbox.scan().messages.first { (readFile(inbox.filePath(of: $0)) ?? "").contains("body of kept") }!
        _ = try inbox.setFlags(file, to: MessageFlags("F"))
        _ = try await s.select(.inbox)
        let flag = try await measure(timeout: 10) {
            let r = try await s.fetch(UIDSet([UID(1)]), items: [.uid, .flags])
            return r.messages.first?.flags?.contains(.flagged) == true
        }
        #expect(flag != nil, "a flag set in the new Maildir reaches the server; daemon log:\n\(readFile(daemon.log) ?? "")")
        await s.logout()
    }
}
