import Transport

/// What `mailmirror check-config --connect` learns from an IMAP server before login.
public struct IMAPProbeResult: Sendable {
    /// The connection, secured as configured, ready for the next command.
    public var connection: Connection
    /// Capabilities as the server listed them after any STARTTLS (atoms, original case).
    public var capabilities: [String]
    /// Whether the greeting was PREAUTH (already authenticated).
    public var preauthenticated: Bool
}

/// A server answered in a way the client cannot go on from.
public enum IMAPProbeError: Error, Sendable, CustomStringConvertible {
    /// The greeting was BYE or not an IMAP greeting at all.
    case badGreeting(peer: String, line: String)
    /// STARTTLS was configured but the server does not offer it.
    case startTLSNotOffered(peer: String)
    /// A command got NO or BAD.
    case commandFailed(peer: String, command: String, response: String)

    public var description: String {
        switch self {
        case let .badGreeting(peer, line):
            return "\(peer) did not greet like an IMAP server (\"\(line)\"); check `port` and `protocol`"
        case let .startTLSNotOffered(peer):
            return "\(peer) does not offer STARTTLS; refusing to log in without TLS (try tls = \"implicit\" with port 993)"
        case let .commandFailed(peer, command, response):
            return "\(peer) refused \(command): \(response)"
        }
    }
}

/// The greeting, CAPABILITY and STARTTLS exchange that precedes login.
///
/// Deliberately small: it reads whole response lines, which is all these three steps
/// need (CAPABILITY and greetings carry no literals). The full IMAP session builds on the
/// streaming parser instead.
public enum IMAPGreetingProbe {
    /// Connects, reads the greeting, upgrades with STARTTLS when configured (capabilities
    /// are read again afterwards, as RFC 3501 §6.2.1 requires), and returns the capabilities.
    public static func run(host: String, port: UInt16, security: ConnectionSecurity,
                           connectTimeout: Double = 15, ioTimeout: Double = 30) async throws -> IMAPProbeResult {
        let implicitTLS: TLSClientConfiguration? = if case .implicitTLS(let c) = security { c } else { nil }
        let connection = try await Connection.connect(host: host, port: port, tls: implicitTLS,
                                                      connectTimeout: connectTimeout, ioTimeout: ioTimeout)
        do {
            let greeting = try await connection.readLine()
            let text = String(decoding: greeting, as: UTF8.self)
            let upper = text.uppercased()
            guard upper.hasPrefix("* OK") || upper.hasPrefix("* PREAUTH") else {
                throw IMAPProbeError.badGreeting(peer: connection.peer, line: String(text.prefix(200)))
            }
            let preauth = upper.hasPrefix("* PREAUTH")
            var tag = 0
            var capabilities = try await capability(connection, tag: &tag)
            if case .startTLS(let tls) = security {
                guard capabilities.contains(where: { $0.uppercased() == "STARTTLS" }) else {
                    throw IMAPProbeError.startTLSNotOffered(peer: connection.peer)
                }
                _ = try await command("STARTTLS", connection, tag: &tag)
                try await connection.startTLS(tls)
                capabilities = try await capability(connection, tag: &tag)
            }
            return IMAPProbeResult(connection: connection, capabilities: capabilities, preauthenticated: preauth)
        } catch {
            await connection.close()
            throw error
        }
    }

    static func capability(_ connection: Connection, tag: inout Int) async throws -> [String] {
        let untagged = try await command("CAPABILITY", connection, tag: &tag)
        var caps: [String] = []
        for line in untagged {
            let words = line.split(separator: " ")
            if words.count >= 2, words[1].uppercased() == "CAPABILITY" {
                caps.append(contentsOf: words.dropFirst(2).map(String.init))
            }
        }
        return caps
    }

    /// Sends `name`, collects untagged lines until the tagged reply; NO/BAD throws.
    static func command(_ name: String, _ connection: Connection, tag: inout Int) async throws -> [String] {
        tag += 1
        let t = "P\(tag)"
        try await connection.write(Array("\(t) \(name)\r\n".utf8))
        var untagged: [String] = []
        for _ in 0..<10_000 {
            let line = String(decoding: try await connection.readLine(), as: UTF8.self)
            if line.hasPrefix(t + " ") {
                let rest = line.dropFirst(t.count + 1)
                if rest.uppercased().hasPrefix("OK") { return untagged }
                throw IMAPProbeError.commandFailed(peer: connection.peer, command: name, response: String(rest))
            }
            untagged.append(line)
        }
        throw IMAPProbeError.commandFailed(peer: connection.peer, command: name, response: "no tagged reply after 10000 lines")
    }
}
