#if canImport(Glibc)
import Glibc
#endif
import Config
import State
import Dispatch
import Support
import Sync

/// `mailmirror daemon`: runs every account until SIGTERM.
///
/// Each account is an `AccountRunner` task (one account's failure never stalls another).
/// Signals arrive through Dispatch signal sources: SIGTERM/SIGINT stop the runners and exit
/// 0 within 5 s (every transfer is journaled, so stopping at any instant is safe); SIGHUP
/// reloads the configuration (an invalid one keeps the old running) and restarts only the
/// accounts that changed; SIGUSR1 syncs everything now. systemd is told READY, STATUS,
/// WATCHDOG, RELOADING and STOPPING over `$NOTIFY_SOCKET`.
public final class Daemon: @unchecked Sendable {   // its state lives on `queue`
    let configPath: String
    let environment: [String: String]
    let queue = DispatchQueue(label: "mailmirror.daemon")
    let notifier: SystemdNotifier
    var config: Configuration
    var logger: Logger
    var runners: [String: AccountRunner] = [:]
    var statuses: [String: RunnerStatus] = [:]
    var sources: [DispatchSourceProtocol] = []
    var hookRunning: Set<String> = []
    var shutdown: CheckedContinuation<Void, Never>?
    var stopping = false

    public init(configPath: String, configuration: Configuration, environment: [String: String]) {
        self.configPath = configPath
        self.environment = environment
        config = configuration
        logger = Logger(level: configuration.general.logLevel)
        notifier = SystemdNotifier(environment: environment)
    }

