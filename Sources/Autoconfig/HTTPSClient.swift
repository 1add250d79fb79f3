import Support
import Transport

/// A small HTTPS GET for autoconfig documents: TLS verified like every other connection,
/// redirects followed (to https only, at most 3), body bounded.
public enum HTTPSClient {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The body of a 200 response, or nil for any other status.
    public static func get(_ url: String, caFile: String? = nil, timeout: Double = 5, maxBytes: Int = 512 * 1024) async throws -> [UInt8]? {
        var current = url
        for _ in 0..<4 {
            guard let (host, port, path) = parse(current) else { throw Failure(description: "not an https URL: \(current)") }
            let connection = try await Connection.connect(host: host, port: port, tls: TLSClientConfiguration(verifyName: host, caFile: caFile),
                                                          connectTimeout: timeout, ioTimeout: timeout)
            defer { Task { await connection.close() } }
            let hostHeader = port == 443 ? host : "\(host):\(port)"
            try await connection.write(Array("GET \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: mailmirror\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8))
            let status = String(decoding: try await connection.readLine(maxLength: 8192), as: UTF8.self)
            let code = Int(status.split(separator: " ").dropFirst().first ?? "") ?? 0
            var headers: [String: String] = [:]
            for _ in 0..<200 {
                let line = String(decoding: try await connection.readLine(maxLength: 8192), as: UTF8.self)
                if line.isEmpty { break }
                if let colon = line.firstIndex(of: ":") {
                    headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingWhitespace()
                }
            }
            if (301...308).contains(code), let location = headers["location"], location.hasPrefix("https://") {
                current = location
                continue
            }
            guard code == 200 else { return nil }
            var body: [UInt8] = []
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                while true {
                    let sizeLine = String(decoding: try await connection.readLine(maxLength: 1024), as: UTF8.self)
                    guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else { throw Failure(description: "bad chunked encoding from \(host)") }
                    if size == 0 { break }
                    guard body.count + size <= maxBytes else { throw Failure(description: "autoconfig document from \(host) is too large") }
                    body += try await connection.read(exactly: size)
                    _ = try await connection.readLine(maxLength: 16)
                }
            } else if let length = headers["content-length"].flatMap({ Int($0) }) {
                guard length <= maxBytes else { throw Failure(description: "autoconfig document from \(host) is too large") }
                body = try await connection.read(exactly: length)
            } else {
                while body.count <= maxBytes {
                    do { body += try await connection.readAvailable(maxCount: 65536) } catch { break }
                }
            }
            return body
        }
        throw Failure(description: "too many redirects for \(url)")
    }

    /// (host, port, path+query) of an https URL.
    static func parse(_ url: String) -> (String, UInt16, String)? {
        guard url.hasPrefix("https://") else { return nil }
        let rest = url.dropFirst("https://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":"), let port = UInt16(authority[authority.index(after: colon)...]) {
            return (String(authority[..<colon]), port, path)
        }
        return (String(authority), 443, path)
    }
}
