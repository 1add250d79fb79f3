#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import Config
import Maildir
import POP3
import State
import Support
import Transport

/// What one POP3 pass did.
public struct DrainReport: Sendable, Equatable {
    /// Messages on the server when the pass started.
    public var onServer = 0
    public var downloaded = 0
    /// Messages whose DELE was confirmed by QUIT.
    public var deletedOnServer = 0
    /// Messages left on the server because of `max_message_size`: (UIDL, size).
    public var skippedTooLarge: [String] = []
    /// Interrupted downloads adopted from the journal at start.
    public var recovered = 0
}

/// Drains a POP3 mailbox into the account's Maildir INBOX (download, then delete) in the
/// order invariant 1 demands: RETR into `tmp/`, fsync, rename into `new/`, commit the UIDL
/// (synchronous=FULL), and only then DELE. DELE takes effect at QUIT; if the connection
/// dies first, the next pass sees the messages again, knows their UIDLs, and only deletes.
public struct POP3Drain {
    public let account: AccountConfiguration
    public let state: StateStore
    public let logger: Logger
    /// Messages downloaded per batch: one syncfs and one SQLite commit each.
    public var batchSize = 200

    /// `sync --force`: an account that now names another mailbox keeps the UIDLs remembered
    /// for the old one (the user says it is the same mailbox).
    public var force = false

    public init(account: AccountConfiguration, state: StateStore, logger: Logger) {
        self.account = account
        self.state = state
        self.logger = logger.with(context: account.name + "/INBOX")
    }

