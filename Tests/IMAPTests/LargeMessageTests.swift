import Testing
@testable import IMAP
import Support
import TestSupport

/// The built IMAPFetch tool (Benchmarks/IMAPFetch), beside the test bundle.
var imapFetchBinary: String { mailmirrorBinary.replacingSuffix("mailmirror", with: "IMAPFetch") }

extension String {
    func replacingSuffix(_ suffix: String, with replacement: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
    }
}

@Suite struct LargeMessageTests {
    /// A 25 MB message is streamed into a Maildir file: the fetching process's peak memory
    /// grows by far less than the message (measured in its own process, so other tests
    /// running in parallel do not blur the number).
    @Test func twentyFiveMegabyteMessageWithBoundedMemory() async throws {
        let fixture = try await DovecotFixture.shared()
        let (s, user) = try await fixture.session()
        var body: [UInt8] = []
        body.reserveCapacity(25 << 20)
        let line = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\r\n".utf8)
        while body.count < 25 << 20 { body += line }
        let wire = message("big", body: "") + body
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(wire))], to: .inbox)
        await s.logout()

        let out = TemporaryDirectory()
        defer { out.remove() }
        let result = try await runCommand([imapFetchBinary, "--port", String(fixture.imapsPort), "--ca", fixture.caFile,
                                     "--user", user.name, "--password", user.password, "--out", out.path], timeout: 120)
        #expect(result.status == 0, "\(result.standardError)")
        var fields: [String: Int] = [:]
        for pair in result.standardOutput.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let kv = pair.split(separator: "=")
            if kv.count == 2, let v = Int(kv[1]) { fields[String(kv[0])] = v }
        }
        #expect(fields["messages"] == 1)
        #expect(fields["bytes"] == wire.count)
        let growth = (fields["peak_rss_kb"] ?? 0) - (fields["rss_before_fetch_kb"] ?? 0)
        print("25 MB fetch: peak RSS \(fields["peak_rss_kb"] ?? 0) kB, growth during the fetch \(growth) kB")
        #expect(growth < 8 * 1024, "memory grew by \(growth) kB while fetching a 25 MB message")
        // The file on disk is the message with LF line endings.
        let files = try await runCommand(["sh", "-c", "cat \(out.path)/INBOX/new/* | wc -c"])
        #expect(Int(files.standardOutput.trimmingCharacters()) == wire.count - wire.filter { $0 == 13 }.count)
    }
}

extension String {
    func trimmingCharacters() -> String { String(self.filter { !$0.isWhitespace }) }
}
