#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support
import Transport

/// Messages moved from one folder to another by one UID MOVE.
public struct MoveRoute: Sendable, Equatable {
    public var from: [String]
    public var to: [String]
    public var count: Int
    /// "Source → Target: 2 moved on the server".
    public var summary: String {
        "\(FolderNaming.displayName(from)) → \(FolderNaming.displayName(to)): \(count) moved on the server"
    }
}

/// What one pass over an IMAP account did.
public struct AccountReport: Sendable {
    public var folders: [FolderReport] = []
    /// Messages moved between folders on the server (UID MOVE) because they were moved locally.
    public var movedOnServer: Int { localMoves.reduce(0) { $0 + $1.count } }
    /// Those moves, by source and target folder.
    public var localMoves: [MoveRoute] = []
    /// Messages moved between folders on the server, renamed in the Maildir (not downloaded).
    public var movedLocally = 0
    /// Messages whose deletion the mass-deletion guard held back.
    public var heldDeletions: Int { folders.reduce(0) { $0 + $1.heldDeletions } }
    public var failedFolders: Int { folders.filter { $0.error != nil }.count }
}

/// One pass over an IMAP account: folders on both sides are listed and reconciled (created,
/// deleted when empty, recreated otherwise), then each mirrored folder is synced by
/// `IMAPFolderSync`, spread over up to `connections` sessions. A failing folder is reported
/// and the others still complete.
public struct IMAPAccountSync: Sendable {
    public let account: AccountConfiguration
    public let stateDirectory: String
    public let logger: Logger
    public let policy: SyncPolicy
    public let dryRun: Bool
    /// Where long downloads show progress (a terminal), or nil.
    public var progress: ProgressLine?
    /// Sync only these folders (the daemon's events); nil syncs all.
    public var only: Set<[String]>?
    /// A logged-in session to use (and leave open) instead of connecting anew: the daemon
    /// keeps one per account, so an event costs no TLS handshake or login.
    public var session: IMAPSession?

    public init(account: AccountConfiguration, stateDirectory: String, logger: Logger, force: Bool, dryRun: Bool) {
        self.account = account
        self.stateDirectory = stateDirectory
        self.logger = logger
        self.dryRun = dryRun
        policy = SyncPolicy(direction: account.direction, delete: account.delete,
                            maxDeleteFraction: account.maxDeleteFraction, force: force)
    }

    /// A logged-in session (credentials resolved once per session). QRESYNC is enabled now
    /// unless `enablingLater` (ENABLE must come before any SELECT: a pass that finds no
    /// folder to open saves the round trip).
    public func connect(secret: String, enablingLater: Bool = false) async throws -> IMAPSession {
        let session = try await IMAPSession.connect(host: account.host, port: account.port, security: account.connectionSecurity)
        Trace.mark("\(account.name): greeted")
        do {
            try await session.login(username: account.username, secret: secret,
                                    mechanism: IMAPAuthMechanism(rawValue: account.auth.rawValue) ?? .auto,
                                    host: account.host, port: account.port)
            // QRESYNC: expunges arrive as UID sets (VANISHED), so a pass asks for what
            // changed since its last mod-sequence and learns what is gone in the same answer.
            if !enablingLater { try await session.enable(["QRESYNC"]) }
            if account.compress == .always || (account.compress == .auto && !isLocalAddress(session.connection.remoteAddress)) {
                try await session.enableCompression()
            }
        } catch {
            await session.close()
            throw error
        }
        return session
    }

    /// The state to work on: the real file, or for a dry run an in-memory copy of it.
    func openState(trimmingLog: Bool = true) throws -> StateStore {
        dryRun ? try StateStore.scratchCopy(of: stateDirectory) : try StateStore.open(directory: stateDirectory, trimmingLog: trimmingLog)
    }

