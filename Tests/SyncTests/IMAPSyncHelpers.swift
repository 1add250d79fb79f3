#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Config
import Maildir
import Support
import Sync
import Transport
import TestSupport

/// A test account: a fresh server user, a temp dir with config, Maildir and state.
struct SyncAccount {
    let fixture: any MailTestServer
    let user: (name: String, password: String)
    let dir: TemporaryDirectory
    var maildir: String { dir.path + "/mail" }
    var config: String { dir.path + "/config.toml" }

    /// Where the account's folders live on disk.
    let layout: MaildirLayout

    /// Connect to this plain-text port on 127.0.0.1 (a `FaultProxy` in front of the
    /// fixture's IMAP port) instead of the fixture's IMAPS port.
    let plainPort: UInt16?

    init(_ fixture: any MailTestServer, extra: String = "", layout: String = "fs", userFields: String = "", plainPort: UInt16? = nil) throws {
        self.fixture = fixture
        self.plainPort = plainPort
        self.layout = layout == "maildir++" ? .maildirPlusPlus : .fs
        user = try fixture.makeUser("sync", fields: userFields)
        dir = TemporaryDirectory("mailmirror-sync")
        writeConfig(extra: extra, layout: layout)
    }

    func writeConfig(extra: String = "", layout: String = "fs") {
        writeFile(config, """
        [general]
        state_dir = "\(dir.path)/state"
        log_level = "warn"

        [[account]]
        name = "work"
        host = "127.0.0.1"
        \(plainPort.map { "port = \($0)\ntls = \"none\"\nallow_plaintext = true\ncompress = false" } ?? "port = \(fixture.imapsPort)\nca_file = \"\(fixture.caFile)\"")
        username = "\(user.name)"
        password_command = "echo \(user.password)"
        maildir = "\(maildir)"
        layout = "\(layout)"
        \(extra)
        """, mode: 0o600)
    }

    /// The account's engine as `mailmirror sync` builds it, for a test that looks at its
    /// report or hands it a session of its own.
    func accountSync() throws -> IMAPAccountSync {
        let config = try ConfigurationLoader.load(path: self.config)
        return IMAPAccountSync(account: config.accounts[0], stateDirectory: config.general.stateDirectory,
                               logger: Logger(level: .error), force: false, dryRun: false)
    }

    /// One pass as `accountSync()` runs it, on a session of the test's own: its report and
    /// how many of each command it sent.
    func countedPass() async throws -> (report: AccountReport, commands: [String: Int]) {
        var sync = try accountSync()
        let session = try await sync.connect(secret: user.password)
        sync.session = session
        let report = try await sync.run()
        let counts = await session.commandCounts
        await session.logout()
        return (report, counts)
    }

    func session() async throws -> IMAPSession {
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile)
        let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
        try await s.login(username: user.name, secret: user.password)
        return s
    }

    func sync(_ extra: [String] = []) async throws -> CommandOutput {
        try await runMailmirror(["sync", "--config", config] + extra, timeout: 300)
    }

    /// The server's name of a local folder ("/" between levels), e.g. "INBOX.A.B" on Courier.
    func serverFolder(_ folder: String) -> MailboxName { MailboxName(fixture.serverName(folder)) }

    /// Server messages of a folder ("/" between levels): UID → (flags, body).
    func serverMessages(_ folder: String) async throws -> [UInt32: (flags: Set<Flag>, body: [UInt8])] {
        let s = try await session()
        defer { Task { await s.logout() } }
        _ = try await s.select(MailboxName(fixture.serverName(folder)))
        let sink = CollectingSink()
        let messages = try await s.fetchMessages(UIDSet(ranges: [1...UInt32.max]), sink: sink)
        var result: [UInt32: (flags: Set<Flag>, body: [UInt8])] = [:]
        for m in messages {
            guard let uid = m.uid else { continue }
            result[uid.rawValue] = (Set(m.flags ?? []).subtracting([.recent]), sink.bodies[uid.rawValue] ?? [])
        }
        return result
    }

    /// Local messages of a folder ("/" between levels): file name → content.
    func localMessages(_ folder: String) -> [(name: String, flags: MessageFlags, body: [UInt8])] {
        let store = MaildirStore(root: maildir, layout: layout)
        let f = store.folder(folder.split(separator: "/").map(String.init))
        guard let scan = try? f.scan() else { return [] }
        return scan.messages.map { ($0.fileName, $0.flags, readBytes(f.filePath(of: $0)) ?? []) }
    }

    /// Every file under the Maildir with its mtime, to prove a pass touched nothing.
    func snapshot() async throws -> String {
        try await runCommand(["sh", "-c", "cd \(shellQuote(maildir)) && find . -printf '%p %s %T@\\n' | sort"]).standardOutput
    }

    /// Puts messages into a server folder (created if needed).
    func append(_ folder: String, _ messages: [[UInt8]], flags: [Flag] = []) async throws {
        let s = try await session()
        defer { Task { await s.logout() } }
        let name = MailboxName(fixture.serverName(folder))
        if folder != "INBOX" { try? await s.create(name) }
        for start in stride(from: 0, to: messages.count, by: 100) {
            let batch = messages[start..<min(start + 100, messages.count)].map {
                AppendMessage(flags: flags, internalDate: 1_700_000_000, source: BytesMessageSource($0))
            }
            _ = try await s.append(Array(batch), to: name)
        }
    }

    /// Writes a message file into a local folder (creating the folder), as a mail reader would.
    @discardableResult
    func deliverLocally(_ folder: String, _ body: [UInt8], flags: String = "") throws -> String {
        let store = MaildirStore(root: maildir, layout: layout)
        let f = try store.createFolder(folder.split(separator: "/").map(String.init))
        let w = try f.beginDelivery()
        try w.write(lf(body))
        return try f.deliver(w, flags: MessageFlags(flags)).fileName
    }
}

final class CollectingSink: FetchBodySink, @unchecked Sendable {
    var bodies: [UInt32: [UInt8]] = [:]
    var current: [UInt8] = []
    var uid: UInt32?
    func begin(_ info: StreamInfo) throws { current = []; uid = info.uid }
    func write(_ bytes: [UInt8]) throws { current += bytes }
    func end() throws { if let uid { bodies[uid] = current } }
}

func mail(_ id: String, subject: String = "s", lines: Int = 3) -> [UInt8] {
    var text = "From: a@example.com\r\nTo: b@example.com\r\nSubject: \(subject)\r\nMessage-ID: <\(id)@mailmirror.test>\r\n\r\n"
    for i in 0..<lines { text += "line \(i) of \(id)\r\n" }
    return Array(text.utf8)
}

/// Lets the Maildir's directory mtimes age past the window in which a pass does not trust
/// them (`MaildirFolder.changeMarker`), so the next pass may note them for its fast path.
func maildirSettles() async throws {
    try await Task.sleep(for: .milliseconds(60))
}

/// The Message-ID locals ("a1" of `<a1@…>`) of message bodies, sorted.
func ids(_ bodies: [[UInt8]]) -> [String] {
    bodies.map { body -> String in
        let text = String(decoding: body.prefix(400), as: UTF8.self)
        guard let open = text.firstIndex(of: "<"), let at = text[open...].firstIndex(of: "@") else { return "?" }
        return String(text[text.index(after: open)..<at])
    }.sorted()
}