    /// One pass. With `dryRun`, only logs what it would do (nothing is written anywhere).
    public func run(dryRun: Bool = false, now: Int64 = Int64(time(nil))) async throws -> DrainReport {
        var report = DrainReport()
        let accountID = try state.account(named: account.name, protocol: "pop3")
        /// Stops before anything is done, with the reason listed by `status`.
        func refuse(_ error: SyncError) throws -> Never {
            try? state.recordAccountPass(accountID, completedAt: nil, error: "\(error)")
            throw error
        }
        if let mailbox = try AccountMailbox.changed(account, state: state, accountID: accountID) {
            let remembered = try state.pop3Messages(of: accountID).count
            if remembered > 0 {
                if !force { try refuse(.mailboxChanged(account: account.name, was: mailbox.was, now: mailbox.now, remembered: remembered)) }
                logger.warn("the account now names another mailbox (\(mailbox.was) → \(mailbox.now)); as asked with --force, the \(remembered) message(s) remembered as delivered carry over")
            }
            try state.setAccountMailbox(accountID, mailbox.now, forgettingUIDs: false)
        }
        let store = MaildirStore(root: account.maildir, layout: account.layout)
        if !force && !store.folder(["INBOX"]).exists, try !state.pop3Messages(of: accountID).isEmpty {
            // Delivering into a Maildir that is not there (a disk not mounted) would hide the
            // mail once it is back.
            try refuse(.sideLooksGone(account: account.name, what: "the Maildir INBOX \(store.folder(["INBOX"]).path) is missing, though messages were delivered there before",
                                      advice: "is a disk not mounted? If you removed it on purpose, `mailmirror sync --force \(account.name)` delivers into a new one"))
        }
        let inbox = dryRun ? store.folder(["INBOX"]) : try store.createFolder(["INBOX"])
        if !dryRun { report.recovered = try recover(accountID: accountID, inbox: inbox, now: now) }

        let client = try await POP3Client.connect(host: account.host, port: account.port, security: account.connectionSecurity)
        do {
            let secret = try await account.password?.resolve(account: account.name) ?? ""
            try await client.login(username: account.username, secret: secret,
                                   mechanism: POP3AuthMechanism(rawValue: account.auth.rawValue) ?? .auto,
                                   host: account.host, port: account.port)
            let sizes = Dictionary(try await client.list().map { ($0.number, $0.size) }, uniquingKeysWith: { a, _ in a })
            let ids = try await identities(client, sizes: sizes)
            report.onServer = ids.count
            // A UIDL is the only proof that a message was delivered before: if the server gives
            // one to several messages, a new message could pass for a delivered one and be
            // deleted unread. (Without UIDL, identical header hashes are identical messages.)
            var seenIDs: [[UInt8]: Int] = [:]
            for (_, uidl) in ids { seenIDs[uidl, default: 0] += 1 }
            if let repeated = seenIDs.first(where: { $0.value > 1 }), !(ids.first?.1.starts(with: Array("sha256:".utf8)) ?? false) {
                await client.close()
                try refuse(.repeatedUIDLs(account: account.name, repeated: seenIDs.values.filter { $0 > 1 }.reduce(0, +),
                                          example: String(decoding: repeated.key.prefix(70), as: UTF8.self)))
            }

            var toDownload: [(number: Int, uidl: [UInt8])] = []
            var toDelete: [(number: Int, uidl: [UInt8])] = []
            let known = Dictionary(try state.pop3Messages(of: accountID).map { ($0.uidl, $0) }, uniquingKeysWith: { a, _ in a })
            for (number, uidl) in ids {
                if let record = known[uidl] {
                    if !account.keepOnServer {
                        toDelete.append((number, uidl))            // delivered before; DELE was not confirmed
                    } else if let days = account.deleteAfterDays, record.deliveredAt < now - Int64(days) * 86400 {
                        toDelete.append((number, uidl))
                    }
                    continue
                }
                if let limit = account.maxMessageSize, let size = sizes[number], size > limit {
                    report.skippedTooLarge.append(String(decoding: uidl, as: UTF8.self))
                    logger.warn("message \(number) (\(size) bytes) is larger than max_message_size (\(limit)); left on the server")
                    continue
                }
                toDownload.append((number, uidl))
            }
            if dryRun {
                logger.info("dry run: would download \(toDownload.count) and delete \(toDelete.count + (account.keepOnServer ? 0 : toDownload.count)) on the server")
                await client.close()
                report.downloaded = toDownload.count
                return report
            }

            var deleted: [[UInt8]] = []
            try await client.delete(toDelete.map(\.number))
            deleted += toDelete.map(\.uidl)
            for start in stride(from: 0, to: toDownload.count, by: batchSize) {
                let batch = Array(toDownload[start..<min(start + batchSize, toDownload.count)])
                let delivered = try await download(batch, client: client, inbox: inbox, accountID: accountID, now: now)
                report.downloaded += delivered.count
                if !account.keepOnServer {
                    // The UIDLs are on disk (FULL commit): only now may the server delete them.
                    try await client.delete(delivered.map(\.number))
                    deleted += delivered.map(\.uidl)
                }
            }
            try await client.quit()
            if !deleted.isEmpty { try state.markPOP3Deleted(accountID, uidls: deleted, at: now) }
            report.deletedOnServer = deleted.count
            try state.recordAccountPass(accountID, completedAt: now, error: nil)
            return report
        } catch {
            await client.close()   // no QUIT: the server discards this session's DELEs
            try? state.recordAccountPass(accountID, completedAt: nil, error: "\(error)")
            throw error
        }
    }

    /// Finishes downloads a crash interrupted: a journaled retrieve whose file reached
    /// `new/` is adopted (its UIDL recorded); one whose file did not is forgotten (the
    /// message is still on the server and is fetched again). Never a second copy.
    func recover(accountID: AccountID, inbox: MaildirFolder, now: Int64) throws -> Int {
        let pendingEntries = try state.pendingJournalEntries(of: accountID).filter { $0.kind == .pop3Retrieve }
        guard !pendingEntries.isEmpty else { return 0 }
        let present = try inbox.scan().messages
        var adopted = 0
        try state.transaction(durability: .full) {
            for entry in pendingEntries {
                if let prefix = entry.localName, let uidl = entry.detail,
                   let file = present.first(where: { $0.baseName.hasPrefix(prefix + ",") || $0.baseName == prefix }) {
                    try state.recordPOP3Message(accountID, POP3Record(uidl: uidl, localName: file.baseName, deliveredAt: now))
                    adopted += 1
                }
                try state.resolveJournalEntry(entry.id!)
            }
        }
        if adopted > 0 { logger.info("recovered \(adopted) message(s) delivered before an interruption") }
        return adopted
    }

