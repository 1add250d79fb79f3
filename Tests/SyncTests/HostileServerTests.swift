#if canImport(Glibc)
import Glibc
#endif
import Testing
import Maildir
import Support
import TestSupport

/// Servers that break the protocol on purpose (a `FakeIMAPServer`: no real server does
/// this): `mailmirror sync` refuses each with a clear error, its memory stays bounded while
/// the server floods it, nothing is written outside the account's Maildir, and a later pass
/// against a sane server finds a consistent state.
@Suite struct HostileServerTests {
    /// Peak RSS allowed while a server floods mailmirror (its floor is ~17 MB).
    static let memoryLimitKB = 64 * 1024
    /// How much a flood sends: enough to show the memory does not grow with it (the debug
    /// build parses slowly; the bound, not the total, is the point).
    static let floodBytes = 16 << 20

    struct Run {
        let dir: TemporaryDirectory
        var maildir: String { dir.path + "/mail" }
        var config: String { dir.path + "/config.toml" }
        init(port: UInt16) {
            dir = TemporaryDirectory("mailmirror-hostile")
            writeFile(config, """
            [general]
            state_dir = "\(dir.path)/state"
            log_level = "warn"

            [[account]]
            name = "evil"
            host = "127.0.0.1"
            port = \(port)
            tls = "none"
            allow_plaintext = true
            compress = false
            username = "u"
            password = "p"
            maildir = "\(dir.path)/mail"
            """, mode: 0o600)
        }
        /// `mailmirror sync` under /usr/bin/time: its output and peak RSS in KB.
        func sync() async throws -> (output: CommandOutput, peakKB: Int) {
            let out = try await runCommand(["/usr/bin/time", "-f", "peak-rss-kb=%M", mailmirrorBinary, "sync", "--config", config], timeout: 300)
            let kb = out.standardError.split(separator: "\n").last { $0.hasPrefix("peak-rss-kb=") }.flatMap { Int($0.dropFirst(12)) } ?? -1
            return (out, kb)
        }
        /// Every path under the account's directory, relative to it.
        func tree() async throws -> [String] {
            try await runCommand(["sh", "-c", "cd \(shellQuote(dir.path)) && find . -mindepth 1 | sort"]).standardOutput
                .split(separator: "\n").map(String.init)
        }
    }

    func errorLine(_ out: CommandOutput) -> Substring {
        out.standardError.split(separator: "\n").first { $0.contains("error") } ?? "no error line"
    }

    func selectWith(exists: Int, uidNext: Int) -> FakeIMAPServer.Answer {
        .text("* \(exists) EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT \(uidNext)] ok\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\nTAG OK [READ-WRITE] selected\r\n")
    }

    @Test func folderNamesAreNeverPaths() async throws {
        let server = try FakeIMAPServer()
        defer { server.stop() }
        let long = String(repeating: "n", count: 10_000)
        server.answer("LIST", with: .text("""
            * LIST () "/" INBOX\r
            * LIST () "/" ".."\r
            * LIST () "/" "../../escape"\r
            * LIST () "/" "a/../../b"\r
            * LIST () "/" "ctl\u{01}x"\r
            * LIST () "/" {6}\r
            nu\u{0}l/x\r
            * LIST () "/" \(long)\r
            TAG OK done\r

            """))
        let run = Run(port: server.port)
        defer { run.dir.remove() }
        let (out, _) = try await run.sync()
        #expect(out.status == 0 || out.status == 1, "\(out.standardOutput)\(out.standardError)")
        let tree = try await run.tree()
        #expect(tree.allSatisfy { $0 == "./config.toml" || $0.hasPrefix("./state") || $0.hasPrefix("./mail") }, "nothing outside the Maildir: \(tree)")
        let outside = try await runCommand(["sh", "-c", "find \(shellQuote(run.dir.path + "/..")) -maxdepth 2 -name escape -o -maxdepth 2 -name b -newer \(shellQuote(run.config))"])
        #expect(outside.standardOutput.isEmpty, "\(outside.standardOutput)")
        #expect(tree.contains("./mail/%2E%2E") && tree.contains("./mail/%2E%2E/%2E%2E/escape"), "escaped, not followed: \(tree)")
        #expect(tree.contains { $0.hasPrefix("./mail/ctl%01x") } && tree.contains { $0.hasPrefix("./mail/nu%00l") }, "\(tree) \(out.standardOutput) \(out.standardError.prefix(2000))")
        if out.status == 1 {
            #expect(out.standardError.contains("nnnnnnnn"), "a name that cannot be a path is named in the error: \(out.standardError.prefix(300))")
        }
    }

