#if canImport(Glibc)
import Glibc
#endif
import Config
import Dispatch
import IMAP
import POP3
import Maildir
import State
import Support
import Sync
import Transport

/// What the daemon knows of one account right now (for `status` and STATUS=).
public struct RunnerStatus: Sendable, Equatable {
    public var account: String
    /// "connected", "connecting", "backing off", "polling", "stopped".
    public var state: String = "starting"
    /// "NOTIFY", "IDLE", or "poll".
    public var push: String = "poll"
    public var backoffUntil: Int64?
    public var lastEvent: String?
    public var lastEventTime: Int64?
    public var lastError: String?
}

/// Runs one account in the daemon: a full pass at start, then passes triggered by server
/// push (NOTIFY or IDLE), local changes (inotify), the poll timer and SIGUSR1 — one pass at a
/// time, each limited to the folders an event concerns. Failures back off exponentially
/// with jitter (1 s … 5 min; straight to 5 min for authentication failures) and never stall
/// other accounts: each account is its own task.
public actor AccountRunner {
    /// Each account runs on its own serial Dispatch queue.
    private let executor: DispatchQueueExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    public let account: AccountConfiguration
    let config: Configuration
    let logger: Logger
    /// Called after a pass that delivered new mail (the on_new_mail hook).
    let onNewMail: @Sendable (AccountConfiguration) -> Void
    let onStatus: @Sendable (RunnerStatus) -> Void

    private var pendingAll = true
    private var pendingFolders = Set<[String]>()
    private var pendingPoll = false
    private var wake: CheckedContinuation<Void, Never>?
    private var tasks: [Task<Void, Never>] = []
    private var stopped = false
    private var watcher: MaildirWatcher?
    /// `keywords = "notmuch"`: the watch on notmuch's database (tags changed).
    private var tagWatch: DirectoryWatch?
    private var pushSessions: [IMAPSession] = []
    /// IDLE sessions watching now (0 under NOTIFY or while connecting).
    private var idleSessions = 0
    /// The most IDLE sessions the server turned out to allow beside the sync pass (learned
    /// from refusals; kept while this runner lives, i.e. until the daemon restarts).
    private var learnedIdleLimit: Int?
    /// The connection passes run on, kept between passes.
    private var syncSession: IMAPSession?
    private(set) var status: RunnerStatus
    /// Completed full passes.
    public private(set) var completedPasses = 0
    /// Why the first full pass failed (it is retried after a backoff); nil when it worked.
    public private(set) var firstFailure: String?
    /// The first full pass is over, done or failed (the daemon logs "ready" once every
    /// account's is: one account that cannot connect must not hold the others' "ready").
    private var firstAttempted = false {
        didSet { if firstAttempted { for w in firstPassWaiters { w.resume() }; firstPassWaiters = [] } }
    }
    private var firstPassWaiters: [CheckedContinuation<Void, Never>] = []

    /// Returns once the first full pass is over (or the runner stopped): nil when it
    /// worked, else why it failed.
    public func waitForFirstAttempt() async -> String? {
        if !firstAttempted && !stopped { await withCheckedContinuation { firstPassWaiters.append($0) } }
        return firstFailure
    }
    private var backoff: Double = 1

    public init(account: AccountConfiguration, config: Configuration, logger: Logger,
                onNewMail: @escaping @Sendable (AccountConfiguration) -> Void,
                onStatus: @escaping @Sendable (RunnerStatus) -> Void) {
        self.account = account
        self.executor = DispatchQueueExecutor(label: "mailmirror.account.\(account.name)")
        self.config = config
        self.logger = logger.with(context: account.name)
        self.onNewMail = onNewMail
        self.onStatus = onStatus
        status = RunnerStatus(account: account.name)
    }

    public func start() {
        tasks.append(Task { await self.runLoop() })
        tasks.append(Task { await self.pollLoop() })
        if account.protocol == .imap {
            tasks.append(Task { await self.pushLoop() })
            startWatcher()
            if account.keywords == .notmuch { tasks.append(Task { await self.watchNotmuch() }) }
        }
    }

    /// Stops taking work and closes the push connection; a pass in flight is abandoned
    /// safely (every transfer is journaled) when the process exits.
    public func stop() async {
        stopped = true
        for w in firstPassWaiters { w.resume() }
        firstPassWaiters = []
        watcher?.stop()
        tagWatch?.stop()
        for task in tasks { task.cancel() }
        wake?.resume()
        wake = nil
        // LOGOUT politely; the daemon gives all accounts together at most ~4 s.
        let sessions = pushSessions + (syncSession.map { [$0] } ?? [])
        syncSession = nil
        await withTaskGroup(of: Void.self) { group in
            for session in sessions { group.addTask { await session.logout() } }
        }
        pushSessions = []
        update { $0.state = "stopped" }
    }

    /// Asks for a pass: of everything, or of some folders.
    public func request(all: Bool = false, folders: Set<[String]> = [], poll: Bool = false, reason: String) {
        logger.debug("pass requested: \(reason)")
        if all { pendingAll = true }
        pendingFolders.formUnion(folders)
        if poll { pendingPoll = true }
        update {
            $0.lastEvent = reason
            $0.lastEventTime = Int64(time(nil))
        }
        wake?.resume()
        wake = nil
    }

    private func update(_ change: (inout RunnerStatus) -> Void) {
        change(&status)
        onStatus(status)
    }

    // MARK: - Passes

    /// Resumed once the push connection is listening (or has failed), so that the first
    /// pass starts after NOTIFY/IDLE is in place and nothing can slip in between.
    private var pushReadyWaiters: [CheckedContinuation<Void, Never>] = []
    private var pushReady = false

    private func markPushReady() {
        pushReady = true
        for w in pushReadyWaiters { w.resume() }
        pushReadyWaiters = []
    }

    private func runLoop() async {
        if account.protocol == .imap && !pushReady {
            // Bounded: a push connection that cannot come up must not delay the first pass long.
            let timer = Task { [weak self] in
                try? await Task.sleep(for: .seconds(10))
                await self?.markPushReady()
            }
            await withCheckedContinuation { pushReadyWaiters.append($0) }
            timer.cancel()
        }
        while !stopped {
            if !pendingAll && pendingFolders.isEmpty && !pendingPoll {
                await withCheckedContinuation { wake = $0 }
                continue
            }
            let all = pendingAll
            let folders = pendingFolders
            let poll = pendingPoll
            pendingAll = false
            pendingFolders = []
            pendingPoll = false
            do {
                var only: Set<[String]>? = all ? nil : folders
                if poll && !all {
                    do { only = (only ?? []).union(try await changedFolders()) } catch {
                        await syncSession?.close()   // the next try starts on a fresh connection
                        syncSession = nil
                        throw error
                    }
                }
                if let o = only, o.isEmpty { continue }
                logger.debug("pass of \(only.map { $0.map(FolderNaming.displayName).sorted().joined(separator: ", ") } ?? "every folder")")
                let downloaded = try await pass(only: only)
                logger.debug("pass done")
                completedPasses += all ? 1 : 0
                if all { firstAttempted = true }
                backoff = 1
                ensureWatcher()
                update {
                    $0.lastError = nil
                    $0.backoffUntil = nil
                    if $0.state == "backing off" || $0.state == "starting" { $0.state = account.protocol == .pop3 ? "polling" : "connected" }
                }
                if downloaded > 0 { onNewMail(account) }
            } catch {
                if stopped { break }
                if all && !firstAttempted {
                    firstFailure = "\(error)"
                    firstAttempted = true
                }
                await makeRoomForSync(after: error)
                // Keep the work: it is retried after the backoff.
                pendingAll = pendingAll || all
                pendingFolders.formUnion(folders)
                pendingPoll = pendingPoll || poll
                await backOff(after: error)
            }
        }
    }

    /// One pass; returns how many messages arrived.
    private func pass(only: Set<[String]>?) async throws -> Int {
        _ = try StateStore.open(directory: config.general.stateDirectory)   // creates state_dir (0700)
        let lock = try AccountLock(stateDirectory: config.general.stateDirectory, account: account.name)
        defer { withExtendedLifetime(lock) {} }
        if account.protocol == .pop3 {
            let state = try StateStore.open(directory: config.general.stateDirectory)
            let report = try await POP3Drain(account: account, state: state, logger: logger).run()
            if report.downloaded > 0 || report.deletedOnServer > 0 {
                logger.info("INBOX: \(report.downloaded) down, \(report.deletedOnServer) deleted on server")
            }
            return report.downloaded
        }
        var sync = IMAPAccountSync(account: account, stateDirectory: config.general.stateDirectory, logger: logger, force: false, dryRun: false)
        sync.only = only
        var usable = false
        if let current = syncSession { usable = await current.closedReason == nil }
        if !usable {
            let secret = try await account.password?.resolve(account: account.name) ?? ""
            syncSession = try await sync.connect(secret: secret)
        }
        sync.session = syncSession
        let report: AccountReport
        do { report = try await sync.run() } catch {
            await syncSession?.close()   // a failed pass starts the next one on a fresh connection
            syncSession = nil
            throw error
        }
        var downloaded = 0
        for route in report.localMoves { logger.info(route.summary) }
        for folder in report.folders {
            downloaded += folder.downloaded
            if let summary = folder.summary { logger.info("\(FolderNaming.displayName(folder.folder)): \(summary)") }
        }
        if report.failedFolders > 0 { throw DaemonError.foldersFailed(report.failedFolders) }
        return downloaded
    }

    /// Folders whose STATUS (UIDNEXT, HIGHESTMODSEQ, MESSAGES) moved since the last pass.
    private func changedFolders() async throws -> Set<[String]> {
        guard account.protocol == .imap else { return [] }
        // On the sync pass's connection (which the pass after it uses too): a connection of
        // its own would be one more than `max_connections` counts, and refused where the
        // server's limit is reached.
        var usable = false
        if let current = syncSession { usable = await current.closedReason == nil }
        if !usable {
            let secret = try await account.password?.resolve(account: account.name) ?? ""
            let sync = IMAPAccountSync(account: account, stateDirectory: config.general.stateDirectory, logger: logger, force: false, dryRun: false)
            syncSession = try await sync.connect(secret: secret)
        }
        guard let session = syncSession else { return [] }
        let state = try StateStore.open(directory: config.general.stateDirectory)
        guard let id = try state.existingAccount(named: account.name) else { return [] }
        var changed = Set<[String]>()
        for record in try state.folders(of: id) {
            guard let folder = MaildirLayout.fs.folder(forRelativePath: record.localName) else { continue }
            let s = try await session.status(MailboxName(bytes: record.remoteName))
            let pairs = try state.pairCount(in: record.id)
            if s.uidNext != record.uidNext || (s.highestModSeq != nil && s.highestModSeq != record.highestModSeq)
                || (s.messages.map { $0 != pairs } ?? false) || s.uidValidity != record.uidValidity {
                changed.insert(folder)
            }
        }
        return changed
    }

    private func backOff(after error: Error) async {
        let authFailure: Bool = {
            if let e = error as? IMAPError, case .authenticationFailed = e { return true }
            if let e = error as? POP3Error, case .authenticationFailed = e { return true }
            return false
        }()
        backoff = authFailure ? 300 : min(backoff * 2, 300)
        let delay = backoff * Double.random(in: 0.8...1.2)
        let until = Int64(time(nil)) + Int64(delay)
        logger.warn("\(error)\(authFailure ? " — authentication failed, so mailmirror waits the maximum" : ""); retrying in \(Int(delay)) s")
        update {
            $0.state = "backing off"
            $0.backoffUntil = until
            $0.lastError = "\(error)"
        }
        try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
    }

    private func pollLoop() async {
        while !stopped {
            try? await Task.sleep(for: .seconds(account.pollInterval))
            if stopped || Task.isCancelled { break }
            if account.protocol == .pop3 { request(all: true, reason: "poll") } else { request(poll: true, reason: "poll") }
        }
    }

    // MARK: - Local changes

    private func startWatcher() {
        let store = MaildirStore(root: account.maildir, layout: account.layout)
        guard FSCheck.isDirectory(account.maildir) else { return }   // created by the first pass; retried then
        let watcher = MaildirWatcher(store: store, quietPeriod: 0.15) { [weak self] changes in
            guard let self else { return }
            Task { await self.localChange(changes) }
        }
        do {
            try watcher.start()
            self.watcher = watcher
        } catch {
            logger.warn("cannot watch \(account.maildir) for changes (\(error)); local changes are picked up by the poll every \(formatDuration(account.pollInterval))")
        }
    }

    private func localChange(_ changes: MaildirChanges) {
        if changes.rescanEverything || changes.folderListChanged {
            request(all: true, reason: "local folders changed")
        } else {
            request(folders: changes.folders, reason: "local change in \(changes.folders.map(FolderNaming.displayName).sorted().joined(separator: ", "))")
        }
    }

    /// Tags changed in notmuch touch no Maildir directory: its database directory is
    /// watched instead (a pass of the folders whose tags changed follows), or, where it
    /// cannot be found, notmuch's revision is asked for every 5 seconds.
    private func watchNotmuch() async {
        let notmuch = Notmuch(config: account.notmuchConfig, account: account.name)
        let seen = RevisionSeen(try? await notmuch.revision())
        // A write is a change of tags only if the revision moved (`notmuch new` rewrites
        // the database's files when nothing changed, and every pass runs it).
        @Sendable func check() async {
            let now = try? await notmuch.revision()
            if let now, await seen.changed(to: now) { await self.request(all: true, reason: "notmuch tags changed") }
        }
        if let directory = try? await notmuch.databaseDirectory() {
            // Xapian's lock file is touched by every reader that locks, also when nothing changed.
            let watch = DirectoryWatch(path: directory, ignoring: ["flintlock"]) { Task { await check() } }
            if watch.start() {
                tagWatch = watch
                return
            }
        }
        logger.warn("cannot watch notmuch's database for tag changes; its revision is checked every 5 s")
        while !stopped && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            await check()
        }
    }

    /// The sync pass could not log in because the server's connection limit is reached
    /// while the push holds several IDLE connections: IDLE on one folder fewer (that one
    /// is polled), so the pass gets in; the push reconnects at once with the new limit.
    private func makeRoomForSync(after error: any Error) async {
        guard let e = error as? IMAPError, case .loginRefusedForNow = e, idleSessions > 1 else { return }
        learnedIdleLimit = idleSessions - 1
        logger.warn("the sync pass could not connect beside \(idleSessions) IDLE connections: IDLE goes on \(idleSessions - 1) folder(s), "
                    + "the rest are checked every \(formatDuration(account.pollInterval)); set max_connections to what the server allows")
        idleSessions = 0
        for session in pushSessions { await session.close() }   // pushLoop reconnects with the new limit
    }

    /// After a suspend/resume or a wall-clock jump the connections are probably dead and
    /// changes may have been missed: reconnect now and sync everything.
    public func clockJumped() async {
        logger.info("the clock jumped (suspend/resume?): reconnecting and syncing")
        for session in pushSessions { await session.close() }   // pushLoop reconnects at once
        await syncSession?.close()
        syncSession = nil
        backoff = 1
        request(all: true, reason: "clock jump")
    }

    /// The watcher needs the Maildir to exist: after the first pass created it. A root
    /// replaced since (a disk mounted over it) is watched afresh.
    func ensureWatcher() {
        if let current = watcher, current.rootReplaced {
            current.stop()
            watcher = nil
            // What changed there before the new watches were set is seen by a pass.
            request(all: true, reason: "the Maildir \(account.maildir) was replaced (a disk mounted?)")
        }
        if watcher == nil && account.protocol == .imap && !stopped { startWatcher() }
    }

    // MARK: - Server push

    private func pushLoop() async {
        var delay = 1.0
        while !stopped {
            do {
                try await watchServer()
                delay = 1
            } catch {
                if stopped || Task.isCancelled { break }
                markPushReady()   // never hold the first pass back on a failing push connection
                update { $0.state = "backing off"; $0.lastError = "\(error)" }
                logger.warn("push connection: \(error); reconnecting in \(Int(delay)) s")
                try? await Task.sleep(for: .milliseconds(Int(delay * Double.random(in: 0.8...1.2) * 1000)))
                delay = min(delay * 2, 300)
            }
        }
    }

    /// A logged-in session for push (kept so `stop()` can close it).
    private func pushSession(secret: String) async throws -> IMAPSession {
        let session = try await IMAPSession.connect(host: account.host, port: account.port, security: account.connectionSecurity,
                                                    ioTimeout: 30)
        pushSessions.append(session)
        try await session.login(username: account.username, secret: secret,
                                mechanism: IMAPAuthMechanism(rawValue: account.auth.rawValue) ?? .auto, host: account.host, port: account.port)
        return session
    }

    /// Reports server changes: NOTIFY (RFC 5465) for every folder on one connection when
    /// offered; otherwise IDLE (RFC 2177) on each folder of `idle`, one connection each, as
    /// many as `max_connections` leaves beside the sync pass's `connections` (the others are
    /// checked every `poll_interval`). Returns only on error (then `pushLoop` reconnects) or stop.
    private func watchServer() async throws {
        let secret = try await account.password?.resolve(account: account.name) ?? ""
        update { $0.state = "connecting" }
        for session in pushSessions { await session.close() }
        pushSessions = []
        let session = try await pushSession(secret: secret)
        ensureWatcher()
        let naming = try await FolderNaming.discover(session)
        let useNotify = await session.capabilities.contains("NOTIFY") && account.push != .idle
        if useNotify {
            _ = try await session.select(.inbox, readOnly: true)
            try await session.execute(.notify("SET (selected (MessageNew (UID) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge FlagChange MailboxName))"))
            update { $0.state = "connected"; $0.push = "NOTIFY" }
            pushConnected()
            try await idleLoop(session: session, folder: nil, naming: naming)
            return
        }
        let folders = try await idleFolders(session: session, naming: naming)
        let sessions = await openIdleSessions(first: session, count: folders.count, secret: secret, folders: folders)
        update { $0.state = "connected"; $0.push = "IDLE" }
        pushConnected()
        idleSessions = sessions.count
        defer { idleSessions = 0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (s, (folder, mailbox)) in zip(sessions, folders) {
                group.addTask {
                    _ = try await s.select(mailbox, readOnly: true)
                    try await self.idleLoop(session: s, folder: folder, naming: naming)
                }
            }
            try await group.next()   // the first failure ends all; pushLoop reconnects
            group.cancelAll()
        }
    }

    /// The folders to IDLE on (`IdlePlan`); the log says once which are polled instead.
    private func idleFolders(session: IMAPSession, naming: FolderNaming) async throws -> [([String], MailboxName)] {
        let plan = IdlePlan(account, entries: try await session.list(), naming: naming, limit: learnedIdleLimit)
        if !plan.polled.isEmpty {
            let polled = plan.polled.map(FolderNaming.displayName)
            logger.once(.warn, "IDLE on \(plan.watched.count) of \(plan.watched.count + polled.count) folders (max_connections = \(account.maxConnections), "
                        + "of which connections = \(account.connections) are for syncing); the other \(polled.count) (\(Self.list(polled))) "
                        + "are checked every \(formatDuration(account.pollInterval)). Raise max_connections if the server allows more, or list fewer folders in `idle`")
        }
        return plan.watched
    }

    /// One session per IDLE folder, `first` for the first, opened together. When the server
    /// refuses one (its connection limit, or other clients using it), the folders without
    /// a session fall back to the poll, room is given back for the sync pass's
    /// `connections`, and later reconnects open no more than that (`learnedIdleLimit`).
    private func openIdleSessions(first: IMAPSession, count: Int, secret: String, folders: [([String], MailboxName)]) async -> [IMAPSession] {
        guard count > 1 else { return [first] }
        var opened: [(Int, IMAPSession)] = [(0, first)]
        var refusal: (any Error)?
        await withTaskGroup(of: (Int, Result<IMAPSession, any Error>).self) { group in
            for index in 1..<count {
                group.addTask {
                    do { return (index, .success(try await self.pushSession(secret: secret))) } catch { return (index, .failure(error)) }
                }
            }
            for await (index, result) in group {
                switch result {
                case .success(let s): opened.append((index, s))
                case .failure(let error): refusal = refusal ?? error
                }
            }
        }
        // Sessions are not selected yet, so any of them can watch any folder.
        let sessions = opened.sorted { $0.0 < $1.0 }.map(\.1)
        guard let refusal else { return sessions }
        let keep = max(1, sessions.count - account.connections)
        learnedIdleLimit = keep
        for s in sessions[keep...] { await s.close() }
        let polled = folders[keep...].map { FolderNaming.displayName($0.0) }
        logger.warn("the server refused an IDLE connection (\(refusal)) after \(sessions.count) of \(count): IDLE stays on \(keep), "
                    + "leaving room for the \(account.connections) sync connection(s); \(Self.list(polled)) checked every \(formatDuration(account.pollInterval)) "
                    + "instead (until the daemon restarts). Set max_connections to what the server allows (\(sessions.count) push connections worked, beside the sync pass's)")
        return Array(sessions.prefix(keep))
    }

    /// A few names, then "…".
    private static func list(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }

    /// The first connection lets the first pass start; a later one (a reconnect) may have
    /// missed changes, so it asks for a pass of everything.
    private func pushConnected() {
        if pushReady { request(all: true, reason: "push reconnected") } else { markPushReady() }
    }

    /// IDLE, renewed well before the 30-minute limit (a dead connection is noticed within
    /// 2 × keepalive, when the renewal times out); each batch of events asks for a pass of
    /// the folders it concerns (`folder` for IDLE; from STATUS responses under NOTIFY).
    private func idleLoop(session: IMAPSession, folder: [String]?, naming: FolderNaming) async throws {
        let keepalive = Double(min(account.pollInterval, 25 * 60))
        while !stopped && !Task.isCancelled {
            let events = try await session.idle(timeout: keepalive)
            logger.debug("IDLE returned \(events.count) event(s)")
            var folders = Set<[String]>()
            var unknown = false
            for event in events {
                // (A bare "* OK" keepalive never gets here: the session does not end IDLE for it.)
                switch event {
                case .status(let mailbox, _):
                    if let f = naming.folder(for: mailbox) { folders.insert(f) }
                case .list(let entry):
                    if let f = naming.folder(for: entry.name) { folders.insert(f) }
                case .exists, .expunge, .vanished, .fetch, .recent:
                    folders.insert(folder ?? ["INBOX"])
                default:
                    unknown = true
                }
            }
            if !folders.isEmpty {
                request(folders: folders, reason: "server change in \(folders.map(FolderNaming.displayName).sorted().joined(separator: ", "))")
            } else if unknown {
                request(all: true, reason: "server change")
            }
        }
    }
}

/// Why a daemon pass failed.
enum DaemonError: Error, CustomStringConvertible {
    case foldersFailed(Int)
    var description: String { "\(foldersFailedCount) folder(s) failed to sync" }
    var foldersFailedCount: Int { if case .foldersFailed(let n) = self { n } else { 0 } }
}

enum FSCheck {
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}

/// The last notmuch revision the daemon's watch saw.
actor RevisionSeen {
    private var last: Notmuch.Revision?
    init(_ revision: Notmuch.Revision?) { last = revision }

    /// Whether `now` differs from the last one seen (which it becomes).
    func changed(to now: Notmuch.Revision) -> Bool {
        defer { last = now }
        return now != last
    }
}
