import Support

/// The status of a tagged or untagged condition response.
public enum ResponseStatus: String, Sendable, Equatable {
    case ok = "OK", no = "NO", bad = "BAD", preauth = "PREAUTH", bye = "BYE"
}

/// One server response, parsed (RFC 3501 §7, RFC 9051 §7 and the extensions in use).
public enum Response: Sendable, Equatable {
    /// `TAG OK|NO|BAD [CODE] text`.
    case tagged(TaggedResponse)
    /// `* …`.
    case untagged(UntaggedResponse)
    /// `+ text` (or base64 data during AUTHENTICATE).
    case continuation([UInt8])
}

/// The completion of a command.
public struct TaggedResponse: Sendable, Equatable {
    public var tag: String
    public var status: ResponseStatus
    public var code: ResponseCode?
    /// Human-readable text, as bytes.
    public var text: [UInt8]

    public init(tag: String, status: ResponseStatus, code: ResponseCode?, text: [UInt8]) {
        self.tag = tag
        self.status = status
        self.code = code
        self.text = text
    }
}

/// Bracketed response codes (RFC 3501 §7.1, RFC 4315, RFC 7162, RFC 5530 …).
public enum ResponseCode: Sendable, Equatable {
    case alert
    case badCharset([String])
    case capability([String])
    case parse
    case permanentFlags([Flag])
    case readOnly
    case readWrite
    case tryCreate
    case uidNext(UID)
    case uidValidity(UIDValidity)
    case unseen(Int)
    case highestModSeq(ModSeq)
    case noModSeq
    case modified(UIDSet)
    case appendUID(UIDValidity, UIDSet)
    case copyUID(UIDValidity, source: UIDSet, destination: UIDSet)
    case closed
    case uidNotSticky
    /// Any other code: its name (uppercased) and the raw text after it.
    case other(String, [UInt8])
}

/// Untagged data.
public enum UntaggedResponse: Sendable, Equatable {
    /// `* OK|NO|BAD|PREAUTH|BYE [CODE] text`.
    case condition(ResponseStatus, ResponseCode?, [UInt8])
    case capability([String])
    case enabled([String])
    case list(ListEntry)
    case lsub(ListEntry)
    case status(MailboxName, [StatusItem: UInt64])
    case flags([Flag])
    case exists(Int)
    case recent(Int)
    case expunge(Int)
    /// RFC 7162 §3.2.10: UIDs gone; `earlier` when answering a QRESYNC/CHANGEDSINCE.
    case vanished(earlier: Bool, UIDSet)
    case fetch(sequence: Int, [FetchAttribute])
    /// `* SEARCH n…` (with `(MODSEQ n)` under CONDSTORE).
    case search([UInt32], modSeq: ModSeq?)
    case esearch(ESearchResponse)
    /// `* ID (...)` or `* ID NIL`.
    case id([String: String]?)
    case namespace(NamespaceResponse)
    /// A response this client does not interpret: its keyword and the raw rest.
    case other(String, [UInt8])
}

/// A LIST or LSUB line.
public struct ListEntry: Sendable, Equatable {
    /// Attributes as sent (`\Noselect`, `\HasChildren`, `\Sent` …).
    public var attributes: [String]
    /// The hierarchy delimiter, or nil for a flat namespace.
    public var delimiter: UInt8?
    public var name: MailboxName

    public init(attributes: [String], delimiter: UInt8?, name: MailboxName) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.name = name
    }

    /// Whether an attribute is present (case-insensitively).
    public func has(_ attribute: String) -> Bool {
        attributes.contains { $0.lowercased() == attribute.lowercased() }
    }
}

/// STATUS items (RFC 3501 §6.3.10, RFC 7162).
public enum StatusItem: String, Sendable, Hashable, CaseIterable {
    case messages = "MESSAGES", recent = "RECENT", uidNext = "UIDNEXT", uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN", highestModSeq = "HIGHESTMODSEQ", size = "SIZE"
}

/// ESEARCH results (RFC 4731).
public struct ESearchResponse: Sendable, Equatable {
    public var tag: String?
    public var uid: Bool
    public var all: UIDSet?
    public var min: UInt32?
    public var max: UInt32?
    public var count: Int?
    public var modSeq: ModSeq?

    public init(tag: String? = nil, uid: Bool = false, all: UIDSet? = nil, min: UInt32? = nil, max: UInt32? = nil, count: Int? = nil, modSeq: ModSeq? = nil) {
        self.tag = tag
        self.uid = uid
        self.all = all
        self.min = min
        self.max = max
        self.count = count
        self.modSeq = modSeq
    }
}

/// One namespace: prefix and delimiter (RFC 2342).
public struct Namespace: Sendable, Equatable {
    public var prefix: [UInt8]
    public var delimiter: UInt8?
}

/// The three namespace lists of `* NAMESPACE`.
public struct NamespaceResponse: Sendable, Equatable {
    public var personal: [Namespace]
    public var otherUsers: [Namespace]
    public var shared: [Namespace]
}

/// One item of a FETCH response.
public enum FetchAttribute: Sendable, Equatable {
    case uid(UID)
    case flags([Flag])
    /// Seconds since the epoch.
    case internalDate(Int64)
    case rfc822Size(Int64)
    case modSeq(ModSeq)
    /// `BODY[section]<origin>`, `BINARY[…]`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`.
    case body(section: [UInt8], origin: Int64?, data: BodyData)
    /// ENVELOPE, BODYSTRUCTURE and others this client does not interpret.
    case other(String)
}

/// Where the bytes of a fetched body section are.
public enum BodyData: Sendable, Equatable {
    /// Small enough to be kept in the response.
    case inline([UInt8])
    /// Delivered to the body sink as it arrived (`streamBegin`/`streamBytes`/`streamEnd`).
    case streamed(size: Int64)
    case nilValue
}
