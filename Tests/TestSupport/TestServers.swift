#if canImport(Glibc)
import Glibc
#endif
import Support

/// The real IMAP servers the suite runs against, each started by a script of its own
/// (`scripts/dovecot-fixture`, `cyrus-fixture`, `courier-fixture`).
public enum ServerKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case dovecot, cyrus, courier

    public var description: String { rawValue }

    /// The servers that also serve POP3 in the suite (Courier's POP3 is not tested).
    public static let withPOP3: [ServerKind] = [.dovecot, .cyrus]
}

/// A private server of the test process, on free ports of 127.0.0.1, with its own CA.
/// Tests isolate themselves by user: `makeUser()` gives each a fresh, empty mailbox.
public protocol MailTestServer: Sendable {
    var kind: ServerKind { get }
    /// Always 127.0.0.1: nothing in the tests leaves the loopback interface.
    var host: String { get }
    var caFile: String { get }
    /// IMAP without TLS (for a `FaultProxy` in front of it) and IMAP over TLS.
    var imapPort: UInt16 { get }
    var imapsPort: UInt16 { get }
    /// POP3 (STLS) and POP3 over TLS, where the server is tested for it.
    var pop3PortIfAny: UInt16? { get }
    var pop3sPortIfAny: UInt16? { get }
    /// A new user with an empty mailbox. `fields` are Dovecot passwd-file fields (a quota);
    /// the other servers refuse them rather than ignore them.
    func makeUser(_ prefix: String, fields: String) throws -> (name: String, password: String)
    /// The server's name of a folder of the local tree ("Archive/2024", "/" between
    /// levels): Courier keeps personal folders under "INBOX." with "." between levels.
    func serverName(_ folder: String) -> String
}

extension MailTestServer {
    public func makeUser(_ prefix: String = "user") throws -> (name: String, password: String) {
        try makeUser(prefix, fields: "")
    }
}

/// The suite's shared instance of each server, started on first use.
public enum TestServers {
    private static let cyrus = Task { try await runBlocking(label: "fixture.cyrus") { try PackagedServerFixture.startBlocking(.cyrus) } }
    private static let courier = Task { try await runBlocking(label: "fixture.courier") { try PackagedServerFixture.startBlocking(.courier) } }

    /// The process's instance of `kind`. A server that cannot start fails the test with
    /// the fixture's reason: no test skips a server.
    public static func shared(_ kind: ServerKind) async throws -> any MailTestServer {
        switch kind {
        case .dovecot: return try await DovecotFixture.shared()
        case .cyrus: return try await cyrus.value
        case .courier: return try await courier.value
        }
    }
}

/// Cyrus IMAP or Courier-IMAP from their Debian packages, unpacked (never installed: each
/// would remove Dovecot) and started by `scripts/cyrus-fixture` or `courier-fixture`.
public final class PackagedServerFixture: MailTestServer {
    public let kind: ServerKind
    public let directory: String
    public let caFile: String
    public let imapPort: UInt16
    public let imapsPort: UInt16
    public let pop3PortIfAny: UInt16?
    public let pop3sPortIfAny: UInt16?
    public let pid: Int32
    public let host = "127.0.0.1"

    private var script: String { "\(kind)-fixture" }

    /// Starts a new instance. `options`: the script's start options (e.g. Cyrus's
    /// `--munge8bit`).
    public static func startBlocking(_ kind: ServerKind, options: String = "") throws -> PackagedServerFixture {
        precondition(kind != .dovecot, "DovecotFixture starts Dovecot")
        let ports = kind == .cyrus ? 4 : 2
        let started = try startFixtureScript("\(kind)-fixture", serverName: kind == .cyrus ? "Cyrus" : "Courier",
                                             portCount: ports, options: options.isEmpty ? "" : " " + options)
        return PackagedServerFixture(kind: kind, started: started)
    }

    public static func start(_ kind: ServerKind, options: String = "") async throws -> PackagedServerFixture {
        try await runBlocking(label: "fixture.start") { try startBlocking(kind, options: options) }
    }

    private init(kind: ServerKind, started: StartedFixture) {
        self.kind = kind
        directory = started.directory
        caFile = started.caFile
        pid = started.pid
        imapPort = started.ports[0]
        imapsPort = started.ports[1]
        pop3PortIfAny = started.ports.count == 4 ? started.ports[2] : nil
        pop3sPortIfAny = started.ports.count == 4 ? started.ports[3] : nil
    }

    public func makeUser(_ prefix: String, fields: String) throws -> (name: String, password: String) {
        guard fields.isEmpty else { throw FixtureError(message: "\(kind) fixture: user fields (\(fields)) are Dovecot's only") }
        let name = "\(prefix)\(UInt32.random(in: 100000...999999))"
        let password = "pw-\(name)"
        let result = try Subprocess.runShellBlocking("\(repositoryRoot)/scripts/\(script) adduser \(directory) \(name) \(password)", timeout: 30)
        guard result.succeeded else {
            throw FixtureError(message: "\(kind) adduser failed: \(String(decoding: result.standardError, as: UTF8.self))")
        }
        return (name, password)
    }

    public func serverName(_ folder: String) -> String {
        guard kind == .courier else { return folder }
        if folder == "INBOX" { return folder }
        return "INBOX." + folder.split(separator: "/", omittingEmptySubsequences: false).joined(separator: ".")
    }

    /// Stops this instance now (it is also stopped at process exit).
    public func stop() {
        _ = try? Subprocess.runShellBlocking("\(repositoryRoot)/scripts/\(script) stop \(directory)", timeout: 30)
    }
}
