import Testing
import Config
import IMAP
import Support
import Sync
import Maildir
import TestSupport

@Suite struct FastPathTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A pass over folders that changed on neither side costs one LIST (with LIST-STATUS):
    /// no SELECT, no FETCH. A folder changed on the server, or in the Maildir, is synced.
    @Test func unchangedFoldersCostNoSelectOrFetch() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("f1"), mail("f2")])
        try await a.append("Archive", [mail("f3")])
        try await a.append("Lists/swift", [mail("f4")])
        _ = try await a.sync()
        try await maildirSettles()
        _ = try await a.sync()   // the pass after one that wrote locally notes the settled state

        let config = try ConfigurationLoader.load(path: a.config)
        let account = config.accounts[0]
        func pass() async throws -> (counts: [String: Int], report: AccountReport, fetched: Int) {
            var sync = IMAPAccountSync(account: account, stateDirectory: config.general.stateDirectory,
                                       logger: Logger(level: .error), force: false, dryRun: false)
            let session = try await sync.connect(secret: a.user.password)
            sync.session = session
            let report = try await sync.run()
            let counts = await session.commandCounts
            let fetched = await session.fetchResponseCount
            await session.logout()
            return (counts, report, fetched)
        }
        let quiet = try await pass()
        #expect(quiet.counts["SELECT"] == nil && quiet.counts["UID FETCH"] == nil, "\(quiet.counts)")
        #expect(quiet.counts["LIST"] == 1)

        // A new message on the server in one folder: only that folder is selected.
        try await a.append("Archive", [mail("f5")])
        let one = try await pass()
        #expect(one.counts["SELECT"] == 1, "\(one.counts)")
        #expect(one.report.folders.first { $0.folder == ["Archive"] }?.downloaded == 1)

        // A local flag change in another folder: that folder only.
        try await maildirSettles()
        _ = try await pass()   // settle after the download
        let inbox = a.localMessages("INBOX")
        let store = Maildir.MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try store.scan().messages.first { $0.fileName == inbox[0].name }!
        _ = try store.setFlags(file, to: Maildir.MessageFlags("F"))
        let local = try await pass()
        #expect(local.counts["SELECT"] == 1, "\(local.counts)")
        #expect(local.report.folders.first { $0.folder == ["INBOX"] }?.flagChanges == 1)
    }
}

extension FastPathTests {
    /// With CONDSTORE, a folder whose flags changed on the server fetches only the changed
    /// messages (CHANGEDSINCE), not a line per message; the result equals a full pass.
    @Test func onlyChangedMessagesAreFetched() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...40).map { mail("c\($0)") })
        _ = try await a.sync()
        _ = try await a.sync()
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.store(UIDSet([UID(3), UID(17), UID(29)]), .add, [.flagged])
        await s.logout()
        let config = try ConfigurationLoader.load(path: a.config)
        var sync = IMAPAccountSync(account: config.accounts[0], stateDirectory: config.general.stateDirectory,
                                   logger: Logger(level: .error), force: false, dryRun: false)
        let session = try await sync.connect(secret: a.user.password)
        sync.session = session
        let report = try await sync.run()
        let fetched = await session.fetchResponseCount
        await session.logout()
        #expect(fetched == 3, "only the 3 changed messages are fetched, not 40")
        #expect(report.folders.first { $0.folder == ["INBOX"] }?.flagChanges == 3)
        #expect(a.localMessages("INBOX").filter { $0.flags.contains(Maildir.MessageFlags.flagged) }.count == 3)
    }

    /// With QRESYNC, expunges arrive as VANISHED in the answer to the CHANGEDSINCE FETCH sent
    /// with the SELECT: no UID SEARCH of every message, and the expunged ones go locally.
    @Test func expungesArriveAsVanishedWithoutASearch() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...30).map { mail("v\($0)") })
        _ = try await a.sync()
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.deleteMessages(UIDSet([UID(4), UID(5), UID(20)]))
        try await s.store(UIDSet([UID(9)]), .add, [.seen])
        await s.logout()
        let config = try ConfigurationLoader.load(path: a.config)
        var sync = IMAPAccountSync(account: config.accounts[0], stateDirectory: config.general.stateDirectory,
                                   logger: Logger(level: .error), force: false, dryRun: false)
        let session = try await sync.connect(secret: a.user.password)
        #expect(await session.enabled.contains("QRESYNC"))
        sync.session = session
        let report = try await sync.run()
        let counts = await session.commandCounts
        let fetched = await session.fetchResponseCount
        await session.logout()
        #expect(counts["UID SEARCH"] == nil, "\(counts)")
        #expect(counts["SELECT"] == 1, "\(counts)")
        #expect(fetched == 1, "only the one changed message is fetched")
        let inbox = try #require(report.folders.first { $0.folder == ["INBOX"] })
        #expect(inbox.deleted == 3 && inbox.flagChanges == 1)
        #expect(a.localMessages("INBOX").count == 27)
    }
}
