#if canImport(Glibc)
import Glibc
#endif
import Support
import Dispatch

/// A private Dovecot started for this test process by `scripts/dovecot-fixture`, on free
/// ports of 127.0.0.1, with its own CA; stopped by its pid when the process exits.
///
/// Tests share one instance and isolate themselves by user: `makeUser()` gives each test
/// a fresh mailbox.
public final class DovecotFixture: MailTestServer {
    public var kind: ServerKind { .dovecot }
    public var pop3PortIfAny: UInt16? { pop3Port }
    public var pop3sPortIfAny: UInt16? { pop3sPort }

    public let directory: String
    public let caFile: String
    public let imapPort: UInt16
    public let imapsPort: UInt16
    public let pop3Port: UInt16
    public let pop3sPort: UInt16
    public let pid: Int32
    /// Always 127.0.0.1: nothing in the tests leaves the loopback interface.
    public let host = "127.0.0.1"

    /// Started once per test process, on first use.
    private static let sharedStart = Task { try await start(compress: true) }

    /// The instance of this process, started on first use. Async so that tests waiting for
    /// it do not block the (two-thread) cooperative pool that other tests run on.
    public static func shared() async throws -> DovecotFixture {
        try await sharedStart.value
    }

    /// Starts a new instance on a Dispatch thread (it blocks for about a second).
    /// `basic`: the server advertises plain IMAP4rev1 (no CONDSTORE, QRESYNC, LIST-STATUS,
    /// ESEARCH, NOTIFY), for the paths taken on servers without them. `courier`: folders
    /// live under the prefix "INBOX." with the delimiter ".", as on Courier. `noUIDPlus`:
    /// `basic`, and without UIDPLUS either.
    /// `options`: more `dovecot-fixture start` options, e.g. `--gmail`, `--no-notify`.
    public static func start(compress: Bool, basic: Bool = false, courier: Bool = false, noUIDPlus: Bool = false,
                             options more: [String] = []) async throws -> DovecotFixture {
        try await runBlocking(label: "fixture.start") { try startBlocking(compress: compress, basic: basic, courier: courier, noUIDPlus: noUIDPlus, options: more) }
    }

    /// Starts a new instance (e.g. with different server options); stopped at exit too.
    public static func startBlocking(compress: Bool, basic: Bool = false, courier: Bool = false, noUIDPlus: Bool = false,
                                     options more: [String] = []) throws -> DovecotFixture {
        let options = (compress ? "" : " --no-compress") + (basic ? " --basic" : "") + (courier ? " --courier" : "") + (noUIDPlus ? " --no-uidplus" : "")
            + more.map { " " + $0 }.joined()
        let started = try startFixtureScript("dovecot-fixture", serverName: "Dovecot", portCount: 4, options: options)
        return DovecotFixture(directory: started.directory, caFile: started.caFile, ports: started.ports, pid: started.pid, options: options)
    }

    /// The `start` options it was started with (a restart uses them again).
    private let options: String

    private init(directory: String, caFile: String, ports: [UInt16], pid: Int32, options: String) {
        self.options = options
        self.directory = directory
        self.caFile = caFile
        self.imapPort = ports[0]
        self.imapsPort = ports[1]
        self.pop3Port = ports[2]
        self.pop3sPort = ports[3]
        self.pid = pid
    }

    /// A new user with an empty mailbox: (name, password).
    /// `fields`: passwd-file extra fields for this user only (e.g. a quota; see
    /// `scripts/dovecot-fixture`), passed as one shell word.
    public func makeUser(_ prefix: String, fields: String) throws -> (name: String, password: String) {
        let name = "\(prefix)\(UInt32.random(in: 100000...999999))"
        let password = "pw-\(name)"
        let result = try Subprocess.runShellBlocking("\(repositoryRoot)/scripts/dovecot-fixture adduser \(directory) \(name) \(password) '\(fields)'", timeout: 30)
        guard result.succeeded else { throw FixtureError(message: "adduser failed") }
        return (name, password)
    }

    /// Stops the server and starts it again on the same ports, with the same users and mail
    /// (to test reconnecting); `downtime` seconds pass in between.
    public func restart(downtime: Double) async throws {
        stop()
        try await Task.sleep(for: .milliseconds(Int(downtime * 1000)))
        let command = "\(repositoryRoot)/scripts/dovecot-fixture start \(directory) \(imapPort) \(imapsPort) \(pop3Port) \(pop3sPort)\(options)"
        let result = try await Subprocess.runShell(command, timeout: 60)
        guard result.succeeded else { throw FixtureError(message: "restart failed: \(String(decoding: result.standardError, as: UTF8.self))") }
    }

    /// Delivers a message into a user's folder as the mail server's delivery agent would
    /// (`doveadm save`): no IMAP connection, so it works while a test holds them all.
    public func deliver(_ message: [UInt8], to folder: String, user: String) async throws {
        let file = directory + "/deliver-\(UInt32.random(in: 0...UInt32.max)).eml"
        writeFile(file, String(decoding: message, as: UTF8.self), mode: 0o644)
        defer { unlink(file) }
        let result = try await Subprocess.runShell("doveadm -c \(directory)/dovecot.conf save -u \(user) -m \(shellQuote(folder)) < \(file)", timeout: 60)
        guard result.succeeded else { throw FixtureError(message: "doveadm save failed: \(String(decoding: result.standardError, as: UTF8.self))") }
    }

