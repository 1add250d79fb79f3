#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// What the big providers do, on the fixture Dovecot made to look like them
/// (`dovecot-fixture --gmail`, `--no-notify`, `--message-limit=N`; docs/servers.md). The
/// daemon's side (IDLE within a connection limit) is in DaemonTests/ProviderPushTests.
@Suite struct ProviderLookTests {
    /// Gmail: "[Gmail]/All Mail", "Important" and "Starred" show messages the label folders
    /// hold already. They are not mirrored (nor is a local folder of that name uploaded)
    /// until `folders` names one; `check-config --connect` says so.
    @Test func gmailViewsAreLeftOutUntilNamed() async throws {
        let server = try await DovecotFixture.start(compress: true, options: ["--gmail"])
        defer { server.stop() }
        let a = try SyncAccount(server)
        defer { a.dir.remove() }
        let inbox = (1...3).map { mail("g\($0)") }
        try await a.append("INBOX", inbox)
        try await a.append("Work", [inbox[0]])
        try await a.append("[Gmail]/All Mail", inbox + [mail("archived")])
        try await a.append("[Gmail]/Starred", [inbox[1]])
        try await a.append("[Gmail]/Important", [inbox[2]])
        // A local folder of a view's name (left by another tool) is not uploaded.
        try a.deliverLocally("[Gmail]/Starred", mail("local-starred"))
        writeFile(a.config, readFile(a.config)!.replacing("log_level = \"warn\"", with: "log_level = \"info\""), mode: 0o600)

        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        for view in ["[Gmail]/All Mail", "[Gmail]/Important", "[Gmail]/Starred"] {
            #expect(first.standardError.contains("\(view): not mirrored"), "says why: \(first.standardError)")
        }
        #expect(a.localMessages("INBOX").count == 3 && a.localMessages("Work").count == 1)
        #expect(FSCheckTest.isDirectory(a.maildir + "/[Gmail]/Sent Mail") && FSCheckTest.isDirectory(a.maildir + "/[Gmail]/Trash"))
        #expect(!FSCheckTest.isDirectory(a.maildir + "/[Gmail]/All Mail") && !FSCheckTest.isDirectory(a.maildir + "/[Gmail]/Important"))
        #expect(ids(a.localMessages("[Gmail]/Starred").map(\.body)) == ["local-starred"], "left alone")
        #expect(ids(try await a.serverMessages("[Gmail]/Starred").values.map(\.body)) == ["g2"], "not uploaded")

        let check = try await runMailmirror(["check-config", "--connect", "--config", a.config])
        #expect(check.status == 0, "\(check.standardOutput)\(check.standardError)")
        #expect(check.standardOutput.contains("[Gmail]/All Mail: not mirrored: the server marks it \\All"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("daemon push: NOTIFY"), "\(check.standardOutput)")

        // Asked for by name, All Mail is mirrored; the others stay out.
        a.writeConfig(extra: "folders = [\"*\", \"[Gmail]/All Mail\"]")
        let named = try await a.sync()
        #expect(named.status == 0, "\(named.standardOutput)\(named.standardError)")
        #expect(ids(a.localMessages("[Gmail]/All Mail").map(\.body)) == ["archived", "g1", "g2", "g3"])
        #expect(!FSCheckTest.isDirectory(a.maildir + "/[Gmail]/Important"))
        let again = try await runMailmirror(["check-config", "--connect", "--config", a.config])
        #expect(!again.standardOutput.contains("All Mail: not mirrored") && again.standardOutput.contains("[Gmail]/Important: not mirrored"),
                "\(again.standardOutput)")
    }

    /// Without connecting, `check-config` of a Gmail account says what will be left out.
    @Test func checkConfigOfAGmailAccountMentionsTheViews() async throws {
        let dir = TemporaryDirectory("mailmirror-gmail-config")
        defer { dir.remove() }
        writeFile(dir.path + "/config.toml", """
        [[account]]
        name = "g"
        host = "imap.gmail.com"
        username = "me@gmail.com"
        password_command = "echo x"
        maildir = "\(dir.path)/mail"
        """, mode: 0o600)
        let check = try await runMailmirror(["check-config", "--config", dir.path + "/config.toml"])
        #expect(check.status == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains("# Gmail: \"[Gmail]/All Mail\""), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("max_connections = 10"), "\(check.standardOutput)")
    }

    /// A server that takes at most 100 messages per command (MESSAGELIMIT=100, RFC 9738)
    /// and has no NOTIFY, like Outlook/Exchange and Yahoo: a 350-message folder is listed
    /// in pages, and flag changes, deletions and moves of more than 100 messages go in
    /// pieces — no command names more, no line is longer than 8 KiB, and both sides end
    /// the same.
    @Test func largeFoldersStayWithinTheMessageLimit() async throws {
        let server = try await DovecotFixture.start(compress: false, options: ["--no-notify", "--message-limit=100"])
        defer { server.stop() }
        let proxy = try FaultProxy(targetPort: server.imapPort)
        defer { proxy.stop() }
        let a = try SyncAccount(server, extra: "max_delete_fraction = 1\nconnections = 1", plainPort: proxy.port)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...350).map { mail("m\($0)") })
        try await a.append("Old", [mail("old")])
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        #expect(a.localMessages("INBOX").count == 350)

        // Flag every other message, delete every fifth of the rest, move 110 to Old.
        let folder = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let files = try folder.scan().messages.sorted { $0.fileName < $1.fileName }
        var flagged = 0, deleted = 0
        for (i, file) in files.enumerated() {
            if i % 2 == 0 { _ = try folder.setFlags(file, to: MessageFlags("F")); flagged += 1 }
            else if i % 5 == 1 { try folder.remove(file); deleted += 1 }
        }
        let flaggedPass = try await a.sync()
        #expect(flaggedPass.status == 0, "\(flaggedPass.standardOutput)\(flaggedPass.standardError)")
        let old = MaildirStore(root: a.maildir, layout: .fs).folder(["Old"])
        var moved = 0
        for file in try folder.scan().messages where moved < 110 {
            #expect(rename(folder.filePath(of: file), old.path + "/cur/" + file.fileName) == 0)
            moved += 1
        }
        let movePass = try await a.sync()
        #expect(movePass.status == 0, "\(movePass.standardOutput)\(movePass.standardError)")
        let settled = try await a.sync()
        #expect(settled.status == 0 && !settled.standardOutput.contains("work/"), "converged: \(settled.standardOutput)")

        let serverInbox = try await a.serverMessages("INBOX")
        let serverOld = try await a.serverMessages("Old")
        #expect(serverInbox.count == 350 - deleted - 110 && a.localMessages("INBOX").count == serverInbox.count)
        #expect(serverOld.count == 111 && a.localMessages("Old").count == 111)
        let flaggedBoth = serverInbox.values.filter { $0.flags.contains(.flagged) }.count + serverOld.values.filter { $0.flags.contains(.flagged) }.count
        #expect(flaggedBoth == flagged)
        #expect(Set(ids(serverInbox.values.map(\.body))) == Set(ids(a.localMessages("INBOX").map(\.body))))

        // What the proxy saw (one connection at a time): pages by sequence number, and no
        // command over the limit. INBOX always holds more than 100, so "1:*" there is too many.
        let lines = proxy.commandLines.map { String(decoding: $0, as: UTF8.self) }
        #expect(lines.contains { $0.split(separator: " ").dropFirst().first == "FETCH" }, "a listing went in pages")
        var selected = ""
        for line in lines {
            let words = line.split(separator: " ")
            if words.count > 2, ["SELECT", "EXAMINE"].contains(words[1].uppercased()) { selected = String(words[2]).filter { $0 != "\r" && $0 != "\n" } }
            #expect(line.utf8.count <= 8192, "line of \(line.utf8.count) bytes: \(line.prefix(80))")
            if let n = Self.messagesNamed(line), selected == "INBOX" { #expect(n <= 100, "\(n) messages in: \(line.prefix(120))") }
        }
    }

    /// How many messages a FETCH/STORE/COPY/MOVE/EXPUNGE line names by its set; a set
    /// from 1 to `*` names the whole mailbox (counted as too many), `n:*` only what
    /// arrived after a known UID (not counted).
    static func messagesNamed(_ line: String) -> Int? {
        var words = line.split(separator: " ").map(String.init).dropFirst()
        if words.first?.uppercased() == "UID" { words = words.dropFirst() }
        guard let verb = words.first?.uppercased(), ["FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"].contains(verb),
              let setText = words.dropFirst().first,
              let set = UIDSet(parsing: String(setText.filter { $0 != "\r" && $0 != "\n" })) else { return nil }
        var n = 0
        for r in set.ranges {
            if r.upperBound == UInt32.max { if r.lowerBound == 1 { return Int.max } else { continue } }
            n += Int(r.upperBound - r.lowerBound) + 1
        }
        return n
    }
}

enum FSCheckTest {
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
