#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support

/// Carries moves made in the Maildir (a file gone from folder A whose base name appeared in
/// folder B — what mutt, aerc and notmuch tools do) to the server with UID MOVE, instead of a
/// delete plus a re-upload. Journaled: the target's UIDNEXT and the message's Message-ID are
/// recorded before the MOVE, so after a crash the moved message is found again in the
/// target and never uploaded a second time.
struct LocalMoves {
    let account: AccountConfiguration
    let state: StateStore
    let accountID: AccountID
    let store: MaildirStore
    let logger: Logger

    struct Move {
        var pair: MessagePair
        var from: IMAPAccountSync.WorkItem
        var to: IMAPAccountSync.WorkItem
        var messageID: [UInt8]
    }

    /// Finds and performs the moves between `work` folders; returns what was moved where.
    func run(session: IMAPSession, work: [IMAPAccountSync.WorkItem]) async throws -> [MoveRoute] {
        try await recover(session: session, work: work)
        var gone: [String: (IMAPAccountSync.WorkItem, MessagePair)] = [:]
        var appeared: [String: (item: IMAPAccountSync.WorkItem, file: MaildirMessage)] = [:]
        // A move touches both folders' directories: a folder whose Maildir is as it was after
        // the last pass takes part in none, and is not rescanned; fewer than two such
        // folders, no move at all.
        let changed = try state.reading {   // one snapshot for every folder's record
            try work.filter { item in
                let folder = store.folder(item.folder)
                guard folder.exists else { return false }
                if let marker = try state.folderRecord(id: item.record).localMarker, marker == folder.changeMarker() { return false }
                return true
            }
        }
        guard changed.count > 1 else { return [] }
        for item in changed {
            // The scan sorted by name beside the pairs in the same order (a merge, as the
            // planner does): no set of every name, no table of every pair (docs/scale.md).
            let listing = MessageListing(files: try store.folder(item.folder).scan().messages)
            let files = listing.files   // in the order of `listing.nameOrder`
            var cursor = NameCursor(listing.nameOrder)
            let unpaired = { (i: Int) in appeared[files[i].baseName] = (item, files[i]) }   // a file no pair names
            try state.forEachPairInNameOrder(in: item.record) { p in
                guard let name = p.localName, !name.isEmpty else { return }
                if cursor.seek(name, passed: unpaired) == nil, let uid = p.uid, uid.rawValue != 0 { gone[name] = (item, p) }
            }
            cursor.finish(passed: unpaired)
        }
        var moves: [Move] = []
        for (name, (from, pair)) in gone {
            guard let (to, file) = appeared[name], to.record != from.record,
                  let id = MessageIdentity.messageID(ofFile: store.folder(to.folder).filePath(of: file)) else { continue }
            moves.append(Move(pair: pair, from: from, to: to, messageID: id))
        }
        guard !moves.isEmpty, await session.capabilities.contains("UIDPLUS") else { return [] }
        var moved: [MoveRoute] = []
        for group in Dictionary(grouping: moves, by: { "\($0.from.record.rawValue)>\($0.to.record.rawValue)" }).values {
            let from = group[0].from, to = group[0].to
            let uidNext = try await session.status(to.mailbox, items: [.uidNext]).uidNext
            var journal: [JournalID] = []
            try state.transaction(durability: .full) {
                for m in group {
                    journal.append(try state.addJournalEntry(JournalEntry(
                        account: accountID, folder: from.record, kind: .move, uid: m.pair.uid, localName: m.pair.localName,
                        uidNextBefore: uidNext, flags: m.pair.flags, targetFolder: to.record, detail: m.messageID, created: Int64(time(nil)))))
                }
            }
            let route = "\(account.name)/\(FolderNaming.displayName(from.folder)) → \(FolderNaming.displayName(to.folder))"
            // Where each message is in the source now: the pair's UID while the source keeps
            // the UIDVALIDITY the pairs were recorded under. Once it changed (the folder was
            // recreated on the server, or the account now names another mailbox) that UID
            // belongs to another message, and the message is found by its Message-ID (only
            // when exactly one has it; otherwise the passes re-match it instead).
            var now: [UID?] = group.map(\.pair.uid)
            let assigned: AssignedUIDs?
            do {
                let source = try await session.select(from.mailbox)
                if try state.folderRecord(id: from.record).uidValidity != source.uidValidity {
                    for (i, m) in group.enumerated() {
                        let found = try await withMessageID(m.messageID, session: session)
                        now[i] = found.count == 1 ? found[0] : nil
                    }
                }
                let uids = now.compactMap { $0 }
                assigned = uids.isEmpty ? nil : try await session.move(UIDSet(uids), to: to.mailbox)
                try await session.unselect()
            } catch IMAPError.commandFailed(let command, _, _, _, let text) {
                // The server refused (nothing moved): the folder passes carry it out as a
                // deletion in the source and an upload to the target instead.
                logger.warn("\(route): the server refused \(command) (\(text)); "
                            + "the \(group.count) message(s) are uploaded to the target and deleted from the source instead")
                try state.transaction { for entry in journal { try state.resolveJournalEntry(entry) } }
                try? await session.unselect()
                continue
            }
            var newUID: [UID: UID] = [:]
            if let assigned, let source = assigned.source {
                for (old, new) in zip(Array(source), Array(assigned.destination)) { newUID[old] = new }
            }
            // Without COPYUID the new UIDs are found by Message-ID from the noted UIDNEXT.
            for (m, uid) in zip(group, now) where uid.map({ newUID[$0] == nil }) ?? false {
                if let found = try await find(m.messageID, in: to, since: uidNext, session: session) { newUID[uid!] = found }
            }
            var count = 0
            try state.transaction {
                for (i, (m, entry)) in zip(group, journal).enumerated() {
                    try state.resolveJournalEntry(entry)
                    // Not found in the source: nothing was moved; the folder passes see to it.
                    guard let old = now[i] else { continue }
                    // Not found at all (a server without COPYUID that also hides the message
                    // from SEARCH): the pair is dropped and the target's pass pairs it anew.
                    let uid = newUID[old]
                    var pair = m.pair
                    pair.folder = to.record
                    pair.uid = uid
                    // Keyword codes are the source folder's: the target's pass merges the
                    // keywords afresh (a union: none is taken away by the move).
                    pair.flags = MessageFlags(pair.flags).intersection(FlagMapping.six).stored
                    if uid != nil { try state.updatePair(pair) } else { try state.deletePairs(ids: [pair.id!]) }
                    count += 1
                }
            }
            if count > 0 { moved.append(MoveRoute(from: from.folder, to: to.folder, count: count)) }
        }
        return moved
    }