    public func run() async throws -> AccountReport {
        let secret = try await account.password?.resolve(account: account.name) ?? ""
        Trace.mark("\(account.name): credentials")
        let reused: IMAPSession?
        if let session, await session.closedReason == nil { reused = session } else { reused = nil }
        // The handshake and login (server round trips) go on while the state opens.
        let connecting = reused == nil ? Task { try await connect(secret: secret, enablingLater: true) } : nil
        let state: StateStore
        let accountID: AccountID
        do {
            state = try openState()
            if !dryRun && mkdir(stateDirectory + "/spool", 0o700) != 0 && errno != EEXIST {
                throw MaildirError(operation: "create upload spool", path: stateDirectory + "/spool", errno: errno)
            }
            accountID = try state.account(named: account.name, protocol: "imap")
            if let mailbox = try AccountMailbox.changed(account, state: state, accountID: accountID) {
                // Safe without asking: a re-match deletes nothing, and pairs only what is the same.
                logger.warn("\(account.name): the account now names another mailbox (\(mailbox.was) → \(mailbox.now)) "
                            + "than the one its state describes: the UIDs it remembers are not trusted, and each folder is re-matched "
                            + "by Message-ID and size, as after a UIDVALIDITY change (nothing is deleted in this pass)")
                try state.setAccountMailbox(accountID, mailbox.now, forgettingUIDs: true)
            }
            Trace.mark("\(account.name): state open")
        } catch {
            if let connecting, let session = try? await connecting.value { await session.close() }
            throw error
        }
        let store = MaildirStore(root: account.maildir, layout: account.layout)
        let main: IMAPSession
        if let reused { main = reused } else { main = try await connecting!.value }
        Trace.mark("\(account.name): logged in")
        var report = AccountReport()
        do {
            // NAMESPACE and the LIST (with STATUS) go out together: the pattern does not
            // depend on the namespace.
            async let listing = main.listWithStatus()
            // The local folders are listed while the server lists its own (a LIST-STATUS of
            // 100 folders takes Dovecot ~10 ms; walking 100 directories a few).
            let localFolders = store.listFolders()
            let naming = try await FolderNaming.discover(main)
            let all = try await reconcileFolders(session: main, state: state, accountID: accountID, store: store, naming: naming,
                                                 listing: try await listing, localFolders: localFolders, report: &report)
            Trace.mark("\(account.name): folders listed")
            // The moves look at every folder (a move may come from one the daemon was not told of).
            var work = all
            if let only { work = work.filter { only.contains($0.folder) || $0.created != nil } }
            // Folders with nothing to do get no worker; with none left, no worker opens the
            // state or a session. (The local moves below touch only folders that changed
            // locally, which are not among them.)
            let probe = FolderSync(account: account, state: state, accountID: accountID, policy: policy, logger: logger, dryRun: dryRun)
            // notmuch: what changed in its database since the last pass (by revision).
            let notmuch = try await notmuchChanges(state: state, accountID: accountID)
            var quiet: [FolderReport] = []
            work = try state.reading {   // one snapshot for all the folders' records
                try work.filter { item in
                    if item.created == nil, notmuch?.pass.changes.changes(in: store.folder(item.folder)) == nil, try probe.isUnchanged(status: item.status, record: state.folderRecord(id: item.record),
                                                                  folder: store.folder(item.folder)) {
                        quiet.append(FolderReport(folder: item.folder))
                        return false
                    }
                    return true
                }
            }
            if reused == nil && !work.isEmpty { try await main.enable(["QRESYNC"]) }   // before any SELECT
            // Folders spread over up to `connections` sessions (the first is reused), opened
            // only when more than one folder needs a pass, and while the moves run on the first.
            // A dry run works on one in-memory copy of the state: one session shares it.
            let extras = (1..<(dryRun ? 1 : max(1, min(account.connections, work.count)))).map { _ in
                Task { try? await connect(secret: secret) }
            }
            let broker: MoveBroker?
            do {
                if !dryRun {   // server moves a crash interrupted: the pair follows the file
                    try ServerMoves(state: state, accountID: accountID, store: store).recover(work: all)
                }
                if !dryRun && policy.writesRemote && policy.writesLocal {
                    report.localMoves = try await LocalMoves(account: account, state: state, accountID: accountID, store: store,
                                                                logger: logger).run(session: main, work: all)
                    Trace.mark("\(account.name): local moves")
                }
                broker = try moveBroker(ordering: &work, state: state)
            } catch {
                for task in extras { await task.value?.close() }
                throw error
            }
            let queue = WorkQueue(work)
            let reports = await withTaskGroup(of: [FolderReport].self) { group in
                if !work.isEmpty {
                    group.addTask {
                        await self.worker(session: main, queue: queue, accountID: accountID, store: store,
                                          sharedState: self.dryRun ? state : nil, broker: broker, notmuch: notmuch?.pass)
                    }
                }
                for task in extras {
                    group.addTask {
                        guard let session = await task.value else { return [] }
                        Trace.mark("\(self.account.name): another session")
                        let reports = await self.worker(session: session, queue: queue, accountID: accountID, store: store,
                                                        sharedState: nil, broker: broker, notmuch: notmuch?.pass)
                        // Every command was answered: the server's BYE is not worth a wait.
                        await session.logout(waiting: false)
                        return reports
                    }
                }
                var all: [FolderReport] = []
                for await r in group { all += r }
                return all
            }
            // Folders no session was left to sync (every connection was lost): failed, not skipped.
            var left: [FolderReport] = []
            while let item = await queue.next() {
                left.append(await Self.unsynced(item, why: "not synced: the connection to the server was lost during the pass; the next pass syncs it",
                                                broker: broker))
            }
            report.folders += (reports + left + quiet).sorted { $0.folder.lexicographicallyPrecedes($1.folder) }
            Trace.mark("\(account.name): workers done")
            // The server has nothing more to do: it logs out while the Maildir work below runs.
            if reused == nil { await main.logout(waiting: false) } else { try? await main.unselect() }
            Trace.mark("\(account.name): logged out")
            if let broker { try await settleMoves(broker, report: &report, state: state) }
            report.movedLocally = report.folders.reduce(0) { $0 + $1.movedHere }
            Trace.mark("\(account.name): folder passes")
            try await noteSettledMarkers(&report, state: state, store: store)
            Trace.mark("\(account.name): markers settled")
            if let notmuch, report.failedFolders == 0, !dryRun {
                // Taken: unless a folder with changes had no pass (a daemon pass of some folders).
                let passed = Set(work.map { Notmuch.realPath(store.folder($0.folder).path) })
                let mirrored = Set(all.map { Notmuch.realPath(store.folder($0.folder).path) })
                let waiting = notmuch.pass.changes.byFolder.keys.filter { !passed.contains($0) && mirrored.contains($0) }
                if waiting.isEmpty {
                    try state.setNotmuchRevision(accountID, notmuch.now.stored)
                }
            }
            try state.recordAccountPass(accountID, completedAt: report.failedFolders == 0 && !dryRun ? Int64(time(nil)) : nil,
                                        error: report.failedFolders == 0 ? nil : "\(report.failedFolders) folder(s) failed")
            return report
        } catch {
            if reused == nil { await main.close() }
            try? state.recordAccountPass(accountID, completedAt: nil, error: "\(error)")
            throw error
        }
    }

