#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support

/// What one pass did to one folder.
public struct FolderReport: Sendable {
    public var folder: [String]
    public var downloaded = 0
    public var uploaded = 0
    public var flagChanges = 0
    public var deleted = 0
    public var heldDeletions = 0
    public var recovered = 0
    public var created: String?
    public var error: String?

    public init(folder: [String]) { self.folder = folder }

    /// "12 down, 1 up, 3 flag changes, 2 deleted", or nil when nothing happened.
    public var summary: String? {
        var parts: [String] = []
        if let created { parts.append(created) }
        if downloaded > 0 { parts.append("\(downloaded) down") }
        if uploaded > 0 { parts.append("\(uploaded) up") }
        if flagChanges > 0 { parts.append("\(flagChanges) flag change\(flagChanges == 1 ? "" : "s")") }
        if deleted > 0 { parts.append("\(deleted) deleted") }
        if recovered > 0 { parts.append("\(recovered) recovered after an interruption") }
        if heldDeletions > 0 { parts.append("\(heldDeletions) deletion\(heldDeletions == 1 ? "" : "s") held") }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}

/// Syncs one mirrored folder over one session: recovery of journaled work, the two views,
/// the plan, then its execution — flags, deletions, downloads and uploads — with every side
/// effect journaled first where a crash could otherwise duplicate a message.
struct IMAPFolderSync {
    let account: AccountConfiguration
    let session: IMAPSession
    let state: StateStore
    let accountID: AccountID
    let store: MaildirStore
    let policy: SyncPolicy
    let logger: Logger
    let dryRun: Bool
    /// Messages per UID FETCH / APPEND batch.
    var batchSize = 100
    /// Batches in flight at once on the session.
    var pipelineDepth = 4
    /// Progress of long downloads, on a terminal.
    var progress: ProgressLine? = nil

    func sync(mailbox: MailboxName, folder: [String], record initial: FolderRecord) async throws -> FolderReport {
        var report = FolderReport(folder: folder)
        var record = initial
        let log = logger.with(context: account.name + "/" + FolderNaming.displayName(folder))
        let maildir = store.folder(folder)
        let selected = try await session.select(mailbox)
        if let known = record.uidValidity, let now = selected.uidValidity, known != now {
            throw SyncError.uidValidityChanged(account: account.name, folder: FolderNaming.displayName(folder), was: known, now: now)
        }
        if !dryRun { report.recovered = try await recover(record: record, maildir: maildir, log: log) }

        // The two views and the last agreed state.
        let (remoteMessages, _) = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .flags, .internalDate])
        var remote: [UID: MessageFlags] = [:]
        var internalDates: [UID: Int64] = [:]
        for m in remoteMessages {
            guard let uid = m.uid else { continue }
            remote[uid] = FlagMapping.letters(m.flags ?? [])
            if let d = m.internalDate { internalDates[uid] = d }
        }
        let scan = dryRun && !maildir.exists ? MaildirScan.empty : try maildir.scan()
        if scan.skippedNames > 0 { log.warn("\(scan.skippedNames) file(s) with names that are not UTF-8 are left alone") }
        var files: [String: MaildirMessage] = [:]
        for m in scan.messages { files[m.baseName] = m }
        let local = files.mapValues(\.flags)
        let pairs = try state.pairs(in: record.id)
        let planned = pairs.compactMap { p in
            p.id.map { PlannedPair(id: $0, uid: p.uid, localName: p.localName, flags: MessageFlags(p.flags)) }
        }
        let plan = FolderPlanner.plan(remote: remote, local: local, pairs: planned, policy: policy)
        report.heldDeletions = plan.heldRemoteDeletions + plan.heldLocalDeletions
        if plan.heldRemoteDeletions > 0 {
            log.warn("\(plan.heldRemoteDeletions) of \(remote.count) messages deleted locally would be deleted on the server (more than max_delete_fraction = \(account.maxDeleteFraction)); held — run `mailmirror sync --force` to let them through")
        }
        if plan.heldLocalDeletions > 0 {
            log.warn("\(plan.heldLocalDeletions) of \(local.count) local messages would be deleted because the server expunged them (more than max_delete_fraction = \(account.maxDeleteFraction)); held — run `mailmirror sync --force` to let them through")
        }
        if dryRun {
            report.downloaded = plan.downloads.count
            report.uploaded = plan.uploads.count
            report.flagChanges = plan.localFlags.count + plan.remoteFlags.count
            report.deleted = plan.deleteLocal.count + plan.deleteRemote.count
            return report
        }

