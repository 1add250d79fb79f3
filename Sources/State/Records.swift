import Support

/// Row id of an account in the state file.
public struct AccountID: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

/// Row id of a folder in the state file.
public struct FolderID: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

/// Row id of a journal entry.
public struct JournalID: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
}

/// What is remembered of one mirrored folder.
public struct FolderRecord: Sendable, Equatable {
    public var id: FolderID
    public var account: AccountID
    /// The server's mailbox name, as bytes (modified UTF-7 or UTF-8 as the server sent it).
    public var remoteName: [UInt8]
    /// The local folder, in its canonical escaped form.
    public var localName: String
    public var uidValidity: UIDValidity?
    public var uidNext: UID?
    public var highestModSeq: ModSeq?
    /// An opaque description of the local side at the last pass (directory mtimes).
    public var localMarker: String?
    /// Unix seconds of the last completed pass.
    public var lastSync: Int64?
    public var lastError: String?
}

/// One message known on both sides (or on its way to the other side).
public struct MessagePair: Sendable, Equatable {
    /// Row id; nil before insertion.
    public var id: Int64?
    public var folder: FolderID
    /// The server UID; nil while an upload's UID is not known yet.
    public var uid: UID?
    /// The Maildir base name; nil while a download is not committed yet.
    public var localName: String?
    /// The flags both sides last agreed on, as Maildir letters in ASCII order.
    public var flags: String
    public var size: Int64?
    public var messageID: [UInt8]?
    public var internalDate: Int64?

    public init(id: Int64? = nil, folder: FolderID, uid: UID?, localName: String?, flags: String,
                size: Int64? = nil, messageID: [UInt8]? = nil, internalDate: Int64? = nil) {
        self.id = id
        self.folder = folder
        self.uid = uid
        self.localName = localName
        self.flags = flags
        self.size = size
        self.messageID = messageID
        self.internalDate = internalDate
    }
}

/// The kinds of work journaled before their side effect.
public enum JournalKind: String, Sendable, CaseIterable {
    /// A message is being fetched into the Maildir.
    case download
    /// A local message is being APPENDed (with `uidValidity`, `uidNextBefore` and what was
    /// sent: `size`, `messageID`, `digest`; entries of versions before 7 carry a `token`).
    case upload
    /// Flags are being pushed to the server.
    case pushFlags = "push-flags"
    /// Server messages are being expunged.
    case deleteRemote = "delete-remote"
    /// Local message files are being removed.
    case deleteLocal = "delete-local"
    /// A message is being moved between server folders.
    case move
    /// A message moved on the server is being moved between local folders (the new UID in
    /// `token`, the target in `targetFolder`).
    case serverMove = "server-move"
    /// A POP3 message is being retrieved (its UIDL in `detail`).
    case pop3Retrieve = "pop3-retrieve"
    /// POP3 DELE commands were sent; confirmed only by QUIT.
    case pop3Delete = "pop3-delete"
}

/// Work recorded before it is done, resolved after its result is recorded.
public struct JournalEntry: Sendable, Equatable {
    public var id: JournalID?
    public var account: AccountID
    public var folder: FolderID?
    public var kind: JournalKind
    public var uid: UID?
    public var localName: String?
    public var token: String?
    public var uidNextBefore: UID?
    public var flags: String?
    public var targetFolder: FolderID?
    public var detail: [UInt8]?
    /// Unix seconds.
    public var created: Int64
    /// An upload's mailbox: its UIDVALIDITY when the batch was journaled.
    public var uidValidity: UIDValidity?
    /// An upload's octets as sent (CRLF line ends).
    public var size: Int64?
    /// An upload's Message-ID field value (unfolded, trimmed); nil when it has none.
    public var messageID: [UInt8]?
    /// SHA-256 of an upload's bytes as sent.
    public var digest: [UInt8]?
    /// The octet count and SHA-256 of those bytes as a server that normalizes line ends
    /// stores them (Courier: bare CRs dropped, an open last line ended), when they differ.
    public var normalizedSize: Int64?
    public var normalizedDigest: [UInt8]?

    public init(id: JournalID? = nil, account: AccountID, folder: FolderID? = nil, kind: JournalKind, uid: UID? = nil,
                localName: String? = nil, token: String? = nil, uidNextBefore: UID? = nil, flags: String? = nil,
                targetFolder: FolderID? = nil, detail: [UInt8]? = nil, created: Int64,
                uidValidity: UIDValidity? = nil, size: Int64? = nil, messageID: [UInt8]? = nil, digest: [UInt8]? = nil,
                normalizedSize: Int64? = nil, normalizedDigest: [UInt8]? = nil) {
        self.id = id
        self.account = account
        self.folder = folder
        self.kind = kind
        self.uid = uid
        self.localName = localName
        self.token = token
        self.uidNextBefore = uidNextBefore
        self.flags = flags
        self.targetFolder = targetFolder
        self.detail = detail
        self.created = created
        self.uidValidity = uidValidity
        self.size = size
        self.messageID = messageID
        self.digest = digest
        self.normalizedSize = normalizedSize
        self.normalizedDigest = normalizedDigest
    }
}

/// A POP3 message that was delivered (and maybe deleted on the server).
public struct POP3Record: Sendable, Equatable {
    public var uidl: [UInt8]
    public var localName: String?
    public var deliveredAt: Int64
    public var deletedAt: Int64?

    public init(uidl: [UInt8], localName: String?, deliveredAt: Int64, deletedAt: Int64? = nil) {
        self.uidl = uidl
        self.localName = localName
        self.deliveredAt = deliveredAt
        self.deletedAt = deletedAt
    }
}

/// How durable a transaction's commit must be.
public enum Durability: Sendable {
    /// WAL with synchronous=NORMAL: survives a crash of mailmirror, may lose the last
    /// commits on power loss. Enough where a lost commit is recovered by reconciliation.
    case normal
    /// synchronous=FULL: on disk before the call returns. Required before a side effect
    /// that cannot be reconciled otherwise (invariants 1 and 2): a journal entry written
    /// before an APPEND or an expunge, a POP3 UIDL before DELE.
    case full
}
