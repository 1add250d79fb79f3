#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

@Suite struct UnfetchableTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// The server's copy of the message with this Message-ID (read as root).
    func serverFile(_ a: SyncAccount, _ id: String) -> String? {
        let inbox = fixture.directory + "/mail/" + a.user.name
        for sub in ["new", "cur"] {
            guard let dir = opendir(inbox + "/" + sub) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                let path = inbox + "/" + sub + "/" + name
                if name.hasPrefix(".") { continue }
                if let text = readFile(path), text.contains("<\(id)@mailmirror.test>") { return path }
            }
        }
        return nil
    }

    /// One message the server cannot send (its file unreadable: Dovecot answers BYE "FETCH
    /// failed" and closes) no longer holds back its folder pass after pass: the batch's
    /// messages become suspects, fetched one at a time after the others; the one that fails
    /// alone is left on the server (listed by `status`) and the others arrive; `--force`
    /// tries it again. Nothing is downloaded twice.
    @Test func oneMessageTheServerCannotSendDoesNotHoldBackTheOthers() async throws {
        let a = try SyncAccount(fixture, extra: "connections = 1")
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("u0")])
        _ = try await a.sync()
        try await a.append("INBOX", (1...4).map { mail("u\($0)") })
        let bad = try #require(serverFile(a, "u2"))
        chmod(bad, 0)
        // Dovecot moves files from new/ to cur/ (permissions and all): found again by content.
        func readable() { if let now = serverFile(a, "u2") { chmod(now, 0o600) } }
        defer { readable() }

        var passes: [CommandOutput] = []
        for _ in 0..<4 {   // bounded: the folder must heal within a few passes
            passes.append(try await a.sync())
            if passes.last?.status == 0 { break }
        }
        let last = try #require(passes.last)
        #expect(last.status == 0, "\(passes.map(\.standardError))")
        #expect(passes.count <= 3, "\(passes.map(\.standardOutput))")
        #expect(passes.contains { $0.standardError.contains("could not send the message with UID") && $0.standardError.contains("FETCH failed") })
        let ids = Set(a.localMessages("INBOX").compactMap { m in
            String(decoding: m.body.prefix(300), as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Message-ID:") }.map(String.init)
        })
        #expect(ids.count == 4 && a.localMessages("INBOX").count == 4, "u0, u1, u3, u4 once each: \(ids)")
        #expect(!ids.contains { $0.contains("<u2@") })
        let status = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(status.standardOutput.contains("1 the server could not send, left there (UID"), "\(status.standardOutput)")
        let quiet = try await a.sync()
        #expect(quiet.status == 0, "\(quiet.standardError)")

        // The server can read it again: --force brings it.
        readable()
        let forced = try await a.sync(["--force"])
        #expect(forced.status == 0, "\(forced.standardOutput) \(forced.standardError)")
        #expect(a.localMessages("INBOX").count == 5)
        let after = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(!after.standardOutput.contains("could not send"), "\(after.standardOutput)")
    }

    /// A single new message whose FETCH fails is not left aside at once (the server may just
    /// have been restarting): the next pass tries it alone again, and only then leaves it.
    @Test func aLoneMessageIsBlamedOnlyWhenItFailsAgain() async throws {
        let a = try SyncAccount(fixture, extra: "connections = 1")
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("v0")])
        _ = try await a.sync()
        try await a.append("INBOX", [mail("v1")])
        let bad = try #require(serverFile(a, "v1"))
        chmod(bad, 0)
        defer { if let now = serverFile(a, "v1") { chmod(now, 0o600) } }
        let first = try await a.sync()
        #expect(first.status == 1 && first.standardError.contains("gave up sending 1 message(s)"), "\(first.standardError)")
        let status = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(!status.standardOutput.contains("could not send"), "\(status.standardOutput)")
        let second = try await a.sync()
        #expect(second.status == 1 && second.standardError.contains("could not send the message with UID"), "\(second.standardError)")
        let third = try await a.sync()
        #expect(third.status == 0 && third.standardOutput.contains("1 the server could not send, left there"), "\(third.standardOutput)")
    }
}
