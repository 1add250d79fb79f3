#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support

/// Carries moves made on the server (a message gone from folder A while a message with the
/// same Message-ID and size appeared in folder B) to the Maildir as a rename, instead of a
/// download into B plus a deletion in A.
///
/// Runs before the folder passes, so the order in which they run does not matter. It costs
/// nothing unless LIST-STATUS shows both a folder that lost messages and one that gained
/// some; then one EXAMINE per such folder with a UID SEARCH (losing) and a header FETCH of
/// the new messages (gaining); local files are read only for gone messages. Journaled: after a crash the pair follows the file wherever it is.
struct ServerMoves {
    let state: StateStore
    let accountID: AccountID
    let store: MaildirStore
    let logger: Logger

    private static let section = Array("HEADER.FIELDS (MESSAGE-ID)".utf8)

    /// Finds and carries out the moves between `work` folders; returns how many were moved.
    func run(session: IMAPSession, work: [IMAPAccountSync.WorkItem]) async throws -> Int {
        try recover(work: work)
        struct Involved { var item: IMAPAccountSync.WorkItem; var lostSince: ModSeq?; var lost = false; var arrivedSince: UID? }
        var involved: [Involved] = []
        for item in work where item.created == nil {
            guard let status = item.status, let messages = status.messages, let now = status.uidNext else { continue }
            let record = try state.folderRecord(id: item.record)
            guard let validity = record.uidValidity, status.uidValidity == validity, let known = record.uidNext else { continue }
            // Unchanged on the server (same UIDNEXT and HIGHESTMODSEQ): neither side of a move.
            if now == known, let modseq = status.highestModSeq, modseq == record.highestModSeq { continue }
            let arrived = max(0, Int(now.rawValue) - Int(known.rawValue))
            let lost = messages < (try state.pairCount(in: item.record)) + arrived   // something vanished
            if lost || arrived > 0 {
                involved.append(Involved(item: item, lostSince: record.highestModSeq, lost: lost, arrivedSince: arrived > 0 ? known : nil))
            }
        }
        guard involved.contains(where: \.lost), involved.contains(where: { $0.arrivedSince != nil }) else { return 0 }
        if involved.count == 1 { return 0 }
        Trace.mark("server moves: \(involved.count) folder(s) involved")

        // One flight per folder involved (no UNSELECT in between: EXAMINE is read-only, the
        // next one simply replaces it): EXAMINE; which known UIDs are gone (VANISHED since
        // the last pass's mod-sequence with QRESYNC, else a UID SEARCH); the Message-ID and
        // size of what arrived. The two FETCHes cover disjoint UID ranges.
        let qresync = await session.enabled.contains("QRESYNC")
        let condstore = await session.capabilities.contains("CONDSTORE")
        var gone: [(item: IMAPAccountSync.WorkItem, pairs: [MessagePair])] = []
        var arrivals: [(item: IMAPAccountSync.WorkItem, uid: UID, flags: [Flag], key: [UInt8])] = []
        var commands: [Command] = []
        var firstCommand: [Int] = []
        for folder in involved {
            firstCommand.append(commands.count)
            commands.append(.examine(folder.item.mailbox, condstore: condstore, qresync: nil))
            let below: UIDSet = folder.arrivedSince.map { $0.rawValue > 1 ? UIDSet(ranges: [1...($0.rawValue - 1)]) : UIDSet() }
                ?? UIDSet(ranges: [1...UInt32.max])
            if folder.lost {
                if qresync, let since = folder.lostSince, !below.isEmpty {
                    commands.append(.uidFetch(below, [.uid], changedSince: since, vanished: true))
                } else {
                    commands.append(.uidSearch(criteria: [.all], returnAll: await session.capabilities.contains("ESEARCH")))
                }
            }
            if let since = folder.arrivedSince {
                commands.append(.uidFetch(UIDSet.from(since), [.uid, .flags, .rfc822Size, .headerFields(["MESSAGE-ID"])], changedSince: nil, vanished: false))
            }
        }
        // Every folder's commands in one flight: the server answers in order, and a folder's
        // FETCH data arrives while its own FETCH is the first one pending for those UIDs.
        let answers = try await session.pipeline(commands)
        Trace.mark("server moves: \(involved.count) folder(s) examined")
        for (index, folder) in involved.enumerated() {
            let item = folder.item
            let range = firstCommand[index]..<(index + 1 < firstCommand.count ? firstCommand[index + 1] : commands.count)
            // A folder that cannot be examined (gone meanwhile) takes no part; its pass reports it.
            guard let results = try? answers[range].map({ try $0.get() }) else { continue }
            var next = 1
            if folder.lost {
                let answer = results[next].untagged
                next += 1
                var pairs: [MessagePair] = []
                if case .uidFetch = commands[range.lowerBound + 1] {
                    let (_, vanished) = IMAPSession.collectFetches(answer)
                    if vanished.count <= 256 {
                        for uid in vanished { if let p = try state.pair(in: item.record, uid: uid), p.localName != nil { pairs.append(p) } }
                    } else {   // a server without expunge history names every missing UID
                        pairs = try state.pairs(in: item.record).filter { $0.localName != nil && $0.uid.map(vanished.contains) == true }
                    }
                } else {
                    var existing = UIDSet()
                    for u in answer {
                        switch u {
                        case .search(let numbers, _): existing = UIDSet(ranges: existing.ranges + numbers.map { $0...$0 })
                        case .esearch(let e): if let all = e.all { existing = UIDSet(ranges: existing.ranges + all.ranges) }
                        default: break
                        }
                    }
                    pairs = try state.pairs(in: item.record).filter {
                        ($0.uid?.rawValue ?? 0) != 0 && $0.localName != nil && !existing.contains($0.uid!)
                    }
                }
                if !pairs.isEmpty { gone.append((item, pairs)) }
            }
            if let since = folder.arrivedSince {
                for m in IMAPSession.collectFetches(results[next].untagged).messages {
                    guard let uid = m.uid, uid.rawValue >= since.rawValue, let size = m.size else { continue }
                    let key = MessageIdentity.identity(header: m.sections[Self.section] ?? [], size: size)
                    if MessageIdentity.hasMessageID(key) { arrivals.append((item, uid, m.flags ?? [], key)) }   // only a Message-ID is trusted here
                }
            }
        }
        try? await session.unselect()   // fails only when the last EXAMINE did (nothing selected)
        Trace.mark("server moves: \(arrivals.count) arrival(s), \(gone.count) folder(s) with gone messages")
        guard !arrivals.isEmpty, !gone.isEmpty else { return 0 }

        // The local files of the gone messages, by identity (read only when something arrived):
        // the header first, and the whole file (for its size in CRLF form) only when its
        // Message-ID is one that arrived.
        var arrivedIDs = Set<[UInt8]>()
        for arrival in arrivals {
            if let bar = arrival.key.lastIndex(of: UInt8(ascii: "|")) { arrivedIDs.insert(Array(arrival.key[3..<bar])) }   // "id:" … "|size"
        }
        var held: [[UInt8]: (item: IMAPAccountSync.WorkItem, pair: MessagePair, file: MaildirMessage)] = [:]
        for (item, pairs) in gone {
            let folder = store.folder(item.folder)
            guard folder.exists else { continue }
            var scanned: [String: MaildirMessage]?   // only if a file is not where its flags say
            for p in pairs {
                var found = folder.locate(baseName: p.localName!, flags: FlagMapping.mirrored(MessageFlags(p.flags)))
                if found == nil {
                    if scanned == nil { scanned = Dictionary(try folder.scan().messages.map { ($0.baseName, $0) }, uniquingKeysWith: { a, _ in a }) }
                    found = scanned?[p.localName!]
                }
                guard let file = found,
                      let (header, _) = MessageIdentity.headerAndWireSize(folder.filePath(of: file), headerOnly: true),
                      let id = MessageIdentity.headerFields(header)["message-id"], arrivedIDs.contains(id),
                      let (_, size) = MessageIdentity.headerAndWireSize(folder.filePath(of: file)) else { continue }
                held[MessageIdentity.identity(header: header, size: size)] = (item, p, file)
            }
        }

        var moved = 0
        for (item, uid, flags, key) in arrivals {
            guard let source = held[key], source.item.record != item.record else { continue }
            held[key] = nil
            let target = store.folder(item.folder)
            let letters = FlagMapping.letters(flags)
            let journal = try state.transaction(durability: .full) {
                try state.addJournalEntry(JournalEntry(
                    account: accountID, folder: source.item.record, kind: .serverMove, uid: source.pair.uid,
                    localName: source.pair.localName, token: String(uid.rawValue), flags: letters.description,
                    targetFolder: item.record, created: Int64(time(nil))))
            }
            do {
                if !target.exists { _ = try store.createFolder(item.folder) }
                _ = try store.folder(source.item.folder).move(source.file, to: target, flags: FlagMapping.mirrored(letters))
            } catch {
                // Nothing is lost: the file stays where it was, the folder passes download
                // the message into the target and remove it from the source instead.
                logger.warn("\(FolderNaming.displayName(source.item.folder)) → \(FolderNaming.displayName(item.folder)): "
                            + "could not move the local file (\(error)); the message is downloaded again instead")
                try state.transaction { try state.resolveJournalEntry(journal) }
                continue
            }
            try state.transaction {
                var pair = source.pair
                pair.folder = item.record
                pair.uid = uid
                pair.flags = letters.description
                try state.updatePair(pair)
                try state.resolveJournalEntry(journal)
            }
            moved += 1
        }
        if moved > 0 { logger.info("\(moved) message(s) moved on the server renamed locally (not downloaded again)") }
        return moved
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
