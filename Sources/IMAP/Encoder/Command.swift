import Support

/// A STORE operation (RFC 3501 §6.4.6).
public enum StoreOperation: Sendable, Equatable {
    case add, remove, replace
    var prefix: String { self == .add ? "+" : self == .remove ? "-" : "" }
}

/// What to fetch (RFC 3501 §6.4.5).
public enum FetchItem: Sendable, Equatable {
    case uid, flags, internalDate, rfc822Size, modSeq
    /// `BODY.PEEK[section]` (does not set \Seen); "" is the whole message.
    case bodyPeek(section: String)
    /// `BODY.PEEK[HEADER.FIELDS (…)]`.
    case headerFields([String])

    var text: String {
        switch self {
        case .uid: "UID"
        case .flags: "FLAGS"
        case .internalDate: "INTERNALDATE"
        case .rfc822Size: "RFC822.SIZE"
        case .modSeq: "MODSEQ"
        case .bodyPeek(let section): "BODY.PEEK[\(section)]"
        case .headerFields(let names): "BODY.PEEK[HEADER.FIELDS (\(names.joined(separator: " ")))]"
        }
    }
}

/// QRESYNC parameters of SELECT (RFC 7162 §3.2.5).
public struct QResyncParameters: Sendable, Equatable {
    public var uidValidity: UIDValidity
    public var modSeq: ModSeq
    public var knownUIDs: UIDSet?

    public init(uidValidity: UIDValidity, modSeq: ModSeq, knownUIDs: UIDSet? = nil) {
        self.uidValidity = uidValidity
        self.modSeq = modSeq
        self.knownUIDs = knownUIDs
    }
}

/// Bytes of a message to APPEND, produced chunk by chunk (from a file, with CRLF line
/// endings), with the exact wire size known in advance for the literal.
public protocol MessageSource: AnyObject, Sendable {
    /// The number of bytes `nextChunk` will produce in all.
    var size: Int64 { get }
    /// The next chunk, or nil at the end.
    func nextChunk() throws -> [UInt8]?
}

/// One message of an APPEND.
public struct AppendMessage: Sendable {
    public var flags: [Flag]
    /// Unix seconds, sent as the internal date.
    public var internalDate: Int64?
    public var source: MessageSource

    public init(flags: [Flag], internalDate: Int64?, source: MessageSource) {
        self.flags = flags
        self.internalDate = internalDate
        self.source = source
    }
}

/// Every command the mirror sends, as data (RFC 3501 §6 and extensions).
public enum Command: Sendable {
    case capability
    case noop
    case logout
    case startTLS
    case login(username: [UInt8], password: [UInt8])
    /// `AUTHENTICATE mech [initial-response]` (base64 already applied).
    case authenticate(mechanism: String, initialResponse: [UInt8]?)
    case enable([String])
    case id([(String, String)]?)
    case namespace
    case list(reference: [UInt8], pattern: [UInt8], returnSpecialUse: Bool, returnStatus: [StatusItem] = [])
    case select(MailboxName, condstore: Bool, qresync: QResyncParameters?)
    case examine(MailboxName, condstore: Bool, qresync: QResyncParameters?)
    case status(MailboxName, [StatusItem])
    case create(MailboxName)
    case delete(MailboxName)
    case rename(MailboxName, MailboxName)
    case subscribe(MailboxName)
    case uidFetch(UIDSet, [FetchItem], changedSince: ModSeq?, vanished: Bool)
    /// `FETCH` by message sequence numbers (written like a UID set): for paging a large
    /// mailbox, since the server may not send EXPUNGE during FETCH (RFC 3501 §7.4.1).
    case fetch(UIDSet, [FetchItem])
    /// `UID SEARCH` with raw criteria (e.g. `HEADER X-Mailmirror-Token abc`), ESEARCH `RETURN (ALL)` when asked.
    case uidSearch(criteria: [SearchKey], returnAll: Bool)
    case uidStore(UIDSet, StoreOperation, [Flag], silent: Bool, unchangedSince: ModSeq?)
    case uidCopy(UIDSet, MailboxName)
    case uidMove(UIDSet, MailboxName)
    case uidExpunge(UIDSet)
    case expunge
    case close
    case unselect
    /// One or more messages (several need MULTIAPPEND).
    case append(MailboxName, [AppendMessage])
    case idle
    case compressDeflate
    /// NOTIFY (RFC 5465) with its event specification as written, e.g.
    /// `SET STATUS (personal (MessageNew MessageExpunge))`.
    case notify(String)

    /// The command's name, for error messages.
    public var name: String {
        switch self {
        case .capability: "CAPABILITY"
        case .noop: "NOOP"
        case .logout: "LOGOUT"
        case .startTLS: "STARTTLS"
        case .login: "LOGIN"
        case .authenticate(let m, _): "AUTHENTICATE \(m)"
        case .enable: "ENABLE"
        case .id: "ID"
        case .namespace: "NAMESPACE"
        case .list: "LIST"
        case .select(let m, _, _): "SELECT \(m)"
        case .examine(let m, _, _): "EXAMINE \(m)"
        case .status(let m, _): "STATUS \(m)"
        case .create(let m): "CREATE \(m)"
        case .delete(let m): "DELETE \(m)"
        case .rename(let a, let b): "RENAME \(a) \(b)"
        case .subscribe(let m): "SUBSCRIBE \(m)"
        case .uidFetch: "UID FETCH"
        case .fetch: "FETCH"
        case .uidSearch: "UID SEARCH"
        case .uidStore: "UID STORE"
        case .uidCopy(_, let m): "UID COPY to \(m)"
        case .uidMove(_, let m): "UID MOVE to \(m)"
        case .uidExpunge: "UID EXPUNGE"
        case .expunge: "EXPUNGE"
        case .close: "CLOSE"
        case .unselect: "UNSELECT"
        case .append(let m, _): "APPEND to \(m)"
        case .idle: "IDLE"
        case .compressDeflate: "COMPRESS DEFLATE"
        case .notify: "NOTIFY"
        }
    }
}

/// A search key (RFC 3501 §6.4.4), the few the mirror uses.
public indirect enum SearchKey: Sendable, Equatable {
    case all
    case uid(UIDSet)
    /// `HEADER name value` (substring match).
    case header(String, [UInt8])
    /// `SINCE date` (internal date on or after that day).
    case since(Int64)
    case not(SearchKey)
    case and([SearchKey])
}