    /// Downloads one batch: journal (FULL), RETR streamed into tmp/ files, one syncfs,
    /// renames, then the UIDLs (FULL). Returns what was delivered.
    func download(_ batch: [(number: Int, uidl: [UInt8])], client: POP3Client, inbox: MaildirFolder,
                  accountID: AccountID, now: Int64) async throws -> [(number: Int, uidl: [UInt8])] {
        let sink = try DrainSink(folder: inbox, numbers: batch.map(\.number))
        var journal: [Int: JournalID] = [:]
        do {
            try state.transaction(durability: .full) {
                for item in batch {
                    journal[item.number] = try state.addJournalEntry(JournalEntry(
                        account: accountID, kind: .pop3Retrieve, localName: sink.writers[item.number]!.uniquePart,
                        detail: item.uidl, created: now))
                }
            }
            let refused = try await client.retrieve(batch.map(\.number), sink: sink)
            for (number, status) in refused {
                logger.warn("the server refused RETR \(number): \(status.text); it stays on the server")
                sink.writers[number]?.abort()
                sink.writers[number] = nil
            }
            let delivered = try sink.batch.commit()
            let baseNames = Dictionary(uniqueKeysWithValues: zip(sink.completed, delivered.map(\.baseName)))
            try state.transaction(durability: .full) {
                for item in batch {
                    if let baseName = baseNames[item.number] {
                        try state.recordPOP3Message(accountID, POP3Record(uidl: item.uidl, localName: baseName, deliveredAt: now))
                    }
                    if let id = journal[item.number] { try state.resolveJournalEntry(id) }
                }
            }
            return batch.filter { baseNames[$0.number] != nil }
        } catch {
            sink.abortAll()
            throw error
        }
    }

    /// UIDLs by message number; without UIDL, a SHA-256 of the `TOP n 0` headers and the
    /// size stands in (safe with deletion, since deletion follows delivery).
    func identities(_ client: POP3Client, sizes: [Int: Int64]) async throws -> [(Int, [UInt8])] {
        if let uidls = try await client.uidl() { return uidls.map { ($0.number, $0.uidl) } }
        logger.warn("the server has no UIDL; identifying messages by a hash of their headers and size")
        var result: [(Int, [UInt8])] = []
        for number in sizes.keys.sorted() {
            let headers = try await client.top(number, lines: 0)
            result.append((number, Array("sha256:".utf8) + sha256Hex(headers + Array("\(sizes[number] ?? 0)".utf8))))
        }
        return result
    }
}

/// Routes each retrieved message to its own `MessageWriter`.
final class DrainSink: POP3MessageSink, @unchecked Sendable {   // used by one call at a time
    let batch: DeliveryBatch
    var writers: [Int: MessageWriter] = [:]
    var current: Int?
    /// Message numbers in the order they were added to the batch.
    var completed: [Int] = []

    init(folder: MaildirFolder, numbers: [Int]) throws {
        batch = DeliveryBatch(folder: folder)
        for n in numbers { writers[n] = try folder.beginDelivery() }
    }

    func begin(message: Int) throws { current = message }
    func write(_ bytes: [UInt8]) throws { try writers[current!]!.writeWireBytes(bytes) }
    func end() throws {
        guard let n = current, let writer = writers[n] else { return }
        try batch.add(writer, flags: MessageFlags())
        completed.append(n)
        current = nil
    }

    func abortAll() {
        batch.abort()
        for writer in writers.values { writer.abort() }
    }
}

func sha256Hex(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    bytes.withUnsafeBytes { raw in _ = EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_sha256(), nil) }
    return Array(digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined().utf8)
}

extension AccountConfiguration {
    /// How to secure connections to this account's server.
    public var connectionSecurity: ConnectionSecurity {
        let tls = TLSClientConfiguration(verifyName: host, caFile: caFile)
        switch self.tls {
        case .implicit: return .implicitTLS(tls)
        case .starttls: return .startTLS(tls)
        case .none: return .plain
        }
    }
}
