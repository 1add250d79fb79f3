import IMAP
import Maildir
import State
import Support

/// Folders renamed on one side since the last pass, carried out as a rename on the other
/// side — not as a deletion that brings the old folder back (it still held messages on the
/// other side) plus a new folder copied over in full.
///
/// - Renamed on the server: the old name is gone from the server but still here, a new name
///   appeared there that is not here, and it has the old folder's UIDVALIDITY (servers keep
///   it across RENAME, and keep UIDNEXT from going back): the local directory is renamed,
///   every file keeps its name and every pair its UID.
/// - Renamed here (`mv` in the Maildir): the old name is gone here but still on the server,
///   a new local folder appeared that the server lacks, and most of its files are the old
///   folder's (by base name): the server folder is renamed (RENAME).
///
/// Only a one-to-one match between folders without child folders is taken; anything else
/// (a parent with children, two candidates) is left to the folder rules as before.
struct FolderRenames {
    let sync: IMAPAccountSync
    let session: IMAPSession
    let state: StateStore
    let store: MaildirStore
    let naming: FolderNaming
    let log: Logger

    /// Folder lists as `reconcileFolders` sees them; renamed folders are moved to their new
    /// names in all three. Returns the work items of the renamed folders (dry run: none).
    func run(remote: inout [[String]: MailboxName], local: inout Set<[String]>, known: inout [[String]: FolderRecord],
             statuses: [MailboxName: MailboxStatus], report: inout AccountReport) async throws -> [IMAPAccountSync.WorkItem] {
        let everything = Set(remote.keys).union(local).union(known.keys)
        func hasChildren(_ folder: [String]) -> Bool {
            everything.contains { $0.count > folder.count && $0.starts(with: folder) }
        }
        var work: [IMAPAccountSync.WorkItem] = []

        // Renamed on the server.
        let goneThere = known.keys.filter { remote[$0] == nil && local.contains($0) && $0 != ["INBOX"] && !hasChildren($0) }
        var newThere = remote.keys.filter { known[$0] == nil && !local.contains($0) && !hasChildren($0) }
        if sync.policy.writesLocal && !goneThere.isEmpty && !newThere.isEmpty {
            var status: [[String]: MailboxStatus] = [:]
            for folder in newThere {
                let mailbox = remote[folder]!
                if let known = statuses[mailbox], known.uidValidity != nil { status[folder] = known }
                else { status[folder] = try await session.status(mailbox, items: [.uidValidity, .uidNext]) }
            }
            for old in goneThere.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                guard let record = known[old], let validity = record.uidValidity, validity.rawValue != 0 else { continue }
                let sameValidity = goneThere.filter { known[$0]?.uidValidity == validity }
                let candidates = newThere.filter { folder in
                    guard let s = status[folder], s.uidValidity == validity else { return false }
                    if let was = record.uidNext, let now = s.uidNext, now < was { return false }
                    return true
                }
                guard sameValidity.count == 1, candidates.count == 1, let new = candidates.first, let mailbox = remote[new] else { continue }
                let description = "renamed locally, as on the server (was \(FolderNaming.displayName(old)))"
                newThere.removeAll { $0 == new }
                if sync.dryRun {
                    note(description, new, &report)   // `sync` says "would be"
                    local.remove(old); known[old] = nil; remote[new] = nil
                    continue
                }
                do {
                    try store.renameFolder(old, to: new)
                } catch {
                    log.warn("\(FolderNaming.displayName(old)) was renamed on the server to \(FolderNaming.displayName(new)), but the local folder could not be renamed (\(error)); it is copied instead")
                    continue
                }
                local.remove(old); local.insert(new)
                try adopt(record, as: new, mailbox: mailbox, was: old, known: &known)
                work.append(IMAPAccountSync.WorkItem(mailbox: mailbox, folder: new, record: record.id, created: description,
                                                     status: statuses[mailbox]))
            }
        }

        // Renamed here.
        let goneHere = known.keys.filter { remote[$0] != nil && !local.contains($0) && $0 != ["INBOX"] && !hasChildren($0) }
        var newHere = local.filter { known[$0] == nil && remote[$0] == nil && $0 != ["INBOX"] && !hasChildren($0) }
        if sync.policy.writesRemote && !goneHere.isEmpty && !newHere.isEmpty {
            var files: [[String]: Set<String>] = [:]
            for folder in newHere { files[folder] = Set(((try? store.folder(folder).scan().messages) ?? []).map(\.baseName)) }
            for old in goneHere.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                guard let record = known[old], let oldMailbox = remote[old] else { continue }
                let paired = Set(try state.pairs(in: record.id).compactMap(\.localName).filter { !$0.isEmpty })
                guard !paired.isEmpty else { continue }
                // Most of the new folder's files are the old one's, and most of the old one's are there.
                let candidates = newHere.filter { folder in
                    let names = files[folder] ?? []
                    let shared = names.intersection(paired).count
                    return shared > 0 && shared * 2 >= names.count && shared * 2 >= paired.count
                }
                guard candidates.count == 1, let new = candidates.first, let mailbox = naming.mailbox(for: new) else { continue }
                let description = "renamed on the server, as here (was \(FolderNaming.displayName(old)))"
                newHere.remove(new)
                if sync.dryRun {
                    note(description, new, &report)   // `sync` says "would be"
                    local.remove(new); known[old] = nil; remote[old] = nil
                    continue
                }
                do {
                    try await session.rename(oldMailbox, to: mailbox)
                } catch let error as IMAPError {
                    log.warn("\(FolderNaming.displayName(old)) was renamed here to \(FolderNaming.displayName(new)), but the server refused the RENAME (\(error)); it is copied instead")
                    continue
                }
                remote[old] = nil; remote[new] = mailbox
                try adopt(record, as: new, mailbox: mailbox, was: old, known: &known)
                // The server may give the renamed folder a new UIDVALIDITY: the folder pass
                // then re-matches by Message-ID, nothing is copied again.
                work.append(IMAPAccountSync.WorkItem(mailbox: mailbox, folder: new, record: record.id, created: description, status: nil))
            }
        }
        return work
    }

    /// The folder's record follows it to its new name on both sides.
    private func adopt(_ record: FolderRecord, as new: [String], mailbox: MailboxName, was old: [String],
                       known: inout [[String]: FolderRecord]) throws {
        var updated = record
        updated.remoteName = mailbox.bytes
        updated.localName = MaildirLayout.fs.relativePath(for: new)
        try state.updateFolder(updated)
        known[old] = nil
        known[new] = updated
    }

    private func note(_ text: String, _ folder: [String], _ report: inout AccountReport) {
        var r = FolderReport(folder: folder)
        r.created = text
        report.folders.append(r)
    }
}