    /// Stops this instance now (it is also stopped at process exit).
    public func stop() {
        _ = try? Subprocess.runShellBlocking("\(repositoryRoot)/scripts/dovecot-fixture stop \(directory)", timeout: 30)
    }

    public func serverName(_ folder: String) -> String { folder }
}

/// What `startFixtureScript` started: its directory, CA, ports and the server's pid.
struct StartedFixture {
    var directory: String
    var caFile: String
    var ports: [UInt16]
    var pid: Int32
}

/// Runs `scripts/SCRIPT start DIR PORT… OPTIONS` in a new /tmp/mailmirror-test-* directory
/// on free ports and reads its key=value output; the server is stopped (by the script, by
/// pid) when this process exits, or by the next test process if this one dies.
func startFixtureScript(_ script: String, serverName: String, portCount: Int, options: String) throws -> StartedFixture {
    cleanUpStaleFixtures()
    var template = Array("/tmp/mailmirror-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw FixtureError(message: "mkdtemp failed: \(errno)") }
    let dir = String(cString: made)
    _ = writeFile("\(dir)/owner.pid", "\(getpid())\n")
    _ = writeFile("\(dir)/fixture.script", script + "\n")
    let path = repositoryRoot + "/scripts/" + script
    // A port found free may be taken by another fixture starting at the same moment (the
    // suite starts several): then the server cannot listen, and it is tried on new ports.
    var ports: [UInt16] = []
    var result: SubprocessResult?
    for _ in 1...3 where !(result?.succeeded ?? false) {
        if result != nil { _ = try? Subprocess.runShellBlocking("\(path) stop \(dir)", timeout: 30) }
        ports = try (0..<portCount).map { _ in try freePort() }
        let command = "\(path) start \(dir) " + ports.map(String.init).joined(separator: " ") + options
        // Generous: the first start of Cyrus or Courier downloads and unpacks its packages.
        result = try Subprocess.runShellBlocking(command, timeout: 300)
    }
    registerForStop(dir, script: script)
    guard let result else { throw FixtureError(message: "could not start the test \(serverName)") }
    let out = String(decoding: result.standardOutput, as: UTF8.self)
    guard result.succeeded else {
        throw FixtureError(message: "could not start the test \(serverName) (scripts/\(script)): \(String(decoding: result.standardError, as: UTF8.self))")
    }
    var values: [String: String] = [:]
    for line in out.split(separator: "\n") {
        if let eq = line.firstIndex(of: "=") { values[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
    }
    guard let pidText = values["pid"], let pid = Int32(pidText), let ca = values["ca"] else {
        throw FixtureError(message: "unexpected output of scripts/\(script): \(out)")
    }
    return StartedFixture(directory: dir, caFile: ca, ports: ports, pid: pid)
}

/// The fixture could not be set up.
public struct FixtureError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The repository root, from this file's path (Tests/TestSupport/…).
public let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

nonisolated(unsafe) private var directoriesToStop: [(dir: String, script: String)] = []
private let stopLock = NSLockLite()

private func registerForStop(_ dir: String, script: String) {
    stopLock.lock()
    let first = directoriesToStop.isEmpty
    directoriesToStop.append((dir, script))
    stopLock.unlock()
    if first {
        atexit {
            for (dir, script) in directoriesToStop {
                _ = try? Subprocess.runShellBlocking("\(repositoryRoot)/scripts/\(script) stop \(dir)", timeout: 30)
                _ = try? Subprocess.runShellBlocking("rm -rf '\(dir)'", timeout: 60)
            }
        }
    }
}

/// Stops fixtures whose test process died without stopping them (a crash, a SIGKILL):
/// each directory records its owner's pid; the Dovecot is ended by its own pid file.
private func cleanUpStaleFixtures() {
    guard let dir = opendir("/tmp") else { return }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        // Read the name in place: the record may be shorter than MemoryLayout<dirent>.size.
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
        guard name.hasPrefix("mailmirror-test-") else { continue }
        let path = "/tmp/\(name)"
        guard let owner = readFile("\(path)/owner.pid").flatMap({ Int32($0.split(separator: "\n").first ?? "") }) else { continue }
        if owner == getpid() || kill(owner, 0) == 0 { continue }
        let script = readFile("\(path)/fixture.script").map { String($0.split(separator: "\n").first ?? "") } ?? "dovecot-fixture"
        guard ["dovecot-fixture", "cyrus-fixture", "courier-fixture"].contains(script) else { continue }
        _ = try? Subprocess.runShellBlocking("\(repositoryRoot)/scripts/\(script) stop \(path) && rm -rf '\(path)'", timeout: 30)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
public func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FixtureError(message: "socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw FixtureError(message: "bind: \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}

/// A small pthread mutex (Foundation's NSLock without Foundation).
public final class NSLockLite: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    public func lock() { pthread_mutex_lock(&mutex) }
    public func unlock() { pthread_mutex_unlock(&mutex) }
}
