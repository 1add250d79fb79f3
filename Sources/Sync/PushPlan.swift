import Config
import IMAP

extension FolderFilter {
    /// The account's `folders` patterns with the server's views of other folders left out
    /// (`ViewFolders`), and those views: what every user of a LIST (the pass, the daemon's
    /// push, `check-config`) mirrors.
    public static func mirrored(_ account: AccountConfiguration, entries: [ListEntry], naming: FolderNaming) -> (FolderFilter, [ViewFolders.LeftOut]) {
        var filter = FolderFilter(account.folders)
        let views = ViewFolders.leftOut(entries, naming: naming, patterns: account.folders).filter { filter.includes($0.folder) }
        filter.leftOut = Set(views.map(\.folder))
        return (filter, views)
    }
}

/// Which folders the daemon IDLEs on when the server has no NOTIFY: the mirrored folders
/// that `idle` names, INBOX first, as many as `max_connections` leaves beside the sync
/// pass (and a limit the server was found to have); the others are polled.
/// Used by the daemon and by `check-config --connect`.
public struct IdlePlan: Sendable {
    public var watched: [([String], MailboxName)]
    public var polled: [[String]]

    public init(_ account: AccountConfiguration, entries: [ListEntry], naming: FolderNaming, limit: Int? = nil) {
        let (mirrored, _) = FolderFilter.mirrored(account, entries: entries, naming: naming)
        let wanted = FolderFilter(account.idle)
        var folders: [([String], MailboxName)] = []
        for entry in entries where !entry.has("\\Noselect") && !entry.has("\\NonExistent") {
            if let f = naming.folder(for: entry.name), mirrored.includes(f), wanted.includes(f) { folders.append((f, entry.name)) }
        }
        folders.sort { a, b in
            let (ai, bi) = (a.0 == ["INBOX"], b.0 == ["INBOX"])
            return ai != bi ? ai : a.0.lexicographicallyPrecedes(b.0)
        }
        if folders.isEmpty { folders = [(["INBOX"], .inbox)] }
        let budget = min(account.idleConnections, limit ?? Int.max)
        watched = Array(folders.prefix(budget))
        polled = folders.dropFirst(budget).map(\.0)
    }
}
