import Transport

/// What `mailmirror check-config --connect` learns from a POP3 server before login.
public struct POP3ProbeResult: Sendable {
    /// The connection, secured as configured, ready for USER/AUTH.
    public var connection: Connection
    /// CAPA lines after any STLS (empty when the server has no CAPA).
    public var capabilities: [String]
    /// The APOP timestamp of the greeting (`<…@…>`), if any.
    public var apopTimestamp: String?
}

/// A POP3 server answered in a way the client cannot go on from.
public enum POP3ProbeError: Error, Sendable, CustomStringConvertible {
    case badGreeting(peer: String, line: String)
    case stlsNotOffered(peer: String)
    case commandFailed(peer: String, command: String, response: String)

    public var description: String {
        switch self {
        case let .badGreeting(peer, line):
            return "\(peer) did not greet like a POP3 server (\"\(line)\"); check `port` and `protocol`"
        case let .stlsNotOffered(peer):
            return "\(peer) does not offer STLS; refusing to log in without TLS (try tls = \"implicit\" with port 995)"
        case let .commandFailed(peer, command, response):
            return "\(peer) refused \(command): \(response)"
        }
    }
}

/// Greeting, CAPA (RFC 2449) and STLS (RFC 2595) before login.
public enum POP3GreetingProbe {
    /// Connects, reads the greeting, upgrades with STLS when configured and reads CAPA
    /// (again after STLS).
    public static func run(host: String, port: UInt16, security: ConnectionSecurity,
                           connectTimeout: Double = 15, ioTimeout: Double = 30) async throws -> POP3ProbeResult {
        let implicitTLS: TLSClientConfiguration? = if case .implicitTLS(let c) = security { c } else { nil }
        let connection = try await Connection.connect(host: host, port: port, tls: implicitTLS,
                                                      connectTimeout: connectTimeout, ioTimeout: ioTimeout)
        do {
            let greeting = String(decoding: try await connection.readLine(), as: UTF8.self)
            guard greeting.hasPrefix("+OK") else {
                throw POP3ProbeError.badGreeting(peer: connection.peer, line: String(greeting.prefix(200)))
            }
            var timestamp: String?
            if let open = greeting.firstIndex(of: "<"), let close = greeting[open...].firstIndex(of: ">"),
               greeting[open...close].contains("@") {
                timestamp = String(greeting[open...close])
            }
            var capabilities = try await capa(connection)
            if case .startTLS(let tls) = security {
                guard capabilities.contains(where: { $0.uppercased() == "STLS" }) else {
                    throw POP3ProbeError.stlsNotOffered(peer: connection.peer)
                }
                try await connection.write(Array("STLS\r\n".utf8))
                let reply = String(decoding: try await connection.readLine(), as: UTF8.self)
                guard reply.hasPrefix("+OK") else {
                    throw POP3ProbeError.commandFailed(peer: connection.peer, command: "STLS", response: reply)
                }
                try await connection.startTLS(tls)
                capabilities = try await capa(connection)
            }
            return POP3ProbeResult(connection: connection, capabilities: capabilities, apopTimestamp: timestamp)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// CAPA's lines, or none when the server answers -ERR (pre-RFC 2449 servers).
    static func capa(_ connection: Connection) async throws -> [String] {
        try await connection.write(Array("CAPA\r\n".utf8))
        let status = String(decoding: try await connection.readLine(), as: UTF8.self)
        guard status.hasPrefix("+OK") else { return [] }
        var lines: [String] = []
        for _ in 0..<10_000 {
            let line = try await connection.readLine()
            if line == [46] { return lines }   // "."
            let unstuffed = line.first == 46 ? Array(line.dropFirst()) : line
            lines.append(String(decoding: unstuffed, as: UTF8.self))
        }
        throw POP3ProbeError.commandFailed(peer: connection.peer, command: "CAPA", response: "no end after 10000 lines")
    }
}
