import Config
import State
import Support
import Sync

/// `mailmirror sync [--config PATH] [--force] [--dry-run] [ACCOUNT...]`: one pass over the
/// selected accounts (all by default), in parallel, each with its own state connection and
/// lock; a failing account never stops the others.
enum SyncCommand {
    /// Outcome of one account's pass.
    enum Outcome: Sendable {
        case done(lines: [String], downloaded: Int, deleted: Int)
        case failed(String)
        case unsupported(String)
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
        let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, account) in accounts.enumerated() {
                group.addTask { (index, await syncAccount(account, config: config, dryRun: args.dryRun, logger: logger)) }
            }
            var all: [(Int, Outcome)] = []
            for await outcome in group { all.append(outcome) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var downloaded = 0, deleted = 0, failed = 0, unsupported = 0
        for (account, outcome) in zip(accounts, outcomes) {
            switch outcome {
            case let .done(lines, down, del):
                for line in lines { StandardStream.output.write(line + "\n") }
                downloaded += down
                deleted += del
            case .failed(let message):
                failed += 1
                logger.error("\(account.name): \(message)")
            case .unsupported(let message):
                unsupported += 1
                StandardStream.error.write("mailmirror: \(account.name): \(message)\n")
            }
        }
        let done = accounts.count - failed - unsupported
        StandardStream.output.write("\(args.dryRun ? "dry run: " : "")\(done) of \(accounts.count) account(s) synced: \(downloaded) down, \(deleted) deleted on server\(failed > 0 ? ", \(failed) failed" : "")\n")
        if failed > 0 { return 1 }
        return unsupported > 0 ? 2 : 0
    }

    static func syncAccount(_ account: AccountConfiguration, config: Configuration, dryRun: Bool, logger: Logger) async -> Outcome {
        guard account.protocol == .pop3 else {
            return .unsupported("IMAP sync is not implemented yet in this version (see README.md, \"Status\"); only POP3 accounts are synced")
        }
        do {
            let state = try StateStore.open(directory: config.general.stateDirectory)
            let lock = try AccountLock(stateDirectory: config.general.stateDirectory, account: account.name)
            defer { withExtendedLifetime(lock) {} }
            let report = try await POP3Drain(account: account, state: state, logger: logger).run(dryRun: dryRun)
            var lines: [String] = []
            if report.downloaded > 0 || report.deletedOnServer > 0 || dryRun {
                var parts = ["\(report.downloaded) down"]
                if report.deletedOnServer > 0 { parts.append("\(report.deletedOnServer) deleted on server") }
                if !report.skippedTooLarge.isEmpty { parts.append("\(report.skippedTooLarge.count) too large, left on server") }
                lines.append("\(account.name)/INBOX: \(dryRun ? "would be " : "")" + parts.joined(separator: ", "))
            }
            return .done(lines: lines, downloaded: report.downloaded, deleted: report.deletedOnServer)
        } catch {
            return .failed("\(error)")
        }
    }
}
