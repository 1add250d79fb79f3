#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Support
@testable import TestSupport
import Transport

/// The test suite's fault-injecting proxy does what it says, in front of the fixture
/// Dovecot's plain IMAP port: exact cut offsets (FIN and RST), stalls, latency, refused
/// connections, and a command carried out whose reply is lost.
@Suite struct FaultProxyTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A raw client socket to the proxy, reading with a timeout.
    struct Client {
        let fd: Int32
        init(port: UInt16, timeout: Double = 5) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = port.bigEndian
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0 else { throw FixtureError(message: "connect: \(errno)") }
            setTimeout(timeout)
        }
        func setTimeout(_ timeout: Double) {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        /// Reads until the peer closes, the timeout passes, or `until` shows up; the bytes
        /// and how it ended (0: closed, errno otherwise, -1: `until` seen).
        func read(until marker: String? = nil) -> (bytes: [UInt8], end: Int32) {
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n == 0 { return (all, 0) }
                if n < 0 { return (all, errno) }
                all += buffer[0..<n]
                if let marker, String(decoding: all, as: UTF8.self).contains(marker) { return (all, -1) }
            }
        }
        func close() { Glibc.close(fd) }
    }

    @Test func passesTrafficThrough() async throws {
        let proxy = try FaultProxy(targetPort: fixture.imapPort)
        defer { proxy.stop() }
        let user = try fixture.makeUser("proxy")
        let s = try await IMAPSession.connect(host: "127.0.0.1", port: proxy.port, security: .plain)
        try await s.login(username: user.name, secret: user.password)
        let inbox = try await s.select(.inbox)
        #expect(inbox.exists == 0)
        await s.logout()
        #expect(proxy.connections == 1 && proxy.cutConnections == 0)
    }

    @Test func cutsAtTheExactOffsetWithAFinOrAnRST() async throws {
        for reset in [false, true] {
            let proxy = try FaultProxy(targetPort: fixture.imapPort)
            defer { proxy.stop() }
            proxy.cut(.toClient, afterBytes: 7, reset: reset)
            let c = try Client(port: proxy.port)
            defer { c.close() }
            let (bytes, end) = c.read()
            #expect(String(decoding: bytes, as: UTF8.self) == "* OK [C", "the first 7 bytes of the greeting, nothing more")
            #expect(end == (reset ? ECONNRESET : 0), "reset \(reset): ended by \(end)")
            #expect(proxy.cutConnections == 1)
        }
        // Towards the server: the command is cut after "a1 NO" — the server never sees a whole line.
        let proxy = try FaultProxy(targetPort: fixture.imapPort)
        defer { proxy.stop() }
        proxy.cut(.toServer, afterBytes: 5)
        let c = try Client(port: proxy.port)
        defer { c.close() }
        _ = c.read(until: "\r\n")
        c.send("a1 NOOP\r\n")
        let (rest, end) = c.read()
        #expect(!String(decoding: rest, as: UTF8.self).contains("a1 OK") && end == 0)
    }

    @Test func stallsLatencyAndRefusals() async throws {
        let proxy = try FaultProxy(targetPort: fixture.imapPort)
        defer { proxy.stop() }
        proxy.refuse(next: 1)
        let refused = try Client(port: proxy.port)
        let (nothing, end) = refused.read()
        refused.close()
        #expect(nothing.isEmpty && (end == ECONNRESET || end == 0), "refused: \(end)")
        #expect(proxy.refusedConnections == 1)

        proxy.stall(.toClient, afterBytes: 4, seconds: 0.6)
        let start = monotonicSeconds()
        let stalled = try Client(port: proxy.port)
        defer { stalled.close() }
        let greeting = stalled.read(until: "\r\n")
        #expect(greeting.end == -1 && monotonicSeconds() - start >= 0.55, "the greeting waited for the stall")
        #expect(proxy.stalledConnections == 1)

        proxy.latencyMilliseconds = 150
        let before = monotonicSeconds()
        stalled.send("a1 NOOP\r\n")
        #expect(stalled.read(until: "a1 OK").end == -1)
        #expect(monotonicSeconds() - before >= 0.29, "150 ms each way")
    }

    /// The command reaches the server and is carried out; only its reply is lost.
    @Test func dropsAReplyButNotTheCommand() async throws {
        let proxy = try FaultProxy(targetPort: fixture.imapPort)
        defer { proxy.stop() }
        let user = try fixture.makeUser("proxy")
        proxy.dropReply(to: "APPEND", occurrence: 1)
        let c = try Client(port: proxy.port, timeout: 30)
        defer { c.close() }
        _ = c.read(until: "\r\n")
        c.send("a1 LOGIN \(user.name) \(user.password)\r\n")
        #expect(c.read(until: "a1 OK").end == -1)
        let message = "Subject: x\r\n\r\nbody\r\n"
        c.send("a2 APPEND INBOX {\(message.utf8.count)+}\r\n\(message)\r\n")
        // The server has the command; wait (bounded) until its reply reached the proxy and was dropped.
        let deadline = monotonicSeconds() + 30
        while proxy.droppedReplies == 0 && monotonicSeconds() < deadline { usleep(5000) }
        c.setTimeout(1)
        let (reply, end) = c.read()
        #expect(!String(decoding: reply, as: UTF8.self).contains("a2 "), "the tagged reply is lost")
        #expect(end == EAGAIN || end == EWOULDBLOCK, "the connection stays open and silent: \(end)")
        #expect(proxy.droppedReplies == 1 && proxy.commandCount("APPEND") == 1)
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile)
        let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
        try await s.login(username: user.name, secret: user.password)
        #expect(try await s.select(.inbox).exists == 1, "the server stored the message")
        await s.logout()
    }

    @Test func framerFollowsLiterals() {
        var f = IMAPFramer()
        let wire = Array("a1 APPEND X {5}\r\na2 OK\r\n\r\nb2 UID fetch 1 (FLAGS)\r\n".utf8)
        var segments: [IMAPFramer.Segment] = []
        for i in 0..<wire.count { segments += f.feed(wire[i...i]) }   // one byte at a time
        let starts = segments.compactMap { if case .commandStart(let tag, let verb) = $0.kind { "\(String(decoding: tag, as: UTF8.self)) \(verb)" } else { nil } }
        #expect(starts == ["a1 APPEND", "b2 UID FETCH"], "\"a2 OK\" inside the literal is no command")
        #expect(segments.flatMap(\.bytes) == wire)
    }
}