        // Flags: local renames, then server STOREs grouped by change.
        var renamed: [String: MaildirMessage] = [:]
        for change in plan.localFlags {
            guard let file = files[change.localName] else { continue }
            do { renamed[change.localName] = try maildir.setFlags(file, to: change.flags) }
            catch { log.warn("could not set flags of \(file.fileName) (\(error)); retried next pass") }
        }
        var groups: [String: (add: MessageFlags, remove: MessageFlags, uids: [UID])] = [:]
        for change in plan.remoteFlags {
            let key = "+\(change.add)-\(change.remove)"
            groups[key, default: (change.add, change.remove, [])].uids.append(change.uid)
        }
        for (_, group) in groups.sorted(by: { $0.key < $1.key }) {
            let set = UIDSet(group.uids)
            if !group.add.isEmpty { try await session.store(set, .add, FlagMapping.imapFlags(group.add)) }
            if !group.remove.isEmpty { try await session.store(set, .remove, FlagMapping.imapFlags(group.remove)) }
        }
        report.flagChanges = plan.localFlags.count + plan.remoteFlags.count

        // Deletions (idempotent: a crash in between is resolved by the next plan).
        if !plan.deleteRemote.isEmpty { try await session.deleteMessages(UIDSet(plan.deleteRemote.map(\.uid))) }
        for item in plan.deleteLocal {
            if let file = files[item.localName] { try maildir.remove(file) }
        }
        report.deleted = plan.deleteRemote.count + plan.deleteLocal.count
        try state.transaction {
            for agreed in plan.agreedFlags { try state.updatePairFlags(id: agreed.pairID, flags: agreed.flags.description) }
            try state.deletePairs(ids: plan.deleteRemote.map(\.pairID) + plan.deleteLocal.map(\.pairID) + plan.forget)
            for id in plan.keepLocalOnly { try state.markPair(id: id, uid: PlannedPair.goneRemote, localName: nil) }
            for id in plan.keepRemoteOnly { try state.markPair(id: id, uid: nil, localName: PlannedPair.goneLocal) }
        }

        report.downloaded = try await download(plan.downloads, flags: remote, dates: internalDates, record: record, maildir: maildir, log: log)
        report.uploaded = try await upload(plan.uploads, files: files.merging(renamed) { $1 }, uidNext: selected.uidNext,
                                           record: record, maildir: maildir, mailbox: mailbox, log: log)