    /// notmuch's changes since the account's last complete pass (`keywords = "notmuch"`):
    /// its revision now, and the messages changed after the one noted (all of them the
    /// first time, or when the database was rebuilt: another UUID).
    func notmuchChanges(state: StateStore, accountID: AccountID) async throws -> (pass: NotmuchPass, now: Notmuch.Revision)? {
        guard account.keywords == .notmuch else { return nil }
        let notmuch = Notmuch(config: account.notmuchConfig, account: account.name)
        // Files renamed or added since notmuch last looked are indexed first: `show` opens
        // every file it reports (a stale name is an error), and the tags set below must not
        // be applied over file names notmuch does not know yet.
        if !dryRun { try await notmuch.index() }
        let now = try await notmuch.revision()
        let noted = try state.notmuchRevision(accountID).flatMap(Notmuch.Revision.init(stored:))
        let since = noted?.uuid == now.uuid ? noted : nil
        let changes = try await notmuch.changes(since: since, now: now)
        Trace.mark("\(account.name): notmuch \(changes.query): \(changes.byFolder.values.reduce(0) { $0 + $1.count }) file(s)")
        return (NotmuchPass(notmuch: notmuch, changes: changes, scratch: stateDirectory + "/spool"), now)
    }

    /// Where the passes meet to carry server moves (`MoveBroker`), when LIST-STATUS shows
    /// one folder losing messages and another gaining some: the losing folders are queued
    /// first, so their gone files are parked before the gaining folders look.
    func moveBroker(ordering work: inout [WorkItem], state: StateStore) throws -> MoveBroker? {
        guard !dryRun && policy.propagatesRemoteDeletions && policy.writesLocal else { return nil }
        let (sources, targets) = try ServerMoves.candidates(work, state: state)
        guard !sources.isEmpty else { return nil }
        func rank(_ item: WorkItem) -> Int { sources.contains(item.record) ? (targets.contains(item.record) ? 1 : 0) : 2 }
        work = work.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        return MoveBroker(order: work.map(\.record), sources: sources, targets: targets)
    }