    /// A literal announcing 10^12 bytes, then a flood and a hang-up.
    @Test func hugeLiteralIsRefusedWithBoundedMemory() async throws {
        let server = try FakeIMAPServer()
        defer { server.stop() }
        server.answer("SELECT", with: selectWith(exists: 1, uidNext: 2))
        server.answer("UID FETCH", with: .flood(prefix: "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 1000000000000 BODY[] {1000000000000}\r\n",
                                                unit: Array("x".utf8), total: Self.floodBytes, suffix: ""))
        let run = Run(port: server.port)
        defer { run.dir.remove() }
        let (out, peak) = try await run.sync()
        #expect(out.status == 1, "\(out.standardOutput)\(out.standardError.prefix(500))")
        #expect(peak > 0 && peak < Self.memoryLimitKB, "peak RSS \(peak) KB")
        let files = try await run.tree().filter { $0.contains("/new/") || $0.contains("/cur/") }
        #expect(files.isEmpty, "nothing half-received is visible: \(files)")
        print("hostile: 10^12-byte literal: exit \(out.status ?? -1), peak RSS \(peak) KB, \(errorLine(out))")
    }

    @Test func lineWithoutEndIsRefusedWithBoundedMemory() async throws {
        let server = try FakeIMAPServer()
        defer { server.stop() }
        server.answer("LIST", with: .flood(prefix: "* LIST () \"/\" ", unit: Array("y".utf8), total: Self.floodBytes, suffix: ""))
        let run = Run(port: server.port)
        defer { run.dir.remove() }
        let (out, peak) = try await run.sync()
        #expect(out.status == 1, "\(out.standardOutput)\(out.standardError.prefix(500))")
        #expect(peak > 0 && peak < Self.memoryLimitKB, "peak RSS \(peak) KB")
        #expect(out.standardError.contains("127.0.0.1"), "the error names the server: \(out.standardError.prefix(300))")
        print("hostile: endless line: exit \(out.status ?? -1), peak RSS \(peak) KB, \(errorLine(out))")
    }

    @Test func untaggedFloodKeepsMemoryBounded() async throws {
        let server = try FakeIMAPServer()
        defer { server.stop() }
        server.answer("SELECT", with: selectWith(exists: 1, uidNext: 2))
        server.answer("UID FETCH", with: .flood(prefix: "", unit: Array("* OK flood\r\n".utf8), total: Self.floodBytes, suffix: "TAG OK done\r\n"))
        let run = Run(port: server.port)
        defer { run.dir.remove() }
        let (out, peak) = try await run.sync()
        #expect(peak > 0 && peak < Self.memoryLimitKB, "peak RSS \(peak) KB after \(server.floodedBytes) bytes of untagged responses")
        #expect(out.status == 0 || out.standardError.contains("127.0.0.1"), "\(out.standardError.prefix(300))")
        print("hostile: untagged flood: exit \(out.status ?? -1), peak RSS \(peak) KB")
    }

