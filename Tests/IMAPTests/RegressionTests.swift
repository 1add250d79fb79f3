#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import IMAP
import Support
import Transport
import TestSupport

@Suite struct RegressionTests {
    /// Every file of the fuzz corpus (seeds and any crash input added after a fuzz run)
    /// parses without crashing, and the result does not depend on where the input is split.
    @Test func fuzzCorpusReplays() async throws {
        let dir = repositoryRoot + "/Fuzz/corpus/imap"
        let names = listDirectory(dir)
        #expect(names.count >= 7)
        var options = ParserOptions()
        options.maxLineLength = 4096
        options.maxInlineLiteralSize = 2048
        for name in names {
            let data = readBytes(dir + "/" + name) ?? []
            let whole = try? events(data, options: options)
            for split in replaySplitPoints(data.count) {
                let parts = try? events(data, splitAt: [split], options: options)
                #expect(parts == whole, "\(name) split at \(split)")
            }
        }
    }

    @Test func multiAppendAssignsConsecutiveUIDs() async throws {
        let fixture = try await DovecotFixture.shared()
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        #expect(await s.capabilities.contains("MULTIAPPEND"))
        let messages = (1...3).map { AppendMessage(flags: [.seen], internalDate: 1_600_000_000, source: BytesMessageSource(message("multi\($0)"))) }
        let assigned = try await s.append(messages, to: .inbox)
        #expect(assigned?.destination == UIDSet(ranges: [1...3]))
    }

    @Test func loginDisabledIsRespected() async throws {
        let server = try ScriptedServer([
            .send(Array("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n".utf8)),
        ])
        defer { server.stop() }
        let s = try await IMAPSession.connect(host: "127.0.0.1", port: server.port, security: .plain, ioTimeout: 5)
        await #expect(throws: IMAPError.self) { try await s.login(username: "u", secret: "p") }
        await #expect(throws: IMAPError.self) { try await s.login(username: "u", secret: "p", mechanism: .login) }
        await s.close()
    }

    @Test func serverThatBreaksTheProtocolClosesTheSession() async throws {
        let server = try ScriptedServer([
            .send(Array("* OK [CAPABILITY IMAP4rev1] hi\r\n".utf8)),
            .readLine,
            .send(Array("* 1 FETCH (UID \(String(repeating: "9", count: 30))\r\n".utf8)),
        ])
        defer { server.stop() }
        let s = try await IMAPSession.connect(host: "127.0.0.1", port: server.port, security: .plain, ioTimeout: 5)
        let error = await #expect(throws: IMAPError.self) { try await s.noop() }
        guard case .protocolViolation? = error else { Issue.record("got \(String(describing: error))"); return }
        await #expect(throws: IMAPError.self) { try await s.noop() }   // closed for good
    }

    @Test func byeDuringACommandFailsItWithTheServersWords() async throws {
        let server = try ScriptedServer([
            .send(Array("* OK [CAPABILITY IMAP4rev1] hi\r\n".utf8)),
            .readLine,
            .send(Array("* BYE server shutting down\r\n".utf8)),
            .close,
        ])
        defer { server.stop() }
        let s = try await IMAPSession.connect(host: "127.0.0.1", port: server.port, security: .plain, ioTimeout: 5)
        let error = await #expect(throws: IMAPError.self) { try await s.noop() }
        #expect(error?.description.contains("server shutting down") == true)
    }
}