    /// Once every folder pass is over: deletes the parked messages nobody claimed (the
    /// server expunged them), notes each losing folder's server position that its pass held
    /// back, and has its Maildir marker noted again by its watch (its files changed after
    /// its pass ended). A crash before this leaves the old position noted: the next pass
    /// sees the same messages vanish and finishes the job.
    func settleMoves(_ broker: MoveBroker, report: inout AccountReport, state: StateStore) async throws {
        let settled = await broker.settle()
        let unclaimed = settled.flatMap(\.unclaimed)
        for p in unclaimed { p.witness?.expectRemoved(p.file.fileName, from: p.file.subdirectory) }
        try MaildirFolder.remove(unclaimed.map { ($0.folder, $0.file) })
        try state.transaction {
            for (id, _, unclaimed, position) in settled {
                try state.deletePairs(ids: unclaimed.compactMap(\.pair.id))
                var record = try state.folderRecord(id: id)
                if let position, record.lastError == nil {
                    record.uidNext = position.uidNext
                    record.highestModSeq = position.highestModSeq
                }
                record.localMarker = nil
                try state.updateFolder(record)
            }
        }
        for (id, claimed, unclaimed, _) in settled {
            guard let folder = (claimed + unclaimed).first?.folder,
                  let index = report.folders.firstIndex(where: { $0.folder == folder.name }) else { continue }
            report.folders[index].deleted -= claimed.count   // moved, not deleted
            if let witness = (claimed + unclaimed).first?.witness, let (marker, trustedFrom) = folder.markerState() {
                report.folders[index].settle = (id, nil, trustedFrom, marker, witness)
            }
        }
    }

    /// Notes the Maildir markers of folders the pass wrote to in the current tick of the
    /// kernel's coarse clock, once that tick is over: one short wait for the whole account
    /// (a few milliseconds), then a listing that must still show exactly what the pass left
    /// (else the next pass looks at the folder again).
    func noteSettledMarkers(_ report: inout AccountReport, state: StateStore, store: MaildirStore) async throws {
        let pending = report.folders.indices.filter { report.folders[$0].settle != nil }
        guard let latest = pending.compactMap({ report.folders[$0].settle?.trustedFrom }).max() else { return }
        let wait = latest - MaildirFolder.coarseClock()
        Trace.mark("\(account.name): \(pending.count) folder(s) to settle, waiting \(max(0, wait) / 1000) µs")
        if wait > 0 && wait < 100_000_000 { try await Task.sleep(for: .nanoseconds(wait + 1_000_000)) }
        var settled: [FolderRecord] = []
        for i in pending {
            guard let (id, expected, _, markerAtEnd, witness) = report.folders[i].settle else { continue }
            report.folders[i].settle = nil
            let folder = store.folder(report.folders[i].folder)
            guard let (marker, trustedFrom) = folder.markerState(), var record = try? state.folderRecord(id: id), record.lastError == nil else { continue }
            // Still watched and nobody else touched it: no need to list it. Otherwise a fresh
            // listing must show what the pass left (an incremental pass knows only what it
            // touched: without the watch it cannot tell, and the next pass looks again).
            let untouched = witness?.untouchedByOthers() == true && marker == markerAtEnd
            if !untouched {
                guard let expected, let actual = try? MaildirFolderStore(folder: folder).currentFlags(), actual == expected else { continue }
            }
            guard MaildirFolder.coarseClock() >= trustedFrom else { continue }
            Trace.mark("\(FolderNaming.displayName(report.folders[i].folder)): settled (\(untouched ? "watched" : "listed"))")
            record.localMarker = marker
            settled.append(record)
        }
        try state.transaction { for record in settled { try state.updateFolder(record) } }
    }

