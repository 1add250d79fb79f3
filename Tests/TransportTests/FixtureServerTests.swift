import Testing
import Transport
import IMAP
import TestSupport

/// The fixture itself: a real Dovecot offering what later layers rely on.
@Suite struct FixtureServerTests {
    @Test func loggedInCapabilitiesIncludeTheExtensionsTheMirrorUses() async throws {
        let fixture = try await DovecotFixture.shared()
        let user = try fixture.makeUser("caps")
        let c = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile))
        _ = try await c.readLine()   // greeting
        try await c.write(Array("L1 LOGIN \(user.name) \(user.password)\r\nL2 CAPABILITY\r\nL3 LOGOUT\r\n".utf8))
        var lines: [String] = []
        for _ in 0..<50 {
            let line = String(decoding: try await c.readLine(), as: UTF8.self)
            lines.append(line)
            if line.hasPrefix("L3 ") { break }
        }
        #expect(lines.contains { $0.hasPrefix("L1 OK") })
        let caps = Set(lines.first { $0.hasPrefix("* CAPABILITY") }?.split(separator: " ").map(String.init) ?? [])
        for wanted in ["CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "IDLE", "COMPRESS=DEFLATE", "SPECIAL-USE", "NOTIFY", "LITERAL+", "ENABLE"] {
            #expect(caps.contains(wanted), "fixture Dovecot should advertise \(wanted)")
        }
        await c.close()
    }

    @Test func wrongPasswordIsRefusedByTheRealServer() async throws {
        let fixture = try await DovecotFixture.shared()
        let user = try fixture.makeUser("badpw")
        let c = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile))
        _ = try await c.readLine()   // greeting
        try await c.write(Array("L1 LOGIN \(user.name) wrong\r\n".utf8))
        var tagged = ""
        for _ in 0..<20 {
            let line = String(decoding: try await c.readLine(), as: UTF8.self)
            if line.hasPrefix("L1 ") { tagged = line; break }
        }
        #expect(tagged.hasPrefix("L1 NO"))
        await c.close()
    }
}