    /// FETCH answers for UIDs not asked for, the same UID twice, UIDs that go backwards, an
    /// EXISTS that lies: no file for what was not asked, nothing twice, and a rerun agrees.
    @Test func fetchAnswersThatLie() async throws {
        let server = try FakeIMAPServer()
        defer { server.stop() }
        server.answer("SELECT", with: selectWith(exists: 50, uidNext: 3))
        func body(_ id: String) -> String { "Message-ID: <\(id)@evil>\r\n\r\nbody \(id)\r\n" }
        let b1 = body("one"), b2 = body("two"), b7 = body("seven")
        let date = "INTERNALDATE \"06-Dec-2026 10:00:00 +0000\""
        // The listing: UIDs 2 and 1 (backwards), 1 once more.
        server.answer("UID FETCH", with: .text("""
            * 1 FETCH (UID 2 FLAGS () \(date) RFC822.SIZE \(b2.utf8.count))\r
            * 2 FETCH (UID 1 FLAGS () \(date) RFC822.SIZE \(b1.utf8.count))\r
            * 2 FETCH (UID 1 FLAGS (\\Seen) \(date) RFC822.SIZE \(b1.utf8.count))\r
            TAG OK done\r

            """))
        // The bodies: UID 2, UID 1 twice, and UID 7, which was never asked for.
        server.answer("UID FETCH", containing: "BODY.PEEK[]", with: .text("""
            * 1 FETCH (UID 2 BODY[] {\(b2.utf8.count)}\r
            \(b2))\r
            * 2 FETCH (UID 1 BODY[] {\(b1.utf8.count)}\r
            \(b1))\r
            * 2 FETCH (UID 1 BODY[] {\(b1.utf8.count)}\r
            \(b1))\r
            * 3 FETCH (UID 7 BODY[] {\(b7.utf8.count)}\r
            \(b7))\r
            TAG OK done\r

            """))
        let run = Run(port: server.port)
        defer { run.dir.remove() }
        let (first, _) = try await run.sync()
        let store = MaildirStore(root: run.maildir, layout: .fs).folder(["INBOX"])
        func bodies() -> [String] {
            ((try? store.scan().messages) ?? []).map { String(decoding: readBytes(store.filePath(of: $0)) ?? [], as: UTF8.self) }.sorted()
        }
        let after = bodies()
        #expect(Set(after).count == after.count, "nothing twice: \(after)")
        #expect(!after.contains { $0.contains("seven") }, "UID 7 was never asked for: \(first.standardOutput)\(first.standardError)")
        #expect(after.count <= 2, "\(after)")
        let (second, _) = try await run.sync()
        let again = bodies()
        #expect(Set(again).count == again.count && again.count <= 2 && !again.contains { $0.contains("seven") },
                "a rerun adds nothing twice: \(again) \(second.standardError.prefix(300))")
    }

    /// A POP3 server that gives two messages one UIDL: nothing is downloaded or deleted (a
    /// new message could pass for one delivered before and be deleted unread).
    @Test func pop3ServerWithRepeatedUIDLsIsRefused() async throws {
        let server = try ScriptedServer([
            .send(Array("+OK ready\r\n".utf8)),
            .readLine, .send(Array("+OK\r\nUSER\r\nUIDL\r\n.\r\n".utf8)),     // CAPA
            .readLine, .send(Array("+OK\r\n".utf8)),                            // USER
            .readLine, .send(Array("+OK logged in\r\n".utf8)),                  // PASS
            .readLine, .send(Array("+OK\r\nUSER\r\nUIDL\r\n.\r\n".utf8)),     // CAPA again, logged in
            .readLine, .send(Array("+OK\r\n1 120\r\n2 130\r\n.\r\n".utf8)),     // LIST
            .readLine, .send(Array("+OK\r\n1 same-id\r\n2 same-id\r\n.\r\n".utf8)),   // UIDL
            .readLine, .send(Array("+OK bye\r\n".utf8)),
        ])
        defer { server.stop() }
        let dir = TemporaryDirectory("mailmirror-hostile-pop3")
        defer { dir.remove() }
        writeFile(dir.path + "/config.toml", """
        [general]
        state_dir = "\(dir.path)/state"

        [[account]]
        name = "isp"
        protocol = "pop3"
        host = "127.0.0.1"
        port = \(server.port)
        tls = "none"
        allow_plaintext = true
        username = "u"
        password = "p"
        maildir = "\(dir.path)/mail"
        """, mode: 0o600)
        let out = try await runMailmirror(["sync", "--config", dir.path + "/config.toml"], timeout: 60)
        #expect(out.status == 1, "\(out.standardOutput)\(out.standardError)")
        #expect(out.standardError.contains("same UIDL to several messages") && out.standardError.contains("same-id"), "\(out.standardError)")
        #expect(localMessages(dir.path + "/mail").isEmpty, "nothing downloaded")
    }
}
