#if canImport(Glibc)
import Glibc
#endif
import CResolv
import IMAP
import POP3
import Support
import Transport

/// Where settings were found, for the message `init` prints.
public struct DiscoveredSettings: Sendable, Equatable {
    public var server: ServerSettings
    /// "built-in table (Gmail)", "autoconfig https://…", "DNS SRV _imaps._tcp.example.com", …
    public var source: String
    public var notes: String?
    public var auth: String?
}

/// Finds an account's server from its address, stopping at the first step that answers:
/// (a) the built-in provider table, (b) the domain's autoconfig document over HTTPS,
/// (c) DNS SRV records (RFC 6186/8314), (d) the provider behind the MX host, (e) a guess
/// (`imap.DOMAIN`, `mail.DOMAIN`) verified by actually connecting with TLS. Each network
/// step has a short timeout; `offline` stops after (a).
public struct AccountDiscovery: Sendable {
    public var kind: ServerSettings.Kind = .imap
    public var offline = false
    public var timeout: Double = 5
    /// Overrides the autoconfig URLs (tests: a local HTTPS server).
    public var autoconfigURLs: [String]?
    /// CA file for HTTPS and TLS probes (tests: the fixture's CA).
    public var caFile: String?
    /// Overrides the hosts guessed in step (e), as (host, implicit port, STARTTLS port).
    public var guesses: [(String, UInt16, UInt16)]?
    /// Whether to query DNS (steps (c) and (d)).
    public var useDNS = true

    public init() {}

    public func discover(_ email: String, log: (String) -> Void = { _ in }) async -> DiscoveredSettings? {
        guard let domain = ProviderTable.domain(of: email) else { return nil }
        if let p = ProviderTable.provider(for: email), let server = p.server(kind) {
            return DiscoveredSettings(server: server, source: "built-in table (\(p.name))", notes: p.notes, auth: p.auth)
        }
        if offline { return nil }

        let urls = autoconfigURLs ?? [
            "https://autoconfig.\(domain)/mail/config-v1.1.xml?emailaddress=\(percentEncoded(email))",
            "https://\(domain)/.well-known/autoconfig/mail/config-v1.1.xml",
        ]
        for url in urls {
            log("trying \(url)")
            if let body = try? await HTTPSClient.get(url, caFile: caFile, timeout: timeout) {
                let servers = AutoconfigDocument.incomingServers(String(decoding: body, as: UTF8.self), email: email)
                if let server = servers.first(where: { $0.kind == kind && $0.security == .implicit }) ?? servers.first(where: { $0.kind == kind }) {
                    return DiscoveredSettings(server: server, source: "autoconfig \(url)")
                }
            }
        }

        if useDNS {
            let services = kind == .imap ? [("_imaps._tcp", ServerSettings.Security.implicit), ("_imap._tcp", .starttls)]
                                         : [("_pop3s._tcp", ServerSettings.Security.implicit), ("_pop3._tcp", .starttls)]
            for (service, security) in services {
                let name = "\(service).\(domain)"
                log("looking up SRV \(name)")
                let records = await Self.query(name, type: DNSMessage.typeSRV, timeout: timeout)
                let srv = records.compactMap { r -> (UInt16, UInt16, UInt16, String)? in
                    if case let .srv(p, w, port, target) = r, target != "" && target != "." { return (p, w, port, target) }
                    return nil
                }.sorted { ($0.0, -Int($0.1)) < ($1.0, -Int($1.1)) }
                if let best = srv.first {
                    return DiscoveredSettings(server: ServerSettings(kind, best.3.trimmingDot(), best.2, security), source: "DNS SRV \(name)")
                }
            }
            log("looking up MX \(domain)")
            let mx = await Self.query(domain, type: DNSMessage.typeMX, timeout: timeout).compactMap { r -> (UInt16, String)? in
                if case let .mx(pref, host) = r { return (pref, host) }
                return nil
            }.sorted { $0.0 < $1.0 }
            for (_, host) in mx {
                if let p = ProviderTable.provider(forMX: host), let server = p.server(kind) {
                    return DiscoveredSettings(server: server, source: "MX \(host) → \(p.name)", notes: p.notes, auth: p.auth)
                }
            }
        }

        let prefix = kind == .imap ? "imap" : "pop"
        let candidates = guesses ?? [("\(prefix).\(domain)", kind == .imap ? 993 : 995, kind == .imap ? 143 : 110),
                                     ("mail.\(domain)", kind == .imap ? 993 : 995, kind == .imap ? 143 : 110)]
        for (host, implicitPort, startTLSPort) in candidates {
            log("probing \(host)")
            if await probe(host: host, port: implicitPort, security: .implicit) {
                return DiscoveredSettings(server: ServerSettings(kind, host, implicitPort, .implicit), source: "guess \(host), TLS verified")
            }
            if await probe(host: host, port: startTLSPort, security: .starttls) {
                return DiscoveredSettings(server: ServerSettings(kind, host, startTLSPort, .starttls), source: "guess \(host), STARTTLS verified")
            }
        }
        return nil
    }

    /// Whether `host:port` speaks the protocol with a certificate that verifies.
    public func probe(host: String, port: UInt16, security: ServerSettings.Security) async -> Bool {
        let tls = TLSClientConfiguration(verifyName: host, caFile: caFile)
        let connection: ConnectionSecurity = security == .implicit ? .implicitTLS(tls) : .startTLS(tls)
        do {
            if kind == .pop3 {
                let client = try await POP3Client.connect(host: host, port: port, security: connection, connectTimeout: timeout, ioTimeout: timeout)
                await client.close()
            } else {
                let session = try await IMAPSession.connect(host: host, port: port, security: connection, connectTimeout: timeout, ioTimeout: timeout)
                await session.close()
            }
            return true
        } catch {
            return false
        }
    }

    /// DNS records of `name` through the system resolver (blocking, so off the pool;
    /// given up after `timeout`).
    static func query(_ name: String, type: Int32, timeout: Double) async -> [DNSRecord] {
        let lookup = Task {
            try await runBlocking(label: "mailmirror.dns") { () -> [DNSRecord] in
                var answer = [UInt8](repeating: 0, count: 4096)
                let n = cresolv_query(name, type, &answer, Int32(answer.count))
                guard n > 0 else { return [] }
                return DNSMessage.parse(Array(answer[0..<Int(min(n, 4096))])) ?? []
            }
        }
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
            lookup.cancel()
        }
        defer { timer.cancel() }
        return (try? await lookup.value) ?? []
    }
}

func percentEncoded(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        let c = Character(Unicode.Scalar(b))
        if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) }
        else { out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) }
    }
    return out
}
