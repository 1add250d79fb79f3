/// How a mail protocol client secures its connection.
public enum ConnectionSecurity: Sendable, Hashable {
    /// TLS from the first byte (IMAPS 993, POP3S 995).
    case implicitTLS(TLSClientConfiguration)
    /// Plain connect, then the protocol's STARTTLS/STLS; refusing to go on without it.
    case startTLS(TLSClientConfiguration)
    /// No TLS at all (only when the account allows plaintext).
    case plain

    /// The TLS settings, if the connection is to use TLS at all.
    public var tlsConfiguration: TLSClientConfiguration? {
        switch self {
        case .implicitTLS(let c), .startTLS(let c): c
        case .plain: nil
        }
    }
}