    /// A move journaled before a crash: if the message is in the target (found by its
    /// Message-ID among the UIDs from the noted UIDNEXT), the pair follows it; otherwise the
    /// move did not happen and is simply forgotten (it is detected again).
    func recover(session: IMAPSession, work: [IMAPAccountSync.WorkItem]) async throws {
        let entries = try state.pendingJournalEntries(of: accountID).filter { $0.kind == .move }
        guard !entries.isEmpty else { return }
        for entry in entries {
            if let target = work.first(where: { $0.record == entry.targetFolder }), let id = entry.detail,
               let source = entry.folder, let oldUID = entry.uid,
               let pair = try state.pairs(in: source).first(where: { $0.uid == oldUID }) {
                if let uid = try await find(id, in: target, since: entry.uidNextBefore, session: session) {
                    var moved = pair
                    moved.folder = target.record
                    moved.uid = uid
                    moved.flags = MessageFlags(pair.flags).intersection(FlagMapping.six).stored
                    try state.updatePair(moved)
                }
            }
            try state.resolveJournalEntry(entry.id!)
        }
    }

    /// The UID of the message with `messageID` in `folder`, among the UIDs from `since`.
    func find(_ messageID: [UInt8], in folder: IMAPAccountSync.WorkItem, since: UID?, session: IMAPSession) async throws -> UID? {
        _ = try await session.select(folder.mailbox, readOnly: true)
        let found = try await withMessageID(messageID, among: [.uid(UIDSet.from(since ?? UID(1)))], session: session)
        try await session.unselect()
        return found.first
    }

    /// The UIDs in the selected mailbox whose Message-ID is exactly `messageID` (without its
    /// angle brackets). SEARCH HEADER matches substrings ("a@b" is in "aa@bb"), so each hit's
    /// field is fetched and compared.
    func withMessageID(_ messageID: [UInt8], among criteria: [SearchKey] = [], session: IMAPSession) async throws -> [UID] {
        let hits = try await session.search([.header("Message-ID", messageID)] + criteria)
        guard !hits.isEmpty else { return [] }
        let section = Array("HEADER.FIELDS (MESSAGE-ID)".utf8)
        let (messages, _) = try await session.fetch(hits, items: [.uid, .headerFields(["MESSAGE-ID"])])
        return messages.compactMap { m -> UID? in
            guard let uid = m.uid, var id = MessageIdentity.headerFields(m.sections[section] ?? [])["message-id"] else { return nil }
            if id.first == 60, id.last == 62 { id = Array(id.dropFirst().dropLast()) }
            return id == messageID ? uid : nil
        }.sorted()
    }
}
