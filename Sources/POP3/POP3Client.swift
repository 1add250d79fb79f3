import COpenSSL
import Support
import Transport

/// Login mechanisms for POP3 (`auth`): `login` is USER/PASS, `apop` is used only when asked.
public enum POP3AuthMechanism: String, Sendable, CaseIterable {
    case auto, plain, login, xoauth2, oauthbearer, apop
}

/// Receives a retrieved message as it streams in (dot-unstuffed, CRLF line endings).
public protocol POP3MessageSink: AnyObject {
    func begin(message: Int) throws
    func write(_ bytes: [UInt8]) throws
    func end() throws
}

/// A POP3 client session (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034) on one
/// `Connection`, running on the connection's Dispatch queue.
///
/// Message bodies stream to a sink chunk by chunk, so memory does not depend on message
/// size. With CAPA `PIPELINING`, RETR and DELE batches are sent without waiting.
public actor POP3Client {
    public nonisolated let connection: Connection
    public nonisolated var unownedExecutor: UnownedSerialExecutor { connection.unownedExecutor }
    public nonisolated var peer: String { connection.peer }

    /// CAPA lines (uppercased), empty when the server has no CAPA.
    public private(set) var capabilities: [String] = []
    /// The greeting's APOP timestamp (`<…@…>`), if any.
    public private(set) var apopTimestamp: [UInt8]?
    private var buffer: [UInt8] = []
    private var head = 0
    private var closed = false
    /// Maximum message line length accepted while streaming.
    public var maxLineLength = 1 << 20

    init(connection: Connection) { self.connection = connection }

    /// Whether CAPA lists `name` (first word, case-insensitive).
    public func hasCapability(_ name: String) -> Bool {
        capabilities.contains { $0.split(separator: " ").first.map(String.init) == name.uppercased() }
    }

    /// SASL mechanisms from CAPA `SASL …`.
    public var saslMechanisms: [String] {
        capabilities.first { $0.hasPrefix("SASL ") }.map { $0.split(separator: " ").dropFirst().map(String.init) } ?? []
    }

    // MARK: Connecting

    /// Connects, reads the greeting, upgrades with STLS when `security` asks for it (never
    /// falling back to plaintext) and reads CAPA.
    public static func connect(host: String, port: UInt16, security: ConnectionSecurity,
                               connectTimeout: Double = 15, ioTimeout: Double = 60) async throws -> POP3Client {
        let implicitTLS: TLSClientConfiguration? = if case .implicitTLS(let c) = security { c } else { nil }
        let connection: Connection
        do {
            connection = try await Connection.connect(host: host, port: port, tls: implicitTLS,
                                                      connectTimeout: connectTimeout, ioTimeout: ioTimeout)
        } catch let error as TransportError { throw POP3Error.transport(error) }
        let client = POP3Client(connection: connection)
        do {
            try await client.start(security: security)
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    private func start(security: ConnectionSecurity) async throws {
        let greeting = try await readLine()
        guard let status = POP3Status(line: greeting), status.ok else {
            throw POP3Error.badResponse(peer: peer, line: String(decoding: greeting.prefix(200), as: UTF8.self))
        }
        if let open = greeting.firstIndex(of: UInt8(ascii: "<")), let close = greeting[open...].firstIndex(of: UInt8(ascii: ">")),
           greeting[open...close].contains(UInt8(ascii: "@")) {
            apopTimestamp = Array(greeting[open...close])
        }
        try await readCapabilities()
        if case .startTLS(let tls) = security {
            guard hasCapability("STLS") else { throw POP3Error.stlsNotOffered(peer: peer) }
            _ = try await command("STLS")
            if bufferedCount > 0 { throw POP3Error.transport(.starttlsInjection(peer: peer)) }
            do { try await connection.startTLS(tls) } catch let error as TransportError { throw POP3Error.transport(error) }
            try await readCapabilities()
        }
    }

    private func readCapabilities() async throws {
        try await write("CAPA")
        let line = try await readLine()
        guard let status = POP3Status(line: line) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: line, as: UTF8.self)) }
        guard status.ok else { capabilities = []; return }
        var caps: [String] = []
        for _ in 0..<1000 {
            let l = try await readLine()
            if l == [46] { break }
            let unstuffed = l.first == 46 ? Array(l.dropFirst()) : l
            caps.append(String(decoding: unstuffed, as: UTF8.self).uppercased())
        }
        capabilities = caps
    }

    // MARK: Login

    /// Logs in. `auto`: AUTH PLAIN when offered, else USER/PASS. `apop` only when asked.
    /// - Parameter secret: the password, or the OAuth2 token for XOAUTH2/OAUTHBEARER.
    public func login(username: String, secret: String, mechanism: POP3AuthMechanism = .auto,
                      host: String = "", port: UInt16 = 0) async throws {
        let user = Array(username.utf8)
        let pass = Array(secret.utf8)
        var chosen = mechanism
        if chosen == .auto { chosen = saslMechanisms.contains("PLAIN") ? .plain : .login }
        switch chosen {
        case .login, .auto:
            try await authStep("USER " + username, sensitive: false)
            try await authStep("PASS " + secret, sensitive: true)
        case .apop:
            guard let stamp = apopTimestamp else { throw POP3Error.mechanismNotOffered(peer: peer, mechanism: "APOP (the greeting has no timestamp)") }
            try await authStep("APOP " + username + " " + md5Hex(stamp + pass), sensitive: true)
        case .plain, .xoauth2, .oauthbearer:
            let name = chosen == .plain ? "PLAIN" : chosen == .xoauth2 ? "XOAUTH2" : "OAUTHBEARER"
            guard saslMechanisms.contains(name) else { throw POP3Error.mechanismNotOffered(peer: peer, mechanism: "SASL \(name)") }
            let initial: [UInt8]
            switch chosen {
            case .plain: initial = [0] + user + [0] + pass
            case .xoauth2: initial = Array("user=".utf8) + user + [1] + Array("auth=Bearer ".utf8) + pass + [1, 1]
            default:
                initial = Array("n,a=".utf8) + user + [44, 1] + Array("host=\(host)".utf8) + [1] + Array("port=\(port)".utf8) + [1]
                    + Array("auth=Bearer ".utf8) + pass + [1, 1]
            }
            try await write("AUTH \(name) " + String(decoding: Base64.encode(initial), as: UTF8.self))
            var line = try await readLine()
            if line.first == UInt8(ascii: "+") && line.count >= 1 && (line.count == 1 || line[1] == 32) {
                // An error challenge (XOAUTH2/OAUTHBEARER): answer so the server sends -ERR.
                try await write(chosen == .oauthbearer ? "AQ==" : "")
                line = try await readLine()
            }
            guard let status = POP3Status(line: line) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: line, as: UTF8.self)) }
            guard status.ok else { throw POP3Error.authenticationFailed(peer: peer, status: status) }
        }
        // Capabilities may differ after login (RFC 2449 §5).
        try? await readCapabilities()
    }

    private func authStep(_ line: String, sensitive: Bool) async throws {
        try await write(line)
        let reply = try await readLine()
        guard let status = POP3Status(line: reply) else { throw POP3Error.badResponse(peer: peer, line: sensitive ? "…" : String(decoding: reply, as: UTF8.self)) }
        guard status.ok else { throw POP3Error.authenticationFailed(peer: peer, status: status) }
    }

    // MARK: Transaction state

    /// STAT: (message count, total size in octets).
    public func stat() async throws -> (count: Int, size: Int64) {
        let status = try await command("STAT")
        let parts = status.text.split(separator: " ")
        guard parts.count >= 2, let n = Int(parts[0]), let size = Int64(parts[1]) else {
            throw POP3Error.badResponse(peer: peer, line: "+OK " + status.text)
        }
        return (n, size)
    }

    /// UIDL of every message: (message number, unique id bytes); nil when the server has no UIDL.
    public func uidl() async throws -> [(number: Int, uidl: [UInt8])]? {
        try await write("UIDL")
        let line = try await readLine()
        guard let status = POP3Status(line: line) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: line, as: UTF8.self)) }
        guard status.ok else { return nil }
        return try await listing { parts in
            guard parts.count >= 2, let n = Int(String(decoding: parts[0], as: UTF8.self)) else { return nil }
            return (n, Array(parts[1]))
        }
    }

    /// LIST of every message: (message number, size in octets).
    public func list() async throws -> [(number: Int, size: Int64)] {
        _ = try await command("LIST")
        return try await listing { parts in
            guard parts.count >= 2, let n = Int(String(decoding: parts[0], as: UTF8.self)),
                  let size = Int64(String(decoding: parts[1], as: UTF8.self)) else { return nil }
            return (n, size)
        }
    }

    private func listing<T>(_ parse: ([ArraySlice<UInt8>]) -> T?) async throws -> [T] {
        var result: [T] = []
        for _ in 0..<10_000_000 {
            let line = try await readLine()
            if line == [46] { return result }
            if let item = parse(line.split(separator: 32)) { result.append(item) }
        }
        throw POP3Error.badResponse(peer: peer, line: "listing without end")
    }

    /// TOP n lines: the headers (and `lines` body lines), in memory (bounded by `maxBytes`).
    public func top(_ number: Int, lines: Int = 0, maxBytes: Int = 1 << 20) async throws -> [UInt8] {
        _ = try await command("TOP \(number) \(lines)")
        var decoder = POP3MultilineDecoder(maxLineLength: maxLineLength)
        var out: [UInt8] = []
        while !decoder.isFinished {
            let (bytes, _) = try await decodeSome(&decoder)
            out += bytes
            if out.count > maxBytes { throw POP3Error.lineTooLong(peer: peer) }
        }
        return out
    }

    /// RETR of each message in `numbers`, streamed to `sink` in order; pipelined (a window
    /// of commands in flight) when the server offers PIPELINING. Returns the numbers the
    /// server refused (-ERR), with its answer.
    public func retrieve(_ numbers: [Int], sink: POP3MessageSink) async throws -> [(Int, POP3Status)] {
        let window = hasCapability("PIPELINING") ? 64 : 1
        var refused: [(Int, POP3Status)] = []
        var sent = 0
        for (index, number) in numbers.enumerated() {
            if sent <= index {
                let batch = numbers[sent..<min(numbers.count, index + window)]
                try await writeRaw(Array(batch.map { "RETR \($0)\r\n" }.joined().utf8))
                sent = index + batch.count
            }
            let line = try await readLine()
            guard let status = POP3Status(line: line) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: line, as: UTF8.self)) }
            guard status.ok else { refused.append((number, status)); continue }
            do { try sink.begin(message: number) } catch { throw POP3Error.sinkFailed("\(error)") }
            var decoder = POP3MultilineDecoder(maxLineLength: maxLineLength)
            var sinkError: Error?
            while !decoder.isFinished {
                let (bytes, _) = try await decodeSome(&decoder)
                if sinkError == nil, !bytes.isEmpty {
                    do { try sink.write(bytes) } catch { sinkError = error }   // keep reading: the stream must be consumed
                }
            }
            if let sinkError { throw POP3Error.sinkFailed("\(sinkError)") }
            do { try sink.end() } catch { throw POP3Error.sinkFailed("\(error)") }
        }
        return refused
    }

    /// DELE of each message (pipelined when offered). Deletions take effect only at QUIT.
    public func delete(_ numbers: [Int]) async throws {
        guard !numbers.isEmpty else { return }
        if hasCapability("PIPELINING") {
            for chunk in stride(from: 0, to: numbers.count, by: 64).map({ numbers[$0..<min($0 + 64, numbers.count)] }) {
                try await writeRaw(Array(chunk.map { "DELE \($0)\r\n" }.joined().utf8))
                for number in chunk { try await expectOK("DELE \(number)") }
            }
        } else {
            for number in numbers { _ = try await command("DELE \(number)") }
        }
    }

    private func expectOK(_ name: String) async throws {
        let line = try await readLine()
        guard let status = POP3Status(line: line) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: line, as: UTF8.self)) }
        guard status.ok else { throw POP3Error.server(peer: peer, command: name, status: status) }
    }

    public func noop() async throws { _ = try await command("NOOP") }
    public func reset() async throws { _ = try await command("RSET") }

    /// QUIT: the server applies the DELEs (UPDATE state) and answers +OK; only then are
    /// they done. Closes the connection.
    public func quit() async throws {
        defer { closed = true }
        let status = try await command("QUIT")
        _ = status
        await connection.close()
    }

    /// Closes without QUIT: pending DELEs are discarded by the server.
    public func close() async {
        closed = true
        await connection.close()
    }

    // MARK: I/O

    /// Sends a command and returns its +OK status; -ERR throws `POP3Error.server`.
    @discardableResult
    func command(_ line: String) async throws -> POP3Status {
        try await write(line)
        let reply = try await readLine()
        guard let status = POP3Status(line: reply) else { throw POP3Error.badResponse(peer: peer, line: String(decoding: reply.prefix(200), as: UTF8.self)) }
        guard status.ok else { throw POP3Error.server(peer: peer, command: String(line.split(separator: " ").first ?? ""), status: status) }
        return status
    }

    private func write(_ line: String) async throws { try await writeRaw(Array((line + "\r\n").utf8)) }

    private func writeRaw(_ bytes: [UInt8]) async throws {
        if closed { throw POP3Error.closed(peer: peer) }
        do { try await connection.write(bytes) } catch let error as TransportError { throw POP3Error.transport(error) }
    }

    private var bufferedCount: Int { buffer.count - head }

    private func fill() async throws {
        if closed { throw POP3Error.closed(peer: peer) }
        do {
            let chunk = try await connection.readAvailable(maxCount: 256 * 1024)
            if head > 0 && head == buffer.count { buffer.removeAll(keepingCapacity: true); head = 0 }
            buffer += chunk
        } catch let error as TransportError {
            throw POP3Error.transport(error)
        }
    }

    /// One status or listing line, without its CRLF (bounded at 64 KiB).
    private func readLine() async throws -> [UInt8] {
        while true {
            if let lf = buffer[head...].firstIndex(of: 10) {
                var end = lf
                if end > head && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[head..<end])
                head = lf + 1
                compact()
                return line
            }
            if bufferedCount > 65536 { throw POP3Error.lineTooLong(peer: peer) }
            try await fill()
        }
    }

    /// Decodes what is buffered (reading more when nothing is) into body bytes.
    private func decodeSome(_ decoder: inout POP3MultilineDecoder) async throws -> ([UInt8], Int) {
        if bufferedCount == 0 { try await fill() }
        let available = Array(buffer[head...])
        let result: (output: [UInt8], consumed: Int)
        do { result = try decoder.decode(available) } catch { throw POP3Error.lineTooLong(peer: peer) }
        head += result.consumed
        compact()
        return result
    }

    private func compact() {
        if head == buffer.count { buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20); head = 0 }
        else if head > 65536 && head * 2 > buffer.count { buffer.removeSubrange(0..<head); head = 0 }
    }
}

/// Lowercase hex MD5 (APOP, RFC 1939 §7).
func md5Hex(_ bytes: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: 16)
    var length: UInt32 = 0
    bytes.withUnsafeBytes { raw in
        _ = EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_md5(), nil)
    }
    return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
