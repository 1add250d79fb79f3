import Transport

/// Why a POP3 operation failed, in words a user can act on.
public enum POP3Error: Error, Sendable, CustomStringConvertible {
    /// The server answered -ERR.
    case server(peer: String, command: String, status: POP3Status)
    /// USER/PASS, APOP or AUTH was refused.
    case authenticationFailed(peer: String, status: POP3Status)
    /// The greeting or a status line was not POP3.
    case badResponse(peer: String, line: String)
    /// STLS was configured but is not offered: refused rather than sending the password in clear.
    case stlsNotOffered(peer: String)
    /// The configured mechanism is not offered (or APOP without a timestamp).
    case mechanismNotOffered(peer: String, mechanism: String)
    case transport(TransportError)
    /// A message line exceeded the bound (hostile server).
    case lineTooLong(peer: String)
    /// Storing a retrieved message failed locally.
    case sinkFailed(String)
    case closed(peer: String)

    public var description: String {
        switch self {
        case let .server(peer, command, status):
            return "\(peer) answered -ERR to \(command)\(Self.explain(status))"
        case let .authenticationFailed(peer, status):
            return "\(peer) refused the login\(Self.explain(status)); check username and password_command"
        case let .badResponse(peer, line):
            return "\(peer) did not answer like a POP3 server (\"\(line.prefix(100))\"); check `port` and `protocol`"
        case let .stlsNotOffered(peer):
            return "\(peer) does not offer STLS; refusing to log in without TLS (try tls = \"implicit\" with port 995)"
        case let .mechanismNotOffered(peer, mechanism):
            return "\(peer) does not offer \(mechanism); set auth = \"auto\""
        case .transport(let error):
            return error.description
        case .lineTooLong(let peer):
            return "\(peer) sent a message line longer than the limit; connection closed"
        case .sinkFailed(let reason):
            return "storing a downloaded message failed: \(reason)"
        case .closed(let peer):
            return "the POP3 session with \(peer) is closed"
        }
    }

    /// The server's words plus what its response code means (RFC 2449, RFC 3206).
    static func explain(_ status: POP3Status) -> String {
        let meaning: String
        switch status.code {
        case "IN-USE": meaning = " (the mailbox is in use by another client; mailmirror will try again later)"
        case "LOGIN-DELAY": meaning = " (the server limits how often you may log in; mailmirror will wait)"
        case "SYS/TEMP": meaning = " (a temporary problem on the server; mailmirror will try again later)"
        case "SYS/PERM": meaning = " (a permanent problem on the server; contact your provider)"
        case "AUTH": meaning = " (wrong credentials)"
        default: meaning = ""
        }
        return (status.text.isEmpty ? "" : ": \(status.text)") + meaning
    }

    /// Whether trying again later can help.
    public var isRetryable: Bool {
        switch self {
        case .server(_, _, let status): status.code != "SYS/PERM"
        case .authenticationFailed(_, let status): status.code == "IN-USE" || status.code == "LOGIN-DELAY" || status.code == "SYS/TEMP"
        case .transport(let e): e.isRetryable
        case .closed, .sinkFailed: true
        case .badResponse, .stlsNotOffered, .mechanismNotOffered, .lineTooLong: false
        }
    }
}
