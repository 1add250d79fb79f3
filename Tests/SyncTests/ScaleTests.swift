import Testing
@testable import Sync
import IMAP
import Support
import TestSupport

/// What keeps memory flat as a folder grows (docs/scale.md): a listing read in pages as they
/// arrive, and `sync --stats`, which says what the process's memory was made of. The figures
/// themselves are `Benchmarks/scale`'s; these check the behaviour.
@Suite struct ScaleTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A listing in pages of 10 names every message once, in UID order, and the store's
    /// listing is the same whether the folder is read whole or in pages; the pages went out
    /// as sequence-number FETCHes (5 of them for 45 messages), then one UID FETCH for
    /// anything that arrived meanwhile.
    @Test func aListingInPagesIsTheWholeListing() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...45).map { mail("page\($0)") })
        let s = try await a.session()
        _ = try await s.select(.inbox)
        var seen: [UInt32] = []
        try await s.fetchAll(items: [.uid, .flags], pageSize: 10) { m in if let u = m.uid { seen.append(u.rawValue) } }
        #expect(seen.count == 45)
        #expect(seen == seen.sorted() && Set(seen).count == 45)
        #expect(await s.commandCounts["FETCH"] == 5)
        #expect(await s.commandCounts["UID FETCH"] == 1)

        let paged = IMAPFolderStore(session: s, mailbox: .inbox, spoolDirectory: a.dir.path)
        paged.listPage = 10
        let whole = IMAPFolderStore(session: s, mailbox: .inbox, spoolDirectory: a.dir.path)
        let inPages = try await paged.list(), atOnce = try await whole.list()
        #expect(inPages.count == 45 && atOnce.count == 45)
        for (key, message) in atOnce { #expect(inPages[key] == message) }
        await s.logout()
    }

    /// `sync --stats` ends with one line on standard error saying what memory was made of.
    @Test func statsSayWhatMemoryWasMadeOf() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...5).map { mail("stats\($0)") })
        let out = try await a.sync(["--stats"])
        #expect(out.status == 0, "\(out.standardError)")
        let line = try #require(out.standardError.split(separator: "\n").first { $0.hasPrefix("memory: ") })
        for part in ["peak", "binary", "libraries", "heap", "malloc in use at most"] {
            #expect(line.contains(part), "\(line)")
        }
        #expect(!out.standardOutput.contains("memory: "))   // stdout stays the sync's report
    }
}
