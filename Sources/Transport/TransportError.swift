/// Why a connection could not be made or used, in words a user can act on.
///
/// Every case names the peer; `description` says what happened and, where there is one,
/// what to change. `isRetryable` tells schedulers whether trying again later can help.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host name did not resolve.
    case nameNotFound(host: String, detail: String)
    /// Nothing listens on that port (TCP RST).
    case connectionRefused(peer: String)
    /// Another socket-level failure while connecting (network unreachable, …).
    case connectFailed(peer: String, reason: String)
    /// An operation did not finish in time.
    case timedOut(peer: String, operation: String, seconds: Double)
    /// The certificate chain did not verify against the trusted CAs.
    case certificateNotTrusted(peer: String, reason: String)
    /// The certificate is valid but for another name or address.
    case hostnameMismatch(peer: String, expected: String)
    /// TLS negotiation failed for a reason other than the certificate.
    case tlsHandshakeFailed(peer: String, reason: String)
    /// The server closed the connection.
    case closedByPeer(peer: String)
    /// A line from the server exceeded the configured bound.
    case lineTooLong(peer: String, limit: Int)
    /// Bytes arrived after the server accepted STARTTLS and before the handshake.
    case starttlsInjection(peer: String)
    /// A read or write failed at the socket or TLS level.
    case io(peer: String, reason: String)
    /// The connection was already closed by this side.
    case closed(peer: String)

    public var description: String {
        switch self {
        case let .nameNotFound(host, detail):
            return "cannot resolve host name \"\(host)\" (\(detail)); check `host` in the account, or your network/DNS"
        case let .connectionRefused(peer):
            return "connection refused by \(peer): nothing listens there; check `host`, `port` and `tls` in the account"
        case let .connectFailed(peer, reason):
            return "cannot connect to \(peer): \(reason)"
        case let .timedOut(peer, operation, seconds):
            return "timed out after \(formatSeconds(seconds)) \(operation) \(peer); the server or the network is not answering"
        case let .certificateNotTrusted(peer, reason):
            return "the TLS certificate of \(peer) is not trusted (\(reason)); if the server uses a private CA, set ca_file = \"/path/to/ca.pem\" in the account"
        case let .hostnameMismatch(peer, expected):
            return "the TLS certificate of \(peer) is not valid for \"\(expected)\" (host name mismatch); set `host` to a name the certificate covers"
        case let .tlsHandshakeFailed(peer, reason):
            return "TLS handshake with \(peer) failed: \(reason); check `tls` and `port` (implicit TLS is usually 993/995, STARTTLS 143/110)"
        case let .closedByPeer(peer):
            return "\(peer) closed the connection"
        case let .lineTooLong(peer, limit):
            return "\(peer) sent a line longer than \(limit) bytes; connection closed"
        case let .starttlsInjection(peer):
            return "\(peer) sent data before the TLS handshake after STARTTLS (possible injection attack); connection closed"
        case let .io(peer, reason):
            return "connection to \(peer) failed: \(reason)"
        case let .closed(peer):
            return "connection to \(peer) is already closed"
        }
    }

    /// True when the same attempt may succeed later (network trouble), false when
    /// only a configuration change helps (certificates, names).
    public var isRetryable: Bool {
        switch self {
        case .nameNotFound, .connectionRefused, .connectFailed, .timedOut, .closedByPeer, .io, .closed:
            return true
        case .certificateNotTrusted, .hostnameMismatch, .tlsHandshakeFailed, .lineTooLong, .starttlsInjection:
            return false
        }
    }
}

private func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\((s * 10).rounded() / 10) s"
}
