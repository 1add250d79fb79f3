#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support

/// Server moves (a message gone from folder A while a message with the same Message-ID and
/// size appeared in folder B) are carried to the Maildir as a rename, instead of a download
/// into B plus a deletion in A, by the folder passes themselves (`MoveBroker`). This finds
/// the folders that can take part, from LIST-STATUS alone, and recovers moves a crash
/// interrupted.
struct ServerMoves {
    let state: StateStore
    let accountID: AccountID
    let store: MaildirStore

    /// Folders that lost messages since the last pass (fewer than their pairs plus what
    /// arrived) and folders that gained some (UIDNEXT grew), from LIST-STATUS; both empty
    /// when no move is possible (nothing lost, nothing gained, or one folder only).
    static func candidates(_ work: [IMAPAccountSync.WorkItem], state: StateStore) throws -> (sources: Set<FolderID>, targets: Set<FolderID>) {
        var sources = Set<FolderID>(), targets = Set<FolderID>()
        for item in work {
            guard let status = item.status, let messages = status.messages, let now = status.uidNext else { continue }
            let record = try state.folderRecord(id: item.record)
            if item.created != nil {
                // A folder new to mailmirror (created here this pass): all it holds arrived,
                // maybe moved from a folder mailmirror knows. Other new work items take no part.
                if record.uidValidity == nil && record.uidNext == nil && messages > 0 { targets.insert(item.record) }
                continue
            }
            guard let validity = record.uidValidity, status.uidValidity == validity, let known = record.uidNext else { continue }
            // Unchanged on the server (same UIDNEXT and HIGHESTMODSEQ): neither side of a move.
            if now == known, let modseq = status.highestModSeq, modseq == record.highestModSeq { continue }
            let arrived = max(0, Int(now.rawValue) - Int(known.rawValue))
            if messages < (try state.pairCount(in: item.record)) + arrived { sources.insert(item.record) }   // something vanished
            if arrived > 0 { targets.insert(item.record) }
        }
        guard !sources.isEmpty, !targets.isEmpty, sources.union(targets).count > 1 else { return ([], []) }
        return (sources, targets)
    }

    /// A server move interrupted by a crash: the pair follows the file (in the target folder
    /// if the rename happened, else it stays where it was and the move is detected again).
    func recover(work: [IMAPAccountSync.WorkItem]) throws {
        for entry in try state.pendingJournalEntries(of: accountID) where entry.kind == .serverMove {
            if let source = entry.folder, let target = entry.targetFolder, let name = entry.localName,
               let newUID = entry.token.flatMap({ UInt32($0) }), let oldUID = entry.uid,
               let item = work.first(where: { $0.record == target }),
               let pair = try state.pairs(in: source).first(where: { $0.uid == oldUID && $0.localName == name }) {
                let folder = store.folder(item.folder)
                if folder.exists, try folder.scan().messages.contains(where: { $0.baseName == name }) {
                    var moved = pair
                    moved.folder = target
                    moved.uid = UID(newUID)
                    moved.flags = entry.flags ?? pair.flags
                    try state.updatePair(moved)
                }
            }
            try state.resolveJournalEntry(entry.id!)
        }
    }
}