    /// Runs until SIGTERM/SIGINT; returns the exit code (0; 1 when another daemon runs on
    /// the same state).
    public func run() async -> Int32 {
        let lock: AccountLock
        do {
            try StateStore.makeDirectory(config.general.stateDirectory)
            lock = try AccountLock.daemon(stateDirectory: config.general.stateDirectory)
        } catch {
            logger.error("\(error)")
            return 1
        }
        defer { withExtendedLifetime(lock) {} }
        for (sig, action) in [(SIGTERM, "term"), (SIGINT, "term"), (SIGHUP, "hup"), (SIGUSR1, "usr1")] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                switch action {
                case "term": self.beginShutdown()
                case "hup": Task { await self.reload() }
                default: self.syncEverything()
                }
            }
            source.resume()
            sources.append(source)
        }
        if let interval = notifier.watchdogInterval {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in self?.notifier.notify("WATCHDOG=1") }
            timer.resume()
            sources.append(timer)
        }
        // Suspend/resume and wall-clock jumps: CLOCK_BOOTTIME advances during suspend while
        // CLOCK_MONOTONIC does not, and CLOCK_REALTIME jumps with clock changes.
        var last = (boot: clockSeconds(CLOCK_BOOTTIME), mono: clockSeconds(CLOCK_MONOTONIC), real: clockSeconds(CLOCK_REALTIME))
        let clockTimer = DispatchSource.makeTimerSource(queue: queue)
        clockTimer.schedule(deadline: .now() + 5, repeating: 5)
        clockTimer.setEventHandler { [weak self] in
            guard let self else { return }
            let now = (boot: clockSeconds(CLOCK_BOOTTIME), mono: clockSeconds(CLOCK_MONOTONIC), real: clockSeconds(CLOCK_REALTIME))
            let monoDelta = now.mono - last.mono
            if abs((now.boot - last.boot) - monoDelta) > 10 || abs((now.real - last.real) - monoDelta) > 60 {
                for runner in self.runners.values { Task { await runner.clockJumped() } }
            }
            last = now
        }
        clockTimer.resume()
        sources.append(clockTimer)
        queue.sync { startRunners(for: config.accounts) }
        notifier.notify("READY=1\nSTATUS=first sync of \(config.accounts.count) account(s) started")
        let firstPasses = Task {
            var failed: [String] = []
            for runner in queue.sync(execute: { Array(runners.values) }) {
                if let why = await runner.waitForFirstAttempt() { failed.append("\(runner.account.name) (\(why))") }
            }
            if !queue.sync(execute: { stopping }) {
                let total = config.accounts.count
                if failed.isEmpty {
                    logger.notice("ready: first sync of \(total) account(s) done; watching for changes")
                } else {
                    logger.notice("ready: first sync of \(total - failed.count) of \(total) account(s) done; "
                                  + "\(failed.sorted().joined(separator: ", ")) failed and \(failed.count == 1 ? "is" : "are") retried; watching for changes")
                }
                publishStatus()
            }
        }
        await withCheckedContinuation { continuation in
            queue.sync { if stopping { continuation.resume() } else { shutdown = continuation } }
        }
        firstPasses.cancel()
        notifier.notify("STOPPING=1")
        logger.info("stopping")
        let all = queue.sync { Array(runners.values) }
        // Never more than ~4 s: a runner whose connection hangs (a stalled server) is not
        // waited for — a task group would wait for every child even after cancelAll, so the
        // stops run unstructured and whichever comes first, all stopped or the deadline, ends
        // the wait. Every transfer is journaled: ending at any instant is safe.
        if !all.isEmpty {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let once = ResumeOnce(continuation)
                Task {
                    await withTaskGroup(of: Void.self) { group in
                        for runner in all { group.addTask { await runner.stop() } }
                    }
                    once.resume()
                }
                Task {
                    try? await Task.sleep(for: .seconds(4))
                    once.resume()
                }
            }
        }
        removeStatusFile()
        return 0
    }

    func beginShutdown() {
        dispatchPrecondition(condition: .onQueue(queue))
        stopping = true
        shutdown?.resume()
        shutdown = nil
    }

    func syncEverything() {
        logger.info("SIGUSR1: syncing everything now")
        for runner in runners.values { Task { await runner.request(all: true, reason: "SIGUSR1") } }
    }

    func startRunners(for accounts: [AccountConfiguration]) {
        dispatchPrecondition(condition: .onQueue(queue))
        for account in accounts {
            let runner = AccountRunner(account: account, config: config, logger: logger,
                                       onNewMail: { [weak self] account in self?.runHook(for: account) },
                                       onStatus: { [weak self] status in
                                           guard let daemon = self else { return }
                                           daemon.queue.async { daemon.statusChanged(status) }
                                       })
            runners[account.name] = runner
            Task { await runner.start() }
        }
    }

    /// SIGHUP: a valid new configuration replaces the old; accounts added, removed or changed
    /// are started, stopped or restarted; an invalid one is logged and the old one kept.
    func reload() async {
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        let fresh: Configuration
        do { fresh = try ConfigurationLoader.load(path: configPath, environment: environment) } catch {
            logger.error("SIGHUP: \(configPath) is not valid, keeping the running configuration:\n\(error)")
            return
        }
        let (stopList, startList): ([AccountRunner], [AccountConfiguration]) = queue.sync {
            var stopList: [AccountRunner] = []
            var startList: [AccountConfiguration] = []
            let old = Dictionary(uniqueKeysWithValues: config.accounts.map { ($0.name, $0) })
            for account in fresh.accounts where old[account.name] != account || config.general != fresh.general {
                if let r = runners.removeValue(forKey: account.name) { stopList.append(r) }
                startList.append(account)
            }
            for name in old.keys where fresh.account(named: name) == nil {
                if let r = runners.removeValue(forKey: name) { stopList.append(r) }
                statuses[name] = nil
            }
            config = fresh
            logger = Logger(level: fresh.general.logLevel)
            return (stopList, startList)
        }
        for r in stopList { await r.stop() }
        queue.sync { startRunners(for: startList) }
        logger.info("SIGHUP: configuration reloaded (\(startList.count) account(s) started or restarted, \(stopList.count - startList.count >= 0 ? stopList.count : 0) stopped)")
    }

    // MARK: - Hooks

    /// Runs the account's `on_new_mail` (or the general one) after new mail arrived, with a
    /// timeout, output logged; never two at once for one account.
    func runHook(for account: AccountConfiguration) {
        guard let hook = account.onNewMail else { return }
        queue.async { [self] in
            guard !hookRunning.contains(account.name) else { return }
            hookRunning.insert(account.name)
            Task {
                let log = logger.with(context: account.name)
                do {
                    let result = try await Subprocess.runShell(hook, timeout: 300)
                    let output = String(decoding: result.standardOutput + result.standardError, as: UTF8.self)
                    for line in output.split(separator: "\n").prefix(20) { log.info("on_new_mail: \(line)") }
                    if !result.succeeded { log.warn("on_new_mail `\(hook)` failed (\(result.timedOut ? "timed out" : "exit \(result.exitStatus ?? -1)"))") }
                } catch {
                    log.warn("on_new_mail `\(hook)`: \(error)")
                }
                queue.async { self.hookRunning.remove(account.name) }
            }
        }
    }

    // MARK: - Status

    func statusChanged(_ status: RunnerStatus) {
        statuses[status.account] = status
        publishStatus()
    }

    /// STATUS= for systemd and `state_dir/daemon.status` for `mailmirror status`.
    func publishStatus() {
        queue.async { [self] in
            let summary = statuses.values.sorted { $0.account < $1.account }
                .map { "\($0.account): \($0.state)\($0.state == "connected" ? " (\($0.push))" : "")" }.joined(separator: ", ")
            notifier.notify("STATUS=\(summary.isEmpty ? "starting" : summary)")
            // One line per account, tab-separated, for `mailmirror status` (first line: the pid).
            func field(_ s: String?) -> String { (s ?? "").map { $0 == "\t" || $0 == "\n" ? " " : $0 }.reduce("") { $0 + String($1) } }
            var text = "\(getpid())\n"
            for s in statuses.values.sorted(by: { $0.account < $1.account }) {
                text += [s.account, s.state, s.push, s.backoffUntil.map(String.init), s.lastEvent, s.lastEventTime.map(String.init), s.lastError]
                    .map(field).joined(separator: "\t") + "\n"
            }
            // Not flushed: a status lost in a crash is written again at the next change.
            try? TextFile.replace(config.general.stateDirectory + "/daemon.status", with: Array(text.utf8), durable: false)
        }
    }

    func removeStatusFile() {
        unlink(config.general.stateDirectory + "/daemon.status")
    }
}

/// Seconds on a clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME).
func clockSeconds(_ clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Resumes a continuation once, from whichever caller comes first.
private final class ResumeOnce: @unchecked Sendable {   // guarded by `lock`
    private var continuation: CheckedContinuation<Void, Never>?
    private let lock = DispatchQueue(label: "mailmirror.resume-once")
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
    func resume() {
        let c: CheckedContinuation<Void, Never>? = lock.sync { defer { continuation = nil }; return continuation }
        c?.resume()
    }
}
