#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir
import State
import Support

/// A folder pass's part in carrying server moves (`MoveBroker`): park the gone messages,
/// and claim the arrivals that match messages parked by other folders.
extension FolderSync {
    /// Parks this pass's gone messages (expunged on the server) that carry a Message-ID,
    /// instead of deleting them now: they leave `plan.deleteLocal`. Returns their names.
    func parkGone(_ plan: inout FolderPlan, near: MaildirFolderStore, record: FolderRecord) async -> Set<String> {
        guard let broker, broker.sources.contains(record.id), !plan.deleteLocal.isEmpty else {
            await broker?.park(record.id, [])
            return []
        }
        var items: [MoveBroker.Parked] = []
        var kept: [FolderPlan.PairName] = []
        var names = Set<String>()
        for gone in plan.deleteLocal {
            // The size in CRLF form: the server's RFC822.SIZE noted at download, else counted
            // from the file (a whole read); the Message-ID from the header alone.
            // (A state that cannot be read leaves the message to be deleted: the broker is never kept waiting.)
            guard let pair = (try? state.pair(id: gone.pairID)) ?? nil, let file = near.file(named: gone.localName),
                  let (header, counted) = MessageIdentity.headerAndWireSize(near.folder.filePath(of: file), headerOnly: pair.size != nil),
                  let id = MessageIdentity.headerFields(header)["message-id"], !id.isEmpty else {
                kept.append(gone)
                continue
            }
            items.append(MoveBroker.Parked(source: record.id, folder: near.folder, pair: pair, file: file, witness: near.witness,
                                           messageID: id, wireSize: pair.size ?? counted))
            names.insert(gone.localName)
        }
        plan.deleteLocal = kept
        await broker.park(record.id, items)
        return names
    }

    /// Renames into this folder the messages parked by other folders that match arrivals
    /// here (same size in CRLF form, then same Message-ID — fetched only for arrivals of a
    /// parked size), instead of downloading them: they leave `plan.downloads`. Journaled
    /// (FULL) before the renames, like every transfer. Returns the files now here.
    func claimArrivals(_ plan: inout FolderPlan, farMessages: MessageListing, far: IMAPFolderStore,
                       near: MaildirFolderStore, record: FolderRecord, log: Logger) async throws -> [String: MessageFlags] {
        guard let broker, broker.targets.contains(record.id), !plan.downloads.isEmpty else { return [:] }
        await broker.waitForParking(by: record.id)
        var sized: [(uid: UID, flags: MessageFlags, candidates: [MoveBroker.Parked])] = []
        for uid in plan.downloads {
            guard let arrival = farMessages[.uid(uid)], let size = arrival.size else { continue }
            let candidates = await broker.candidates(size: size, for: record.id)
            if !candidates.isEmpty { sized.append((uid, arrival.flags, candidates)) }
        }
        guard !sized.isEmpty else { return [:] }
        let headers = try await far.messageIDHeaders(of: sized.map(\.uid))
        var claims: [(uid: UID, flags: MessageFlags, parked: MoveBroker.Parked)] = []
        for (uid, flags, candidates) in sized {
            guard let header = headers[uid], let id = MessageIdentity.headerFields(header)["message-id"], !id.isEmpty else { continue }
            for candidate in candidates where candidate.messageID == id {
                if await broker.take(candidate) {
                    claims.append((uid, flags, candidate))
                    break
                }
            }
        }
        guard !claims.isEmpty else { return [:] }
        let journal = try state.transaction(durability: .full) {
            try claims.map { c in
                try state.addJournalEntry(JournalEntry(
                    account: accountID, folder: c.parked.source, kind: .serverMove, uid: c.parked.pair.uid,
                    localName: c.parked.pair.localName, token: String(c.uid.rawValue), flags: far.keywords.mirroredPart(c.flags).stored,
                    targetFolder: record.id, created: Int64(time(nil))))
            }
        }
        var arrived: [String: MessageFlags] = [:]
        var pairs: [MessagePair] = []
        var claimed = Set<UID>()
        var touched: [String: (MaildirFolder, MaildirSubdirectory)] = [:]   // source directories to sync once
        for c in claims {
            do {
                let renamed = try c.parked.folder.move(c.parked.file, to: near.folder, flags: far.keywords.mirroredPart(c.flags), durably: false)
                touched[c.parked.folder.path + "/" + c.parked.file.subdirectory.rawValue] = (c.parked.folder, c.parked.file.subdirectory)
                c.parked.witness?.expectRemoved(c.parked.file.fileName, from: c.parked.file.subdirectory)
                near.witness?.expectAdded(renamed.fileName, to: renamed.subdirectory)
                arrived[renamed.baseName] = renamed.flags
                var pair = c.parked.pair
                pair.folder = record.id
                pair.uid = c.uid
                pair.flags = far.keywords.mirroredPart(c.flags).stored
                pairs.append(pair)
                claimed.insert(c.uid)
            } catch {
                // Nothing is lost: the file stays where it was (its folder deletes it, as the
                // server expunged it there) and the message is downloaded here instead.
                await broker.release(c.parked)
                log.warn("\(FolderNaming.displayName(c.parked.folder.name)) → here: could not move the local file (\(error)); the message is downloaded instead")
            }
        }
        // The renames are durable before the pairs follow them (one fsync per directory).
        if !claimed.isEmpty { try near.folder.syncSubdirectory(.cur) }
        for (folder, sub) in touched.values { try folder.syncSubdirectory(sub) }
        try state.transaction {
            for pair in pairs { try state.updatePair(pair) }
            for id in journal { try state.resolveJournalEntry(id) }
        }
        plan.downloads.removeAll { claimed.contains($0) }
        if !claimed.isEmpty { log.info("\(claimed.count) message(s) moved here on the server renamed locally (not downloaded again)") }
        return arrived
    }
}
