import Testing
import Transport
import IMAP
import POP3
import Support
import TestSupport

/// Connections to the real fixture Dovecot: implicit TLS, STARTTLS/STLS, and the ways
/// verification must fail.
@Suite struct TLSConnectionTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    var tls: TLSClientConfiguration { TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile) }

    @Test func imapsGreetingAndCapabilities() async throws {
        let session = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
        let version = await session.connection.tlsVersion
        #expect(version == "TLSv1.3" || version == "TLSv1.2")
        #expect(await session.capabilities.contains("IMAP4REV1"))
        await session.close()
    }

    @Test func imapStartTLSUpgradesAndRereadsCapabilities() async throws {
        let session = try await IMAPSession.connect(host: fixture.host, port: fixture.imapPort,
                                                    security: .startTLS(TLSClientConfiguration(verifyName: "localhost", caFile: fixture.caFile)))
        #expect(await session.connection.tlsVersion != nil)
        let caps = await session.capabilities
        #expect(caps.contains("IMAP4REV1"))
        // After TLS the server no longer offers STARTTLS: proof the list was read again.
        #expect(!caps.contains("STARTTLS"))
        await session.close()
    }

    @Test func pop3sGreetingAndCapa() async throws {
        let client = try await POP3Client.connect(host: fixture.host, port: fixture.pop3sPort, security: .implicitTLS(tls))
        #expect(await client.connection.tlsVersion != nil)
        #expect(await client.hasCapability("UIDL"))
        #expect(await client.hasCapability("PIPELINING"))
        await client.close()
    }

    @Test func pop3STLSUpgrades() async throws {
        let client = try await POP3Client.connect(host: fixture.host, port: fixture.pop3Port, security: .startTLS(tls))
        #expect(await client.connection.tlsVersion != nil)
        #expect(await client.hasCapability("UIDL"))
        #expect(!(await client.hasCapability("STLS")))
        await client.close()
    }

    @Test func certificateWithoutItsCAIsRejected() async throws {
        // The system store does not know the fixture's throwaway CA.
        let error = await #expect(throws: TransportError.self) {
            _ = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "127.0.0.1"))
        }
        guard case .certificateNotTrusted(_, let reason) = error else {
            Issue.record("expected certificateNotTrusted, got \(String(describing: error))"); return
        }
        #expect(reason.contains("issuer"))
        #expect(error!.description.contains("ca_file"))
    }

    @Test func certificateWithoutItsCAIsRejectedOnStartTLS() async throws {
        let error = await #expect(throws: POP3Error.self) {
            _ = try await POP3Client.connect(host: fixture.host, port: fixture.pop3Port,
                                             security: .startTLS(TLSClientConfiguration(verifyName: "127.0.0.1")))
        }
        guard case .transport(.certificateNotTrusted(_, "unable to get local issuer certificate"))? = error else {
            Issue.record("got \(String(describing: error))"); return
        }
    }

    @Test func wrongHostNameIsRejected() async throws {
        await #expect(throws: TransportError.hostnameMismatch(peer: "127.0.0.1:\(fixture.imapsPort)", expected: "not-localhost")) {
            _ = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "not-localhost", caFile: fixture.caFile))
        }
    }

    @Test func wrongIPAddressIsRejected() async throws {
        // The certificate covers 127.0.0.1 and ::1, not 127.0.0.2: checked as an IP SAN.
        await #expect(throws: TransportError.hostnameMismatch(peer: "127.0.0.1:\(fixture.imapsPort)", expected: "127.0.0.2")) {
            _ = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "127.0.0.2", caFile: fixture.caFile))
        }
    }

    @Test func localhostNameVerifies() async throws {
        let c = try await Connection.connect(host: "localhost", port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "localhost", caFile: fixture.caFile))
        let greeting = try await c.readLine()
        #expect(greeting.starts(with: Array("* OK".utf8)))
        await c.close()
    }

    @Test func tlsOnAPlainPortFailsAsHandshakeError() async throws {
        let error = await #expect(throws: TransportError.self) {
            _ = try await Connection.connect(host: fixture.host, port: fixture.imapPort, tls: tls, connectTimeout: 10)
        }
        guard case .tlsHandshakeFailed = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func missingCAFileIsAClearError() async throws {
        let error = await #expect(throws: TransportError.self) {
            _ = try await Connection.connect(host: fixture.host, port: fixture.imapsPort,
                                             tls: TLSClientConfiguration(verifyName: "127.0.0.1", caFile: "/nonexistent/ca.pem"))
        }
        #expect(error?.description.contains("/nonexistent/ca.pem") == true)
    }
}
