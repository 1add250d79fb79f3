import Config
import IMAP
import POP3
import Support
import Transport
import Sync

/// `mailmirror check-config [--config PATH] [--connect]`.
enum CheckConfigCommand {
    static func run(_ args: Arguments, configuration config: Configuration) async -> Int32 {
        StandardStream.output.write(config.renderResolved())
        // keywords = "notmuch" needs the notmuch command and a database: checked without --connect too.
        var notmuchOK = true
        for account in config.accounts where account.protocol == .imap && account.keywords == .notmuch {
            do {
                let revision = try await Notmuch(config: account.notmuchConfig, account: account.name).revision()
                StandardStream.output.write("# \(account.name): notmuch database \(revision.uuid), revision \(revision.number)\n")
            } catch {
                StandardStream.error.write("mailmirror: error: \(error) (keywords = \"notmuch\"; set keywords = \"maildir\" or \"none\" to do without)\n")
                notmuchOK = false
            }
        }
        guard args.connect else { return notmuchOK ? 0 : 1 }
        // Accounts are probed in parallel; lines are printed in configuration order.
        let results = await withTaskGroup(of: (Int, String, Bool).self) { group in
            for (index, account) in config.accounts.enumerated() {
                group.addTask {
                    let (line, ok) = await probe(account)
                    return (index, line, ok)
                }
            }
            var collected: [(Int, String, Bool)] = []
            for await result in group { collected.append(result) }
            return collected.sorted { $0.0 < $1.0 }
        }
        for (_, line, _) in results { StandardStream.output.write(line + "\n") }
        return results.allSatisfy { $0.2 } && notmuchOK ? 0 : 1
    }

    /// One line for one account: `work: ok, imaps host:993, TLSv1.3, IMAP4rev1 IDLE …`.
    static func probe(_ account: AccountConfiguration) async -> (String, Bool) {
        let security = account.connectionSecurity
        let endpoint = "\(account.host):\(account.port)"
        do {
            switch account.protocol {
            case .imap:
                // Connect, verify TLS, log in (so credentials are tested), list capabilities, log out.
                let session = try await IMAPSession.connect(host: account.host, port: account.port, security: security)
                let tls = await session.connection.tlsVersion ?? "no TLS"
                do {
                    let secret = try await account.password?.resolve(account: account.name) ?? ""
                    try await session.login(username: account.username, secret: secret,
                                            mechanism: IMAPAuthMechanism(rawValue: account.auth.rawValue) ?? .auto,
                                            host: account.host, port: account.port)
                } catch {
                    await session.close()
                    throw error
                }
                let caps = await session.capabilities.sorted()
                let notes = try await folderNotes(account, session: session, capabilities: Set(caps))
                await session.logout()
                let scheme = account.tls == .implicit ? "imaps" : account.tls == .starttls ? "imap+starttls" : "imap"
                return ("\(account.name): ok, \(scheme) \(endpoint), \(tls), logged in as \(account.username), \(caps.joined(separator: " "))"
                        + notes.map { "\n  \($0)" }.joined(), true)
            case .pop3:
                let client = try await POP3Client.connect(host: account.host, port: account.port, security: security)
                let tls = await client.connection.tlsVersion ?? "no TLS"
                let count: Int
                do {
                    let secret = try await account.password?.resolve(account: account.name) ?? ""
                    try await client.login(username: account.username, secret: secret,
                                           mechanism: POP3AuthMechanism(rawValue: account.auth.rawValue) ?? .auto,
                                           host: account.host, port: account.port)
                    count = try await client.stat().count
                    try await client.quit()
                } catch {
                    await client.close()
                    throw error
                }
                let scheme = account.tls == .implicit ? "pop3s" : account.tls == .starttls ? "pop3+stls" : "pop3"
                return ("\(account.name): ok, \(scheme) \(endpoint), \(tls), logged in as \(account.username), \(count) message(s) on the server", true)
            }
        } catch {
            return ("\(account.name): failed, \(error)", false)
        }
    }

    /// What the server's folder list means for this account: the views left out (see
    /// `ViewFolders`) and how the daemon will learn of changes.
    static func folderNotes(_ account: AccountConfiguration, session: IMAPSession, capabilities: Set<String>) async throws -> [String] {
        let naming = try await FolderNaming.discover(session)
        let entries = try await session.list()
        var notes = FolderFilter.mirrored(account, entries: entries, naming: naming).1.map {
            "\(FolderNaming.displayName($0.folder)): \($0.reason)"
        }
        if capabilities.contains("NOTIFY") && account.push == .auto {
            notes.append("daemon push: NOTIFY, every folder on one connection")
        } else {
            let plan = IdlePlan(account, entries: entries, naming: naming)
            var line = "daemon push: IDLE (\(capabilities.contains("NOTIFY") ? "push = \"idle\"" : "no NOTIFY on this server")) on \(plan.watched.count) folder(s), one connection each"
            if !plan.polled.isEmpty {
                line += "; \(plan.polled.count) more match `idle` but max_connections = \(account.maxConnections) leaves \(plan.watched.count) beside connections = \(account.connections): they are checked every \(formatDuration(account.pollInterval))"
            }
            notes.append(line)
        }
        return notes
    }
}
