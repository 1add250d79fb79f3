#if canImport(Glibc)
import Glibc
#endif
import Testing
import POP3
import Support
import Transport
import TestSupport

/// On Dovecot and Cyrus (Courier's POP3 is not tested).
@Suite struct POP3DrainTests {
    func drainAndCheck(_ server: ServerKind, starttls: Bool) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("pop")
        let messages = (0..<200).map { pop3Message($0) }
        try await fixture.fill(user: user, messages)
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user, starttls: starttls)
        let out = try await runMailmirror(["sync", "--config", config])
        #expect(out.status == 0, "\(out.standardError)")
        #expect(out.standardOutput.contains("isp/INBOX: 200 down, 200 deleted on server"))
        #expect(try await fixture.serverCount(user: user) == 0)
        let local = localMessages(dir.path + "/mail")
        #expect(local.count == 200)
        #expect(Set(local) == Set(messages.map(lf)), "each file is the message with CRLF turned into LF")
        // A second run finds nothing to do.
        let again = try await runMailmirror(["sync", "--config", config])
        #expect(again.status == 0)
        #expect(localMessages(dir.path + "/mail").count == 200)
        // status shows the last drain.
        let status = try await runMailmirror(["status", "--config", config])
        #expect(status.standardOutput.contains("isp (pop3): synced, last sync 20"), "\(status.standardOutput)")
        #expect(status.standardOutput.contains("  INBOX: 200 local, 0 on the server"))
    }

    @Test(arguments: ServerKind.withPOP3)
    func drainsOverPOP3S(server: ServerKind) async throws { try await drainAndCheck(server, starttls: false) }
    @Test(arguments: ServerKind.withPOP3)
    func drainsOverSTLS(server: ServerKind) async throws { try await drainAndCheck(server, starttls: true) }

    @Test(arguments: ServerKind.withPOP3)
    func keepOnServerDownloadsOnlyNewMessages(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("keep")
        try await fixture.fill(user: user, (0..<20).map { pop3Message($0) })
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user, extra: "keep_on_server = true")
        for _ in 0..<2 {
            let out = try await runMailmirror(["sync", "--config", config])
            #expect(out.status == 0, "\(out.standardError)")
        }
        #expect(localMessages(dir.path + "/mail").count == 20)
        #expect(try await fixture.serverCount(user: user) == 20)
        try await fixture.fill(user: user, (20..<25).map { pop3Message($0) })
        let out = try await runMailmirror(["sync", "--config", config])
        #expect(out.standardOutput.contains("isp/INBOX: 5 down"))
        #expect(localMessages(dir.path + "/mail").count == 25)
        #expect(try await fixture.serverCount(user: user) == 25)
        // A message deleted locally is never downloaded again.
        let file = try await runCommand(["sh", "-c", "ls \(dir.path)/mail/INBOX/new | head -1"]).standardOutput.trimmingCharacters(in: "\n")
        unlink("\(dir.path)/mail/INBOX/new/\(file)")
        _ = try await runMailmirror(["sync", "--config", config])
        #expect(localMessages(dir.path + "/mail").count == 24)
    }

    @Test(arguments: ServerKind.withPOP3)
    func deleteAfterDaysRemovesOnlyOldDeliveries(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("aged")
        try await fixture.fill(user: user, (0..<3).map { pop3Message($0) })
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user, extra: "keep_on_server = true\ndelete_after_days = 1")
        _ = try await runMailmirror(["sync", "--config", config])
        #expect(try await fixture.serverCount(user: user) == 3)
        // Age the deliveries by two days in the state file, then sync again.
        let aged = try await runCommand(["sh", "-c", "command -v sqlite3 >/dev/null && sqlite3 \(dir.path)/state/state.sqlite3 'UPDATE pop3_uidls SET delivered_at = delivered_at - 172800'"])
        try #require(aged.status == 0, "sqlite3 CLI is needed for this test (scripts/install-deps installs it)")
        _ = try await runMailmirror(["sync", "--config", config])
        #expect(try await fixture.serverCount(user: user) == 0)
        #expect(localMessages(dir.path + "/mail").count == 3)
    }

    @Test(arguments: ServerKind.withPOP3)
    func maxMessageSizeLeavesLargeMessagesOnTheServer(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("big")
        try await fixture.fill(user: user, [pop3Message(1), pop3Message(2, bodyLines: 2000)])
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user, extra: "max_message_size = \"10K\"")
        let out = try await runMailmirror(["sync", "--config", config])
        #expect(out.status == 0)
        #expect(out.standardOutput.contains("1 down") && out.standardOutput.contains("1 too large"))
        #expect(out.standardError.contains("larger than max_message_size"))
        #expect(try await fixture.serverCount(user: user) == 1)
    }

    @Test(arguments: ServerKind.withPOP3)
    func wrongPasswordFailsWithTheServersWords(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("badpop")
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user, password: "wrong")
        let out = try await runMailmirror(["sync", "--config", config])
        #expect(out.status == 1)
        #expect(out.standardError.contains("refused the login") && out.standardError.contains("check username and password_command"))
    }

    @Test(arguments: ServerKind.withPOP3)
    func starttlsWithoutSTLSIsRefusedNotDowngraded(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let server = try ScriptedServer([
            .send(Array("+OK POP3 ready\r\n".utf8)),
            .readLine,
            .send(Array("+OK\r\nUSER\r\nUIDL\r\n.\r\n".utf8)),
            .readLine,
        ])
        defer { server.stop() }
        let error = await #expect(throws: POP3Error.self) {
            _ = try await POP3Client.connect(host: "127.0.0.1", port: server.port, security: .startTLS(TLSClientConfiguration(verifyName: "127.0.0.1")), ioTimeout: 5)
        }
        #expect(error?.description.contains("does not offer STLS") == true)
    }

    @Test(arguments: ServerKind.withPOP3)
    func twentyMegabyteMessageWithBoundedMemory(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        var big = Array("From: a@b\r\nSubject: big\r\n\r\n".utf8)
        let line = Array(".leading dot and some text to fill the line with bytes 0123456789\r\n".utf8)
        while big.count < 20 << 20 { big += line }
        let small = pop3Message(1)
        func peakKB(_ message: [UInt8]) async throws -> Int {
            let u = try fixture.makeUser("rss")
            try await fixture.fill(user: u, [message])
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let config = fixture.pop3Config(in: dir.path, user: u)
            let out = try await runCommand(["/usr/bin/time", "-f", "maxrss=%M", mailmirrorBinary, "sync", "--config", config], timeout: 120)
            #expect(out.status == 0, "\(out.standardError)")
            #expect(localMessages(dir.path + "/mail") == [lf(message)])
            let rss = out.standardError.split(separator: "\n").compactMap { $0.hasPrefix("maxrss=") ? Int($0.dropFirst(7)) : nil }.last
            return rss ?? -1
        }
        let smallPeak = try await peakKB(small)
        let bigPeak = try await peakKB(big)
        print("POP3 drain peak RSS: 1 KB message \(smallPeak) kB, 20 MB message \(bigPeak) kB")
        #expect(bigPeak - smallPeak < 6 * 1024, "memory grew by \(bigPeak - smallPeak) kB for a 20 MB message")
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String { String(filter { !set.contains($0) }) }
}
