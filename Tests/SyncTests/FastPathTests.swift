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
        var sync = try a.accountSync()
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
        var sync = try a.accountSync()
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

    /// Only the server changed: the pass works from its changes alone (the pairs they name,
    /// the files where those pairs say they are) and ends where a full pass would. A file
    /// not where its pair says (an extra letter only this Maildir knows) sends the pass
    /// back to a full one, with the same outcome.
    @Test func serverOnlyChangesAreCarriedIncrementally() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...20).map { mail("i\($0)") })
        _ = try await a.sync()
        try await maildirSettles()
        _ = try await a.sync()   // notes the settled Maildir
        func pass() async throws -> FolderReport {
            let sync = try a.accountSync()
            return try #require(try await sync.run().folders.first { $0.folder == ["INBOX"] })
        }
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.deleteMessages(UIDSet([UID(2), UID(7)]))
        try await s.store(UIDSet([UID(3), UID(11)]), .add, [.flagged])
        try await s.store(UIDSet([UID(4)]), .add, [.seen, .answered])
        await s.logout()
        try await a.append("INBOX", [mail("i21"), mail("i22")], flags: [.seen])
        let server = try await pass()
        #expect(server.incremental)
        #expect(server.deleted == 2 && server.flagChanges == 3 && server.downloaded == 2, "\(server)")
        let local = a.localMessages("INBOX")
        #expect(local.count == 20)
        #expect(local.filter { $0.flags.contains(Maildir.MessageFlags.flagged) }.count == 2)
        #expect(local.filter { $0.flags == Maildir.MessageFlags("RS") }.count == 1)
        #expect(local.filter { $0.flags == Maildir.MessageFlags("S") }.count == 2)   // the two new ones

        // A letter only the Maildir knows (no IMAP meaning) on a message the server changes:
        // the file is not where its pair says, so the pass is a full one, with the same result.
        try await maildirSettles()
        _ = try await pass()   // notes the settled Maildir
        let folder = Maildir.MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let i5 = try #require(a.localMessages("INBOX").first { String(decoding: $0.body, as: UTF8.self).contains("of i5\n") })
        let target = try #require(try folder.scan().messages.first { $0.fileName == i5.name })
        _ = try folder.setFlags(target, to: Maildir.MessageFlags("a"))
        try await maildirSettles()
        _ = try await pass()   // the local change itself: a full pass, then settled
        try await maildirSettles()
        _ = try await pass()
        let control = try await a.session()   // another message: still incremental
        _ = try await control.select(.inbox)
        try await control.store(UIDSet([UID(6)]), .add, [.flagged])
        await control.logout()
        #expect(try await pass().incremental)
        try await maildirSettles()
        _ = try await pass()
        let s2 = try await a.session()
        _ = try await s2.select(.inbox)
        try await s2.store(UIDSet([UID(5)]), .add, [.flagged])
        await s2.logout()
        let fallback = try await pass()
        #expect(!fallback.incremental)
        #expect(fallback.flagChanges == 1)
        let flagged = try #require(try folder.scan().messages.first { $0.baseName == target.baseName })
        #expect(flagged.flags == Maildir.MessageFlags("Fa"))
    }
}

extension FastPathTests {
    /// Several folders with new messages on one session: while a folder's downloads are made
    /// durable, the next folder's SELECT flight is already out; each folder is selected once
    /// and everything arrives; the next pass finds nothing to do.
    @Test func nextFolderIsSelectedWhileDownloadsAreMadeDurable() async throws {
        let a = try SyncAccount(fixture, extra: "connections = 1")
        defer { a.dir.remove() }
        let folders = ["INBOX", "Archive", "Lists/swift"]
        for folder in folders { try await a.append(folder, [mail("\(folder)-old")]) }
        _ = try await a.sync()
        for folder in folders { try await a.append(folder, (1...3).map { mail("\(folder)-new\($0)") }) }

        var sync = try a.accountSync()
        let session = try await sync.connect(secret: a.user.password)
        sync.session = session
        let report = try await sync.run()
        let counts = await session.commandCounts
        #expect(counts["SELECT"] == 3, "\(counts)")
        let changed = report.folders.filter { $0.downloaded > 0 }
        #expect(changed.count == 3 && changed.allSatisfy { $0.downloaded == 3 && $0.error == nil }, "\(report.folders)")
        #expect(changed.filter(\.selectedAhead).count == 2, "all but the first folder")
        for folder in folders { #expect(a.localMessages(folder).count == 4, "\(folder)") }

        // Nothing left behind: the next pass downloads nothing; once the Maildir's markers are
        // noted (the pass after one that wrote locally, under load), a pass selects nothing.
        try await maildirSettles()
        let next = try await sync.run()
        #expect(next.folders.allSatisfy { $0.downloaded == 0 && $0.error == nil })
        let settled = await session.commandCounts["SELECT"] ?? 0
        _ = try await sync.run()
        let after = await session.commandCounts
        await session.logout()
        #expect(after["SELECT"] == settled, "a quiet pass selects nothing: \(after)")
    }
}
