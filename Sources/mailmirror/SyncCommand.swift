import Config
import State
import Support
import Sync

/// `mailmirror sync [--config PATH] [--force] [--dry-run] [--stats] [ACCOUNT...]`: one pass over the
/// selected accounts (all by default), in parallel, each with its own state connection and
/// lock; a failing account never stops the others.
enum SyncCommand {
    /// The progress line on a terminal (shared by all accounts).
    static let progress = ProgressLine()

    /// Outcome of one account's pass.
    enum Outcome: Sendable {
        case done(lines: [String], downloaded: Int, deleted: Int, problems: Int)
        case failed(String)
    }

    static func run(_ args: Arguments, configuration config: Configuration) async -> Int32 {
        var accounts = config.accounts
        if !args.positional.isEmpty {
            let unknown = args.positional.filter { config.account(named: $0) == nil }
            if !unknown.isEmpty {
                StandardStream.error.write("mailmirror sync: no account named \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); the configured accounts are \(config.accounts.map(\.name).joined(separator: ", "))\n")
                return 2
            }
            accounts = args.positional.compactMap { config.account(named: $0) }
        }
        let logger = Logger(level: config.general.logLevel)
        if args.stats { Footprint.startSampling() }
        defer { if args.stats { StandardStream.error.write(Footprint.report() + "\n") } }
        let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, account) in accounts.enumerated() {
                group.addTask { (index, await syncAccount(account, config: config, dryRun: args.dryRun, force: args.force, logger: logger)) }
            }
            var all: [(Int, Outcome)] = []
            for await outcome in group { all.append(outcome) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var downloaded = 0, deleted = 0, failed = 0, problems = 0
        for (account, outcome) in zip(accounts, outcomes) {
            switch outcome {
            case let .done(lines, down, del, folderProblems):
                for line in lines { StandardStream.output.write(line + "\n") }
                downloaded += down
                deleted += del
                problems += folderProblems
            case .failed(let message):
                failed += 1
                logger.error("\(account.name): \(message)")
            }
        }
        let done = accounts.count - failed
        StandardStream.output.write("\(args.dryRun ? "dry run: " : "")\(done) of \(accounts.count) account(s) synced: \(downloaded) down, \(deleted) deleted\(failed > 0 ? ", \(failed) failed" : "")\(problems > 0 ? ", \(problems) folder(s) with failures, held deletions, refused messages or names the server cannot hold" : "")\n")
        return failed > 0 || problems > 0 ? 1 : 0
    }

    static func syncAccount(_ account: AccountConfiguration, config: Configuration, dryRun: Bool, force: Bool, logger: Logger) async -> Outcome {
        if account.protocol == .imap { return await syncIMAP(account, config: config, dryRun: dryRun, force: force, logger: logger) }
        do {
            let state = dryRun ? try StateStore.scratchCopy(of: config.general.stateDirectory) : try StateStore.open(directory: config.general.stateDirectory)
            let lock = dryRun ? nil : try AccountLock(stateDirectory: config.general.stateDirectory, account: account.name)
            defer { withExtendedLifetime(lock) {} }
            var drain = POP3Drain(account: account, state: state, logger: logger)
            drain.force = force
            let report = try await drain.run(dryRun: dryRun)
            var lines: [String] = []
            if report.downloaded > 0 || report.deletedOnServer > 0 || dryRun {
                var parts = ["\(report.downloaded) down"]
                if report.deletedOnServer > 0 { parts.append("\(report.deletedOnServer) deleted on server") }
                if !report.skippedTooLarge.isEmpty { parts.append("\(report.skippedTooLarge.count) too large, left on server") }
                lines.append("\(account.name)/INBOX: \(dryRun ? "would be " : "")" + parts.joined(separator: ", "))
            }
            return .done(lines: lines, downloaded: report.downloaded, deleted: report.deletedOnServer, problems: 0)
        } catch {
            return .failed("\(error)")
        }
    }

    static func syncIMAP(_ account: AccountConfiguration, config: Configuration, dryRun: Bool, force: Bool, logger: Logger) async -> Outcome {
        do {
            if !dryRun { try StateStore.makeDirectory(config.general.stateDirectory) }   // for the lock
            let lock = dryRun ? nil : try AccountLock(stateDirectory: config.general.stateDirectory, account: account.name)
            defer { withExtendedLifetime(lock) {} }
            var sync = IMAPAccountSync(account: account, stateDirectory: config.general.stateDirectory, logger: logger,
                                       force: force, dryRun: dryRun)
            sync.progress = progress
            let report = try await sync.run()
            var lines: [String] = []
            var down = 0, deleted = 0, problems = 0
            for route in report.localMoves { lines.append("\(account.name)/\(route.summary)") }
            for folder in report.folders {
                down += folder.downloaded
                deleted += folder.deleted
                if folder.error != nil || folder.cannotMirror != nil || folder.heldDeletions > 0 || folder.refusedUploads > 0 || folder.unreadable > 0 { problems += 1 }
                let name = "\(account.name)/\(FolderNaming.displayName(folder.folder))"
                if let error = folder.error {
                    lines.append("\(name): \(folder.summary.map { $0 + ", then " } ?? "")failed: \(error)")
                } else if let summary = folder.summary {
                    lines.append("\(name): \(dryRun ? "would be " : "")\(summary)")
                }
            }
            return .done(lines: lines, downloaded: down, deleted: deleted, problems: problems)
        } catch {
            return .failed("\(error)")
        }
    }
}