        record.uidValidity = selected.uidValidity
        record.uidNext = selected.uidNext
        record.highestModSeq = selected.highestModSeq
        record.lastSync = Int64(time(nil))
        record.lastError = nil
        try state.updateFolder(record)
        return report
    }

    // MARK: Downloads

    /// Fetches `uids` in pipelined batches into `tmp/`, journaled first (FULL), delivered with
    /// one syncfs per batch, then recorded as pairs in one transaction per batch.
    func download(_ uids: [UID], flags: [UID: MessageFlags], dates: [UID: Int64], record: FolderRecord,
                  maildir: MaildirFolder, log: Logger) async throws -> Int {
        guard !uids.isEmpty else { return 0 }
        let batches = stride(from: 0, to: uids.count, by: batchSize).map { Array(uids[$0..<min($0 + batchSize, uids.count)]) }
        var delivered = 0
        try await withThrowingTaskGroup(of: DownloadSink.self) { group in
            var next = 0
            var inFlight = 0
            func launch() throws {
                let batch = batches[next]
                next += 1
                let sink = try DownloadSink(folder: maildir, uids: batch, flags: flags, dates: dates)
                do {
                    try state.transaction(durability: .full) {
                        for uid in batch {
                            sink.journal[uid] = try state.addJournalEntry(JournalEntry(
                                account: accountID, folder: record.id, kind: .download, uid: uid,
                                localName: sink.writers[uid]!.uniquePart, created: Int64(time(nil))))
                        }
                    }
                } catch { sink.abortAll(); throw error }
                inFlight += 1
                let session = self.session
                group.addTask {
                    _ = try await session.fetchMessages(UIDSet(batch), sink: sink)
                    return sink
                }
            }
            while next < batches.count && inFlight < pipelineDepth { try launch() }
            while let sink = try await group.next() {
                inFlight -= 1
                delivered += try commit(sink, record: record)
                progress?.update("\(account.name)/\(FolderNaming.displayName(maildir.name)) downloading", done: delivered, total: uids.count)
                if next < batches.count { try launch() }
            }
        }
        progress?.clear()
        return delivered
    }

    private func commit(_ sink: DownloadSink, record: FolderRecord) throws -> Int {
        let messages = try sink.batch.commit()
        let byUnique = Dictionary(uniqueKeysWithValues: zip(sink.completedUIDs, messages))
        try state.transaction {
            var pairs: [MessagePair] = []
            for (uid, message) in byUnique {
                pairs.append(MessagePair(folder: record.id, uid: uid, localName: message.baseName,
                                         flags: FlagMapping.mirrored(message.flags).description, size: message.size))
            }
            try state.insertPairs(pairs)
            for id in sink.journal.values { try state.resolveJournalEntry(id) }
        }
        sink.abortUnused()
        return byUnique.count
    }

    // MARK: Uploads

    /// APPENDs local-only messages in batches (MULTIAPPEND when offered), each journaled with
    /// a recovery token first (FULL); UIDs come from APPENDUID, or by searching the token.
    func upload(_ names: [String], files: [String: MaildirMessage], uidNext: UID?, record: FolderRecord,
                maildir: MaildirFolder, mailbox: MailboxName, log: Logger) async throws -> Int {
        guard !names.isEmpty else { return 0 }
        var uploaded = 0
        for start in stride(from: 0, to: names.count, by: min(batchSize, 50)) {
            let batch = names[start..<min(start + min(batchSize, 50), names.count)].compactMap { files[$0] }
            var items: [(message: MaildirMessage, token: String, source: MaildirUploadSource, journal: JournalID?)] = []
            for message in batch {
                let token = randomToken()
                do {
                    items.append((message, token, try MaildirUploadSource(path: maildir.filePath(of: message), token: token), nil))
                } catch {
                    log.warn("cannot read \(message.fileName) (\(error)); it is uploaded on a later pass")
                }
            }
            guard !items.isEmpty else { continue }
            try state.transaction(durability: .full) {
                for i in items.indices {
                    items[i].journal = try state.addJournalEntry(JournalEntry(
                        account: accountID, folder: record.id, kind: .upload, localName: items[i].message.baseName,
                        token: items[i].token, uidNextBefore: uidNext ?? UID(1), flags: items[i].message.flags.description,
                        created: Int64(time(nil))))
                }
            }
            let appendMessages = items.map { item in
                AppendMessage(flags: FlagMapping.imapFlags(FlagMapping.mirrored(item.message.flags)),
                              internalDate: modificationTime(maildir.filePath(of: item.message)), source: item.source)
            }
            let assigned = try await session.append(appendMessages, to: mailbox)
            var uids: [UID?] = []
            if let assigned, assigned.destination.count == items.count {
                uids = Array(assigned.destination).map { Optional($0) }
            } else {
                for item in items {
                    let found = try await session.search([.header("X-Mailmirror-Token", Array(item.token.utf8)), .uid(UIDSet.from(uidNext ?? UID(1)))])
                    uids.append(found.ranges.first.map { UID($0.lowerBound) })
                }
            }
            try state.transaction {
                for (item, uid) in zip(items, uids) {
                    if let uid {
                        try state.insertPairs([MessagePair(folder: record.id, uid: uid, localName: item.message.baseName,
                                                           flags: FlagMapping.mirrored(item.message.flags).description, size: item.source.size)])
                        uploaded += 1
                    }
                    if let id = item.journal { try state.resolveJournalEntry(id) }
                }
            }
        }
        return uploaded
    }

    // MARK: Recovery

    /// Resolves the folder's journal before planning: a download whose file reached the
    /// Maildir is adopted, one whose file did not is forgotten (fetched again); an upload the
    /// server stored is adopted by its token (extra copies are expunged), one it did not is
    /// forgotten (uploaded again). Never a second copy on either side.
    func recover(record: FolderRecord, maildir: MaildirFolder, log: Logger) async throws -> Int {
        let entries = try state.pendingJournalEntries(of: accountID).filter { $0.folder == record.id }
        guard !entries.isEmpty else { return 0 }
        let present = try maildir.scan().messages
        let knownPairs = try state.pairs(in: record.id)
        let pairedUIDs = Set(knownPairs.compactMap(\.uid))
        let pairedNames = Set(knownPairs.compactMap(\.localName))
        var adopted = 0
        for entry in entries {
            switch entry.kind {
            case .download:
                if let uid = entry.uid, let prefix = entry.localName, !pairedUIDs.contains(uid),
                   let file = present.first(where: { $0.baseName.hasPrefix(prefix + ",") }) {
                    try state.insertPairs([MessagePair(folder: record.id, uid: uid, localName: file.baseName,
                                                       flags: FlagMapping.mirrored(file.flags).description, size: file.size)])
                    adopted += 1
                }
            case .upload:
                if let token = entry.token, let name = entry.localName {
                    let found = Array(try await session.search([.header("X-Mailmirror-Token", Array(token.utf8)),
                                                               .uid(UIDSet.from(entry.uidNextBefore ?? UID(1)))]))
                    if let first = found.first, !pairedNames.contains(name) {
                        try state.insertPairs([MessagePair(folder: record.id, uid: first, localName: name, flags: FlagMapping.mirrored(MessageFlags(entry.flags ?? "")).description)])
                        adopted += 1
                        if found.count > 1 {
                            log.warn("found \(found.count) copies of one interrupted upload; removing the extra ones")
                            try await session.deleteMessages(UIDSet(found.dropFirst()))
                        }
                    }
                }
            default:
                break
            }
            try state.resolveJournalEntry(entry.id!)
        }
        if adopted > 0 { log.info("recovered \(adopted) message(s) transferred before an interruption") }
        return adopted
    }
}