    func worker(session: IMAPSession, queue: WorkQueue, accountID: AccountID, store: MaildirStore,
                sharedState: StateStore?, broker: MoveBroker?, notmuch: NotmuchPass? = nil) async -> [FolderReport] {
        func failed(_ item: WorkItem, _ error: any Error) async -> FolderReport { await Self.unsynced(item, why: "\(error)", broker: broker) }
        var reports: [FolderReport] = []
        let state: StateStore
        do { state = try sharedState ?? openState(trimmingLog: false) } catch {
            while let item = await queue.next() { reports.append(await failed(item, error)) }
            return reports
        }
        var sync = FolderSync(account: account, state: state, accountID: accountID, policy: policy, logger: logger, dryRun: dryRun)
        sync.progress = progress
        sync.broker = broker
        sync.notmuch = notmuch
        // While a pass makes its downloads durable, the next folder is taken from the queue and
        // its SELECT flight sent: the server answers while the disk works.
        let next = NextFolder()
        let spool = stateDirectory + "/spool"
        @Sendable func take() async -> (WorkItem, IMAPFolderStore)? {
            await queue.next().map { ($0, IMAPFolderStore(session: session, mailbox: $0.mailbox, spoolDirectory: spool)) }
        }
        let planner = sync
        sync.whenServerIdle = {
            guard next.item == nil, let (item, far) = await take() else { return }
            next.item = (item, far)
            if let record = try? state.folderRecord(id: item.record),
               let opening = try? planner.openArguments(record: record, status: item.status), let since = opening.changedSince {
                await far.sendOpenAhead(changedSince: since, newFrom: opening.newFrom)
            }
        }
        while true {
            let ahead = next.item
            next.item = nil
            guard let (item, far) = ahead != nil ? ahead : await take() else { break }
            do {
                let near = MaildirFolderStore(folder: store.folder(item.folder))
                var r = try await sync.sync(far: far, near: near, folder: item.folder, record: try state.folderRecord(id: item.record),
                                            status: item.status)
                r.created = item.created
                await broker?.finish(item.record)
                reports.append(r)
            } catch let failure {
                let error = (failure as? FolderPassFailed)?.underlying ?? failure
                logger.error("\(account.name)/\(FolderNaming.displayName(item.folder)): \(error)")
                if !dryRun, var record = try? state.folderRecord(id: item.record) {
                    record.lastError = "\(error)"
                    try? state.updateFolder(record)
                }
                var report = await failed(item, error)
                if let done = (failure as? FolderPassFailed)?.report {   // what it did before failing
                    let why = report.error
                    report = done
                    report.error = why
                }
                reports.append(report)
                if await session.closedReason != nil {   // the session is gone: leave the rest to the others
                    if let (ahead, _) = next.item { reports.append(await failed(ahead, error)) }   // taken already
                    break
                }
            }
        }
        return reports
    }

    /// The report of a folder whose pass failed or never started; nobody may wait on it (the
    /// move broker).
    static func unsynced(_ item: WorkItem, why: String, broker: MoveBroker?) async -> FolderReport {
        await broker?.finish(item.record)
        var r = FolderReport(folder: item.folder)
        r.error = why
        return r
    }

