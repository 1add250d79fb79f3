import Transport

/// Why an IMAP operation failed, with the server's words where it gave any.
public enum IMAPError: Error, Sendable, CustomStringConvertible {
    /// How a refused LOGIN/AUTHENTICATE is classified: for now (too many connections) or
    /// for the credentials.
    static func loginRefusal(peer: String, code: ResponseCode?, text: String) -> IMAPError {
        let forNow: Bool
        switch code {
        case .other(let name, _)?: forNow = ["LIMIT", "INUSE", "UNAVAILABLE"].contains(name)
        default: forNow = false
        }
        let lowered = text.lowercased()
        if forNow || lowered.contains("too many") || lowered.contains("maximum number of connections") {
            return .loginRefusedForNow(peer: peer, text: code.map { "[\($0.name)] " + text } ?? text)
        }
        return .authenticationFailed(peer: peer, text: text)
    }

    /// The server answered NO or BAD.
    case commandFailed(command: String, tag: String, status: ResponseStatus, code: ResponseCode?, text: String)
    /// LOGIN / AUTHENTICATE was refused (wrong password, account locked …).
    case authenticationFailed(peer: String, text: String)
    /// The login was refused for now, not for the credentials: too many connections to the
    /// account (RFC 5530 LIMIT, INUSE, UNAVAILABLE; Gmail's "Too many simultaneous connections").
    case loginRefusedForNow(peer: String, text: String)
    /// The server forbids LOGIN (LOGINDISABLED) and offers no usable mechanism.
    case loginDisabled(peer: String)
    /// The configured mechanism is not among the server's AUTH= capabilities.
    case mechanismNotOffered(peer: String, mechanism: String, offered: [String])
    /// A capability the operation needs is missing.
    case missingCapability(peer: String, String)
    /// The server sent BYE and closed.
    case bye(peer: String, text: String)
    /// The server sent bytes that break the protocol; the connection was closed.
    case protocolViolation(peer: String, IMAPParserError)
    case transport(TransportError)
    /// The session was closed (LOGOUT, an earlier error).
    case closed(peer: String)
    /// Writing a fetched body failed locally (disk full …).
    case bodySinkFailed(String)
    /// Bytes arrived after the OK to STARTTLS (injection attempt).
    case startTLSInjection(peer: String)

    /// A NO whose response code (RFC 5530) blames nothing larger than the command's own
    /// object — for an APPEND, the message (a size LIMIT, a PARSE error, no code at all) —
    /// and not the mailbox, the account or the server (TRYCREATE, NOPERM, OVERQUOTA,
    /// UNAVAILABLE, SERVERBUG, INUSE, CONTACTADMIN …): the other messages may still go.
    public var refusesThisMessage: Bool {
        guard case let .commandFailed(_, _, status, code, _) = self, status == .no else { return false }
        switch code {
        case nil, .parse?, .badCharset?: return true
        case .other(let name, _)?: return ["LIMIT", "TOOBIG", "CANNOT", "CORRUPTION"].contains(name)
        default: return false
        }
    }

    /// The server's own words for a failed command (code and text), else the description.
    public var serverText: String {
        guard case let .commandFailed(_, _, status, code, text) = self else { return description }
        return "\(status.rawValue)\(code.map { " [\($0.name)]" } ?? "") \(text)"
    }

    public var description: String {
        switch self {
        case let .commandFailed(command, tag, status, code, text):
            let codeText = code.map { " [\($0.name)]" } ?? ""
            return "server answered \(status.rawValue)\(codeText) to \(command) (\(tag)): \(text)"
        case let .authenticationFailed(peer, text):
            return "\(peer) refused the login (\(text.isEmpty ? "no reason given" : text)); check username and password_command"
        case let .loginRefusedForNow(peer, text):
            return "\(peer) refused the login for now (\(text)): too many connections to this account — other mail clients, "
                + "or max_connections above what the server allows; mailmirror retries"
        case let .loginDisabled(peer):
            return "\(peer) disables LOGIN and offers no SASL mechanism mailmirror can use (needs TLS first? set tls = \"starttls\" or \"implicit\")"
        case let .mechanismNotOffered(peer, mechanism, offered):
            return "\(peer) does not offer AUTH=\(mechanism) (it offers \(offered.isEmpty ? "none" : offered.joined(separator: ", "))); set auth = \"auto\""
        case let .missingCapability(peer, capability):
            return "\(peer) lacks the \(capability) capability"
        case let .bye(peer, text):
            return "\(peer) closed the session: \(text)"
        case let .protocolViolation(peer, error):
            return "\(peer): \(error); connection closed"
        case .transport(let error):
            return error.description
        case .closed(let peer):
            return "the IMAP session with \(peer) is closed"
        case .bodySinkFailed(let reason):
            return "storing a fetched message failed: \(reason)"
        case .startTLSInjection(let peer):
            return "\(peer) sent data before the TLS handshake after STARTTLS (possible injection attack); connection closed"
        }
    }

    /// True when retrying later may help (network, server busy); false when the
    /// configuration must change (credentials, capabilities, certificates).
    public var isRetryable: Bool {
        switch self {
        case .transport(let e): e.isRetryable
        case .bye, .closed, .protocolViolation, .loginRefusedForNow: true
        case .commandFailed(_, _, let status, _, _): status == .no
        case .authenticationFailed, .loginDisabled, .mechanismNotOffered, .missingCapability, .startTLSInjection: false
        case .bodySinkFailed: true
        }
    }
}

extension ResponseCode {
    /// The code's name as the server writes it.
    public var name: String {
        switch self {
        case .alert: "ALERT"
        case .badCharset: "BADCHARSET"
        case .capability: "CAPABILITY"
        case .parse: "PARSE"
        case .permanentFlags: "PERMANENTFLAGS"
        case .readOnly: "READ-ONLY"
        case .readWrite: "READ-WRITE"
        case .tryCreate: "TRYCREATE"
        case .uidNext: "UIDNEXT"
        case .uidValidity: "UIDVALIDITY"
        case .unseen: "UNSEEN"
        case .highestModSeq: "HIGHESTMODSEQ"
        case .noModSeq: "NOMODSEQ"
        case .modified: "MODIFIED"
        case .appendUID: "APPENDUID"
        case .copyUID: "COPYUID"
        case .closed: "CLOSED"
        case .uidNotSticky: "UIDNOTSTICKY"
        case .other(let name, _): name
        }
    }
}

/// Receives message bodies as they stream in (e.g. into a Maildir `MessageWriter`).
///
/// Called on the session's queue, in order: `begin`, `write`…, `end`. A throw marks the
/// command failed; the rest of that body is read and dropped so the connection stays usable.
public protocol FetchBodySink: AnyObject {
    func begin(_ info: StreamInfo) throws
    func write(_ bytes: [UInt8]) throws
    func end() throws
}