/// Streams fetched bodies into per-UID writers prepared (and journaled) before the fetch.
final class DownloadSink: FetchBodySink, @unchecked Sendable {   // used by one fetch at a time
    let batch: DeliveryBatch
    var writers: [UID: MessageWriter] = [:]
    var journal: [UID: JournalID] = [:]
    let order: [UID]
    let flags: [UID: MessageFlags]
    let dates: [UID: Int64]
    var current: UID?
    var arrivals = 0
    var completedUIDs: [UID] = []

    init(folder: MaildirFolder, uids: [UID], flags: [UID: MessageFlags], dates: [UID: Int64]) throws {
        batch = DeliveryBatch(folder: folder)
        order = uids
        self.flags = flags
        self.dates = dates
        for uid in uids { writers[uid] = try folder.beginDelivery() }
    }

    func begin(_ info: StreamInfo) throws {
        // Dovecot sends the UID before the body; otherwise bodies arrive in UID order.
        current = info.uid.map { UID($0) } ?? (arrivals < order.count ? order[arrivals] : nil)
        arrivals += 1
    }

    func write(_ bytes: [UInt8]) throws {
        guard let uid = current, let writer = writers[uid] else { return }
        try writer.writeWireBytes(bytes)
    }

    func end() throws {
        guard let uid = current, let writer = writers[uid] else { return }
        try batch.add(writer, flags: FlagMapping.mirrored(flags[uid] ?? MessageFlags()), modificationTime: dates[uid].map { time_t($0) })
        writers[uid] = nil
        completedUIDs.append(uid)
        current = nil
    }

    /// Writers of messages that never arrived (expunged meanwhile): their tmp files go.
    func abortUnused() {
        for writer in writers.values { writer.abort() }
        writers = [:]
    }

    func abortAll() {
        batch.abort()
        abortUnused()
    }
}

/// Failures of the sync engine that are not protocol or file errors.
public enum SyncError: Error, Sendable, CustomStringConvertible {
    case uidValidityChanged(account: String, folder: String, was: UIDValidity, now: UIDValidity)

    public var description: String {
        switch self {
        case let .uidValidityChanged(account, folder, was, now):
            _ = (account, folder)
            return "the server's UIDVALIDITY changed (\(was) → \(now)), so its UIDs no longer match; the folder is skipped and nothing is deleted (re-matching by Message-ID comes in a later version)"
        }
    }
}

func randomToken() -> String {
    var bytes = [UInt8](repeating: 0, count: 12)
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    if fd >= 0 { _ = read(fd, &bytes, bytes.count); close(fd) }
    return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func modificationTime(_ path: String) -> Int64? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int64(st.st_mtim.tv_sec)
}
