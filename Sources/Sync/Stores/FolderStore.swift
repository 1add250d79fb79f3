import Maildir
import Support

/// A message's identity in one store: a UID on a server, a base name in a Maildir.
public enum MessageKey: Hashable, Sendable, CustomStringConvertible {
    case uid(UID)
    case name(String)

    public var description: String {
        switch self {
        case .uid(let u): "UID \(u)"
        case .name(let n): n
        }
    }
}

/// What a store knows of one of its messages.
public struct StoreMessage: Sendable, Equatable {
    public var key: MessageKey
    /// All flag letters (a Maildir keeps unknown ones; a server reports the six mirrored).
    public var flags: MessageFlags
    /// Internal date / modification time, Unix seconds.
    public var date: Int64?
    public var size: Int64?
}

/// A flag change for one message: letters to add and to remove.
public struct FlagChange: Sendable, Equatable {
    public var key: MessageKey
    public var add: MessageFlags
    public var remove: MessageFlags
}

/// Messages arriving into a store from the other one.
///
/// Order of use: `prepare`, then for each message `begin`, `write`…, `end` (bytes as on
/// the wire: CRLF) or `adopt`, then `marks` (journaled by the engine: nothing is visible at
/// the destination yet), then `commit`, which makes them visible and durable and returns
/// their new keys. Until `commit` returns, nothing may be recorded as transferred.
public protocol IncomingBatch: AnyObject {
    /// Prepares to receive `keys` (source keys).
    func prepare(_ keys: [MessageKey]) throws
    func begin(_ key: MessageKey, flags: MessageFlags, date: Int64?) throws
    func write(_ wireBytes: [UInt8]) throws
    func end() throws
    /// How each message received so far can be found at the destination after a crash
    /// (`FolderStore.locate`): asked after the messages are received, before `commit`.
    var marks: [MessageKey: ArrivalMark] { get }
    /// Makes the received messages durable; returns source key → new key in this store.
    func commit() async throws -> [MessageKey: MessageKey]
    /// Asks `commit` to make the file at `path` durable too, before anything becomes visible
    /// (the journal: then its commit needs no fsync of its own, and the flushes happen
    /// together). False when this batch cannot: the caller flushes it itself.
    func alsoFlush(_ path: String) -> Bool
    /// Drops whatever was received and not committed.
    func abort()
    /// After `commit`: the messages the destination refused one by one (the server's NO to
    /// that message, e.g. a size limit), with its words; the others went.
    var refused: [(key: MessageKey, reason: String)] { get }
    /// Messages the source could not read (a file without read permission): left where they
    /// are, with why; tried again by the next pass.
    var unreadable: [(key: MessageKey, reason: String)] { get }
    /// After `commit`: the error that stopped it part-way, once some messages had arrived
    /// (those are in what `commit` returned and are recorded; the engine then fails with it).
    var failure: (any Error)? { get }
    /// Takes a whole message file (Maildir form: LF line ends) instead of its bytes, when the
    /// destination can read it itself at commit; false: send the bytes (`begin`/`write`/`end`).
    func adopt(file path: String, for key: MessageKey, flags: MessageFlags, date: Int64?) throws -> Bool
}

extension IncomingBatch {
    public func adopt(file path: String, for key: MessageKey, flags: MessageFlags, date: Int64?) throws -> Bool { false }
    public var refused: [(key: MessageKey, reason: String)] { [] }
    public var failure: (any Error)? { nil }
    public var unreadable: [(key: MessageKey, reason: String)] { [] }
}

/// One side of a mirrored folder: the table of operations the engine uses, implemented by
/// the IMAP store and the Maildir store. The engine is written once over two of them, so
/// pull and push are the same code path (and IMAP ⇄ IMAP only needs a second IMAP store).
public protocol FolderStore: AnyObject {
    /// For messages: "server" or "Maildir".
    var sideName: String { get }
    /// Every message with its flags.
    func list() async throws -> MessageListing
    /// Adds and removes flags.
    func apply(_ changes: [FlagChange]) async throws
    /// Deletes messages (a server expunges exactly these).
    func delete(_ keys: [MessageKey]) async throws
    /// Streams the messages `keys` into `batch`, in any order.
    func export(_ keys: [MessageKey], flags: [MessageKey: MessageFlags], into batch: IncomingBatch) async throws
    /// A batch that receives messages for this store.
    func incoming() throws -> IncomingBatch
    /// After a crash or a lost reply: the message that arrived with each of `marks`, if it
    /// did (nil where it did not), one to one and never one of `excluding` (already paired).
    func locate(_ marks: [ArrivalMark], excluding: Set<MessageKey>) async throws -> [MessageKey?]
}
