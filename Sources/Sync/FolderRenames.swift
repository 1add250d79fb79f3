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
/// A folder's sub-folders go with it (a RENAME takes them on the server, a directory move
/// in `fs` here): each known one must have moved the same way, or nothing is renamed. Only
/// one-to-one matches are taken; anything else is left to the folder rules as before.
struct FolderRenames {
    let sync: IMAPAccountSync
    let session: IMAPSession
    let state: StateStore
    let store: MaildirStore
    let naming: FolderNaming
    let log: Logger

    /// `folder` with its `from` prefix replaced by `to`.
    static func moved(_ folder: [String], from: [String], to: [String]) -> [String] { to + folder.dropFirst(from.count) }

    /// The names strictly below `folder`.
    static func below(_ folder: [String], in names: some Sequence<[String]>) -> [[String]] {
        names.filter { $0.count > folder.count && $0.starts(with: folder) }
    }

    /// Folder lists as `reconcileFolders` sees them; renamed folders are moved to their new
    /// names in all three. Returns the work items of the renamed folders (dry run: none).
    func run(remote: inout [[String]: MailboxName], local: inout Set<[String]>, known: inout [[String]: FolderRecord],
             statuses: [MailboxName: MailboxStatus], report: inout AccountReport) async throws -> [IMAPAccountSync.WorkItem] {
        var work: [IMAPAccountSync.WorkItem] = []
        let shallowFirst: ([String], [String]) -> Bool = { $0.count != $1.count ? $0.count < $1.count : $0.lexicographicallyPrecedes($1) }

        // Renamed on the server.
        let goneThere = known.keys.filter { remote[$0] == nil && local.contains($0) && $0 != ["INBOX"] }.sorted(by: shallowFirst)
        var newThere = Set(remote.keys.filter { known[$0] == nil && !local.contains($0) })
        if sync.policy.writesLocal && !goneThere.isEmpty && !newThere.isEmpty {
            var status: [[String]: MailboxStatus] = [:]
            for folder in newThere {
                let mailbox = remote[folder]!
                if let listed = statuses[mailbox], listed.uidValidity != nil { status[folder] = listed }
                else { status[folder] = try? await session.status(mailbox, items: [.uidValidity, .uidNext]) }   // gone again: no rename
            }
            let validities = goneThere.compactMap { known[$0]?.uidValidity }
            for old in goneThere {
                guard let record = known[old], let validity = record.uidValidity, validity.rawValue != 0,
                      validities.filter({ $0 == validity }).count == 1 else { continue }
                let candidates = newThere.filter { folder in
                    guard let s = status[folder], s.uidValidity == validity, !folder.starts(with: old) else { return false }
                    if let was = record.uidNext, let now = s.uidNext, now < was { return false }
                    return true
                }
                guard candidates.count == 1, let new = candidates.first else { continue }
                // The known sub-folders went along, each with its own UIDVALIDITY.
                let subs = Self.below(old, in: known.keys)
                guard subs.allSatisfy({ sub in
                    let target = Self.moved(sub, from: old, to: new)
                    return remote[sub] == nil && newThere.contains(target) && status[target]?.uidValidity == known[sub]?.uidValidity
                }) else { continue }
                let moving = [old] + subs
                let targets = moving.map { Self.moved($0, from: old, to: new) }
                newThere.subtract(targets)
                let description = "renamed locally, as on the server (was \(FolderNaming.displayName(old)))"
                if sync.dryRun {
                    note(description, new, &report)   // `sync` says "would be"
                    for f in moving { local.remove(f); known[f] = nil }
                    for t in targets { remote[t] = nil }
                    continue
                }
                do {
                    try store.renameFolder(old, to: new)
                } catch {
                    log.warn("\(FolderNaming.displayName(old)) was renamed on the server to \(FolderNaming.displayName(new)), but the local folder could not be renamed (\(error)); it is copied instead")
                    continue
                }
                // Every local folder at or below the old name moved with the directory.
                for f in local where f == old || f.starts(with: old) && f.count > old.count {
                    local.remove(f)
                    local.insert(Self.moved(f, from: old, to: new))
                }
                for (f, target) in zip(moving, targets) {
                    guard let r = known[f], let mailbox = remote[target] else { continue }
                    try adopt(r, as: target, mailbox: mailbox, was: f, known: &known)
                    work.append(IMAPAccountSync.WorkItem(mailbox: mailbox, folder: target, record: r.id,
                                                         created: f == old ? description : "renamed locally with \(FolderNaming.displayName(old))",
                                                         status: statuses[mailbox]))
                }
            }
        }

        // Renamed here.
        let goneHere = known.keys.filter { remote[$0] != nil && !local.contains($0) && $0 != ["INBOX"] }.sorted(by: shallowFirst)
        var newHere = Set(local.filter { known[$0] == nil && remote[$0] == nil && $0 != ["INBOX"] })
        if sync.policy.writesRemote && !goneHere.isEmpty && !newHere.isEmpty {
            var files: [[String]: Set<String>] = [:]
            for folder in newHere { files[folder] = Set(((try? store.folder(folder).scan().messages) ?? []).map(\.baseName)) }
            for old in goneHere {
                guard let record = known[old], let oldMailbox = remote[old] else { continue }
                let paired = Set(try state.pairs(in: record.id).compactMap(\.localName).filter { !$0.isEmpty })
                guard !paired.isEmpty else { continue }
                // Most of the new folder's files are the old one's, and most of the old one's are there.
                let candidates = newHere.filter { folder in
                    guard !folder.starts(with: old) else { return false }
                    let names = files[folder] ?? []
                    let shared = names.intersection(paired).count
                    return shared > 0 && shared * 2 >= names.count && shared * 2 >= paired.count
                }
                guard candidates.count == 1, let new = candidates.first, let mailbox = naming.mailbox(for: new) else { continue }
                // The known sub-folders moved along here (a directory move) and are still there.
                let subs = Self.below(old, in: known.keys)
                guard subs.allSatisfy({ sub in
                    let target = Self.moved(sub, from: old, to: new)
                    return !local.contains(sub) && remote[sub] != nil && newHere.contains(target) && naming.mailbox(for: target) != nil
                }) else { continue }
                let moving = [old] + subs
                let targets = moving.map { Self.moved($0, from: old, to: new) }
                newHere.subtract(targets)
                let description = "renamed on the server, as here (was \(FolderNaming.displayName(old)))"
                if sync.dryRun {
                    note(description, new, &report)   // `sync` says "would be"
                    for f in moving { remote[f] = nil; known[f] = nil }
                    for t in targets { local.remove(t) }
                    continue
                }
                do {
                    try await session.rename(oldMailbox, to: mailbox)
                } catch let error as IMAPError {
                    log.warn("\(FolderNaming.displayName(old)) was renamed here to \(FolderNaming.displayName(new)), but the server refused the RENAME (\(error)); it is copied instead")
                    continue
                }
                // The server moved every mailbox at or below the old name.
                for f in remote.keys where f == old || f.starts(with: old) && f.count > old.count {
                    let target = Self.moved(f, from: old, to: new)
                    remote[f] = nil
                    remote[target] = naming.mailbox(for: target)
                }
                for (f, target) in zip(moving, targets) {
                    guard let r = known[f], let targetMailbox = remote[target] else { continue }
                    try adopt(r, as: target, mailbox: targetMailbox, was: f, known: &known)
                    // The server may give a renamed folder a new UIDVALIDITY: its pass then
                    // re-matches by Message-ID, nothing is copied again.
                    work.append(IMAPAccountSync.WorkItem(mailbox: targetMailbox, folder: target, record: r.id,
                                                         created: f == old ? description : "renamed on the server with \(FolderNaming.displayName(old))",
                                                         status: nil))
                }
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
