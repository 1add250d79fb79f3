import Maildir
import Support

/// The server's side of a folder as a CONDSTORE pass sees it: only the messages changed
/// since the last pass (new ones among them) are listed, and which vanished is known; every
/// other message a pair names holds what the pair last agreed on (with direction = both the
/// agreed flags are the server's as of that pass). No table of every pair's flags is built:
/// the planner hands each pair's agreed letters in (docs/scale.md).
public struct ServerChanges: ServerFlags {
    /// The changed messages (and those left on the server on purpose), by UID.
    public let listed: MessageListing
    private let vanished: (UID) -> Bool
    /// How many messages the server holds (SELECT's EXISTS), for the mass-deletion guard.
    public let count: Int

    public init(listed: MessageListing, vanished: @escaping (UID) -> Bool, count: Int) {
        self.listed = listed
        self.vanished = vanished
        self.count = count
    }

    /// A whole listing: a message it lacks is gone.
    public init(complete listing: MessageListing) {
        self.init(listed: listing, vanished: { _ in true }, count: listing.count)
    }

    public func flags(of uid: UID, agreed: MessageFlags) -> MessageFlags? {
        if let m = listed[.uid(uid)] { return m.flags }
        return vanished(uid) ? nil : agreed
    }

    public var uids: [UID] { listed.uids }
}
