#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Support

/// One address a host name resolved to, ready for `connect(2)`.
struct ResolvedAddress: @unchecked Sendable {
    var family: Int32
    var storage: sockaddr_storage
    var length: socklen_t

    /// "127.0.0.1" or "::1", for messages.
    var numericHost: String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = storage
        let rc = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
            }
        }
        guard rc == 0 else { return "?" }
        return String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Resolves host names with getaddrinfo(3) on a Dispatch queue (it blocks, so never on
/// the cooperative pool).
enum AddressResolver {
    /// Every TCP address of `host`, in the resolver's preferred order (IPv6 and IPv4).
    static func resolve(host: String, port: UInt16) async throws -> [ResolvedAddress] {
        try await runBlocking(label: "mailmirror.resolver") { try resolveBlocking(host: host, port: port) }
    }

    static func resolveBlocking(host: String, port: UInt16) throws -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            let detail = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
            throw TransportError.nameNotFound(host: host, detail: detail)
        }
        defer { freeaddrinfo(first) }
        var addresses: [ResolvedAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let addr = info.pointee.ai_addr {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(info.pointee.ai_addrlen)))
                }
                addresses.append(ResolvedAddress(family: info.pointee.ai_family, storage: storage,
                                                 length: info.pointee.ai_addrlen))
            }
            cursor = info.pointee.ai_next
        }
        if addresses.isEmpty {
            throw TransportError.nameNotFound(host: host, detail: "no TCP address")
        }
        return addresses
    }
}

/// True when `name` is an IPv4 or IPv6 address literal (then it is verified as an IP SAN
/// and sent without SNI).
func isIPAddressLiteral(_ name: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
}