    /// A worker's next folder, taken from the queue ahead of time (see `worker`); touched
    /// only by that worker's task, one step at a time.
    final class NextFolder: @unchecked Sendable {
        var item: (WorkItem, IMAPFolderStore)?
    }

    /// One folder to sync.
    struct WorkItem: Sendable {
        var mailbox: MailboxName
        var folder: [String]
        var record: FolderID
        var created: String?
        /// LIST-STATUS of the mailbox, for the fast path.
        var status: MailboxStatus?
    }

    /// Lists both sides, applies the folder rules, and returns the folders to sync.
    func reconcileFolders(session: IMAPSession, state: StateStore, accountID: AccountID, store: MaildirStore,
                          naming: FolderNaming, listing: (entries: [ListEntry], status: [MailboxName: MailboxStatus]),
                          localFolders listed: [MaildirFolderEntry], report: inout AccountReport) async throws -> [WorkItem] {
        let log = logger.with(context: account.name)
        var remote: [[String]: MailboxName] = [:]
        var noselect: [[String]] = []
        let (entries, statuses) = listing
        // Views of other folders (Gmail's All Mail…) are left out on both sides: a local
        // folder of that name is not uploaded either.
        let (filter, views) = FolderFilter.mirrored(account, entries: entries, naming: naming)
        for view in views { log.once(.info, "\(FolderNaming.displayName(view.folder)): \(view.reason)") }
        for entry in entries {
            guard let folder = naming.folder(for: entry.name), filter.includes(folder) else { continue }
            if entry.has("\\NonExistent") { continue }
            if entry.has("\\Noselect") { noselect.append(folder); continue }
            remote[folder] = entry.name
        }
        var local = Set<[String]>()
        for entry in listed where entry.isMaildir && filter.includes(entry.name) { local.insert(entry.name) }
        var known = Dictionary(try state.folders(of: accountID).compactMap { r in
            MaildirLayout.fs.folder(forRelativePath: r.localName).map { ($0, r) }
        }, uniquingKeysWith: { a, _ in a })
        // Neither side is trusted when it looks wiped out (invariant 1: nothing is done
        // because a side looked empty or unreachable).
        if !entries.contains(where: { $0.name.isInbox }) {
            throw SyncError.sideLooksGone(account: account.name, what: "the server's folder list has no INBOX (every IMAP server has one)",
                                          advice: "try again later; if it stays so, check the server")
        }
        if !policy.force && !known.isEmpty && !listed.contains(where: \.isMaildir) {
            let synced = try known.values.filter { try state.pairCount(in: $0.id) > 0 }
            if !synced.isEmpty {
                throw SyncError.sideLooksGone(account: account.name,
                    what: "the Maildir \(account.maildir) has no folder at all, though mailmirror synced \(synced.count) there",
                    advice: "is a disk not mounted? If you removed them on purpose, `mailmirror sync --force \(account.name)` downloads them again")
            }
        }

        var work = try await FolderRenames(sync: self, session: session, state: state, store: store, naming: naming, log: log)
            .run(remote: &remote, local: &local, known: &known, statuses: statuses, report: &report)
        let renamed = Set(work.map(\.folder))
        // Gone from both sides (deleted in both places, or left behind by a rename a crash
        // cut short): nothing to mirror any more, and `status` should not list it.
        if !dryRun {
            for (folder, r) in known where remote[folder] == nil && !local.contains(folder) && filter.includes(folder)
                && !noselect.contains(folder) {
                try state.deleteFolder(r.id)
                known[folder] = nil
            }
        }
        func record(_ folder: [String], _ mailbox: MailboxName) throws -> FolderRecord {
            // Known already (every folder of a pass but a new one): no write to ask for it.
            if let r = known[folder], r.remoteName == mailbox.bytes { return r }
            return try state.folder(of: accountID, remoteName: mailbox.bytes, localName: MaildirLayout.fs.relativePath(for: folder))
        }
        if !dryRun && policy.writesLocal {
            for folder in noselect where !local.contains(folder) {
                do { try store.createPlainDirectory(folder) } catch {
                    guard Self.failsOneFolder(error) else { throw error }
                    log.error("\(FolderNaming.displayName(folder).prefix(120)): \(error)")
                }
            }
        }

        // Local folders whose name the server cannot hold: reported (and kept for `status`)
        // as a problem of that folder alone; the pass goes on and nothing local is touched.
        var unmirrorable: [String: String] = [:]
        func cannotMirror(_ folder: [String]) {
            let delimiter = naming.delimiter.map { String(decoding: [$0], as: UTF8.self) } ?? "?"
            let reason = "this server cannot hold the name: \"\(delimiter)\" separates its folder levels; rename the local folder (without \"\(delimiter)\") and the next pass uploads it"
            var r = FolderReport(folder: folder)
            r.cannotMirror = reason
            report.folders.append(r)
            unmirrorable[MaildirLayout.fs.relativePath(for: folder)] = reason
        }

        for folder in Set(remote.keys).union(local).subtracting(renamed).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let name = FolderNaming.displayName(folder)
            // A folder that cannot be set up (a name too long for a path, a server's NO to
            // CREATE) fails alone: the others still sync.
            do {
                switch (remote[folder], local.contains(folder), known[folder]) {
                case let (mailbox?, true, _):
                    work.append(WorkItem(mailbox: mailbox, folder: folder, record: try record(folder, mailbox).id, status: statuses[mailbox]))
                case let (mailbox?, false, previous?):
                    // Deleted locally since the last pass: delete on the server only if empty there.
                    let status = try await session.status(mailbox, items: [.messages])
                    if (status.messages ?? 1) == 0 && policy.writesRemote && !mailbox.isInbox {
                        if !dryRun {
                            try await session.delete(mailbox)
                            try state.deleteFolder(previous.id)
                        }
                        var r = FolderReport(folder: folder)
                        r.created = "folder deleted on the server (it was deleted locally and was empty there)"
                        report.folders.append(r)
                    } else {
                        log.warn("\(name) was deleted locally but holds messages on the server; it is recreated locally")
                        if !dryRun { try store.createFolder(folder); try state.deleteAllPairs(in: previous.id) }
                        work.append(WorkItem(mailbox: mailbox, folder: folder, record: previous.id, created: "recreated locally"))
                    }
                case let (mailbox?, false, nil):
                    if !policy.writesLocal { continue }
                    if !dryRun { try store.createFolder(folder) }
                    work.append(WorkItem(mailbox: mailbox, folder: folder, record: try record(folder, mailbox).id, created: "created locally",
                                         status: statuses[mailbox]))
                case let (nil, true, previous?):
                    // Deleted on the server since the last pass: delete locally only if empty here.
                    let messages = (try? store.folder(folder).scan().messages.count) ?? 1
                    if messages == 0 && policy.writesLocal && folder != ["INBOX"] {
                        if !dryRun {
                            try store.deleteFolder(folder)
                            try state.deleteFolder(previous.id)
                        }
                        var r = FolderReport(folder: folder)
                        r.created = "folder deleted locally (it was deleted on the server and was empty here)"
                        report.folders.append(r)
                    } else if policy.writesRemote && naming.mailbox(for: folder) == nil {
                        cannotMirror(folder)
                    } else if let mailbox = naming.mailbox(for: folder), policy.writesRemote {
                        log.warn("\(name) was deleted on the server but holds messages locally; it is recreated on the server")
                        if !dryRun {
                            try await session.create(mailbox)
                            try state.deleteAllPairs(in: previous.id)
                            var fresh = previous
                            fresh.uidValidity = nil      // a new mailbox: new UIDs
                            fresh.uidNext = nil
                            fresh.highestModSeq = nil
                            try state.updateFolder(fresh)
                        }
                        work.append(WorkItem(mailbox: mailbox, folder: folder, record: previous.id, created: "recreated on the server"))
                    }
                case (nil, true, nil):
                    guard policy.writesRemote else { continue }
                    guard let mailbox = naming.mailbox(for: folder) else {
                        cannotMirror(folder)
                        continue
                    }
                    if !dryRun {
                        do { try await session.create(mailbox) }
                        catch IMAPError.commandFailed(_, _, .no, .other("ALREADYEXISTS", _)?, _) {}
                    }
                    if dryRun {
                        var r = FolderReport(folder: folder)
                        r.created = "would be created on the server"
                        report.folders.append(r)
                        continue
                    }
                    work.append(WorkItem(mailbox: mailbox, folder: folder, record: try record(folder, mailbox).id, created: "created on the server"))
                    try await mirrorParentsCreated(by: folder, session: session, store: store, naming: naming, filter: filter,
                                                   remote: &remote, local: &local, work: &work, record: record)
                case (nil, false, _):
                    break
                }
            } catch {
                guard Self.failsOneFolder(error) else { throw error }
                log.error("\(name.count > 120 ? name.prefix(120) + "…" : name[...]): \(error)")
                var r = FolderReport(folder: folder)
                r.error = "\(error)"
                report.folders.append(r)
            }
        }
        // What `status` shows as "not on the server"; a failure to record it is the state's
        // problem and fails the pass like any other state write.
        if !dryRun { try state.replaceUnmirrorable(of: accountID, unmirrorable) }
        return work
    }

    /// Some servers (Cyrus) create the missing parents of a nested folder as real,
    /// selectable mailboxes: `A/B` brings `A` into being. Each such parent is mirrored in
    /// this pass (created locally, synced) rather than turning up as news in the next;
    /// parents that stay `\Noselect` or absent (Dovecot, Courier) are left alone. One LIST
    /// per missing parent, and only after a nested folder was created.
    private func mirrorParentsCreated(by folder: [String], session: IMAPSession, store: MaildirStore, naming: FolderNaming,
                                      filter: FolderFilter, remote: inout [[String]: MailboxName], local: inout Set<[String]>,
                                      work: inout [WorkItem], record: ([String], MailboxName) throws -> FolderRecord) async throws {
        guard !dryRun, policy.writesLocal, folder.count > 1 else { return }
        for depth in 1..<folder.count {
            let parent = Array(folder.prefix(depth))
            guard remote[parent] == nil, !local.contains(parent), filter.includes(parent),
                  let mailbox = naming.mailbox(for: parent) else { continue }
            let entries = try await session.list(pattern: mailbox.bytes)
            guard let entry = entries.first(where: { $0.name == mailbox }),
                  !entry.has("\\Noselect"), !entry.has("\\NonExistent") else { continue }
            try store.createFolder(parent)
            remote[parent] = mailbox
            local.insert(parent)
            work.append(WorkItem(mailbox: mailbox, folder: parent, record: try record(parent, mailbox).id, created: "created locally"))
        }
    }

    /// Errors that concern one folder only (the file system refused its directory, the
    /// server refused a command on it), as opposed to the session or the state failing.
    static func failsOneFolder(_ error: any Error) -> Bool {
        if error is MaildirError { return true }
        if case .commandFailed? = error as? IMAPError { return true }
        return false
    }
}

/// Hands out folders to the workers, one at a time.
actor WorkQueue {
    private var items: [IMAPAccountSync.WorkItem]
    init(_ items: [IMAPAccountSync.WorkItem]) { self.items = items.reversed() }
    func next() -> IMAPAccountSync.WorkItem? { items.popLast() }
}

/// Whether an address is loopback or private (COMPRESS=auto stays off there).
func isLocalAddress(_ address: String) -> Bool {
    if address == "::1" || address.hasPrefix("127.") || address.hasPrefix("10.") || address.hasPrefix("192.168.")
        || address.lowercased().hasPrefix("fe80:") || address.lowercased().hasPrefix("fd") { return true }
    if address.hasPrefix("172."), let second = Int(address.split(separator: ".").dropFirst().first ?? ""), (16...31).contains(second) { return true }
    return false
}
