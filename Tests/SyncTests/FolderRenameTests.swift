#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import Sync
import TestSupport

/// A folder renamed on one side is renamed on the other: not brought back under its old
/// name (it still held messages there) while the new one is copied over in full.
@Suite struct FolderRenameTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// The server's folder names (selectable ones).
    func serverFolders(_ a: SyncAccount) async throws -> [String] {
        let s = try await a.session()
        defer { Task { await s.logout() } }
        return try await s.list().filter { !$0.has("\\Noselect") }.map { String(decoding: $0.name.bytes, as: UTF8.self) }.sorted()
    }

    @Test func renamedOnTheServerIsRenamedHere() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Projects", [mail("p1"), mail("p2")], flags: [.seen])
        _ = try await a.sync()
        _ = try await a.sync()
        let before = a.localMessages("Projects").map(\.name).sorted()
        #expect(before.count == 2)

        let s = try await a.session()
        try await s.rename(MailboxName("Projects"), to: MailboxName("Archive/Projects 2026"))
        await s.logout()
        let dry = try await a.sync(["--dry-run"])
        #expect(dry.standardOutput.contains("work/Archive/Projects 2026: would be renamed locally, as on the server (was Projects)"), "\(dry.standardOutput)")
        #expect(a.localMessages("Projects").count == 2, "a dry run renames nothing")

        let (report, _) = try await a.countedPass()
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(report.folders)")
        #expect(report.folders.contains { $0.created == "renamed locally, as on the server (was Projects)" }, "\(report.folders)")
        #expect(a.localMessages("Archive/Projects 2026").map(\.name).sorted() == before, "the files kept their names")
        #expect(!FileSystemCheck.exists(a.maildir + "/Projects"))
        #expect(try await serverFolders(a) == ["Archive/Projects 2026", "INBOX"])

        let (again, commands) = try await a.countedPass()
        #expect(again.folders.allSatisfy { $0.summary == nil }, "\(again.folders)")
        #expect(commands["SELECT"] == nil && commands["FETCH"] == nil, "settled: \(commands)")
    }

    @Test func renamedHereIsRenamedOnTheServer() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Drafts", [mail("d1"), mail("d2"), mail("d3")])
        _ = try await a.sync()
        _ = try await a.sync()
        let uidsBefore = Set(try await a.serverMessages("Drafts").keys)

        #expect(mkdir(a.maildir + "/Old", 0o700) == 0)
        #expect(rename(a.maildir + "/Drafts", a.maildir + "/Old/Drafts 2025") == 0)   // what `mv` does
        let (report, commands) = try await a.countedPass()
        #expect(commands["RENAME"] == 1 && commands["APPEND"] == nil && commands["FETCH"] == nil, "\(commands)")
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(report.folders)")
        #expect(try await serverFolders(a) == ["INBOX", "Old/Drafts 2025"])
        #expect(Set(try await a.serverMessages("Old/Drafts 2025").keys) == uidsBefore, "the same messages, not copies")
        #expect(a.localMessages("Old/Drafts 2025").count == 3)
        #expect(!FileSystemCheck.exists(a.maildir + "/Drafts"))

        let next = try await a.sync()
        #expect(next.status == 0 && next.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(next.standardOutput)")
    }

    /// Two folders renamed at once on the server, with UIDVALIDITYs that tell them apart; and
    /// a folder deleted on the server that matches no new name keeps the old rule.
    @Test func severalRenamesAndADeletion() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("One", [mail("o1")])
        try await a.append("Two", [mail("t1")])
        try await a.append("Gone", [mail("g1")])
        _ = try await a.sync()
        let s = try await a.session()
        try await s.rename(MailboxName("One"), to: MailboxName("Uno"))
        try await s.rename(MailboxName("Two"), to: MailboxName("Dos"))
        try await s.delete(MailboxName("Gone"))
        await s.logout()
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardError)")
        #expect(ids(a.localMessages("Uno").map(\.body)) == ["o1"])
        #expect(ids(a.localMessages("Dos").map(\.body)) == ["t1"])
        #expect(out.standardError.contains("Gone was deleted on the server but holds messages locally"), "\(out.standardError)")
        #expect(try await serverFolders(a) == ["Dos", "Gone", "INBOX", "Uno"])
        #expect(ids(try await a.serverMessages("Gone").values.map(\.body)) == ["g1"])
    }

    /// A folder with messages and sub-folders renamed on the server (they go with it), then
    /// back again here with `mv` — in both layouts: nothing is copied, nothing comes back.
    @Test(arguments: ["fs", "maildir++"])
    func folderWithSubFoldersRenamedBothWays(layout: String) async throws {
        let a = try SyncAccount(fixture, layout: layout)
        defer { a.dir.remove() }
        try await a.append("Work", [mail("w1")])
        try await a.append("Work/Clients", [mail("c1"), mail("c2")])
        try await a.append("Work/Clients/Acme", [mail("x1")])
        _ = try await a.sync()
        _ = try await a.sync()

        let s = try await a.session()
        try await s.rename(MailboxName("Work"), to: MailboxName("Job"))
        await s.logout()
        let (report, _) = try await a.countedPass()
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(report.folders)")
        #expect(report.folders.contains { $0.folder == ["Job"] && $0.created == "renamed locally, as on the server (was Work)" }, "\(report.folders)")
        #expect(ids(a.localMessages("Job").map(\.body)) == ["w1"])
        #expect(ids(a.localMessages("Job/Clients").map(\.body)) == ["c1", "c2"])
        #expect(ids(a.localMessages("Job/Clients/Acme").map(\.body)) == ["x1"])
        #expect(a.localMessages("Work").isEmpty && a.localMessages("Work/Clients").isEmpty)
        #expect(try await serverFolders(a) == ["INBOX", "Job", "Job/Clients", "Job/Clients/Acme"])

        // Back again, here: `mv` of the folder's directories, as the layout keeps them.
        let store = MaildirStore(root: a.maildir, layout: a.layout)
        for (from, to) in [(["Job"], ["Work"]), (["Job", "Clients"], ["Work", "Clients"]), (["Job", "Clients", "Acme"], ["Work", "Clients", "Acme"])]
            where layout == "maildir++" || from.count == 1 {
            #expect(rename(store.folder(from).path, store.folder(to).path) == 0)
        }
        let (back, commands) = try await a.countedPass()
        #expect(commands["RENAME"] == 1 && commands["APPEND"] == nil, "\(commands)")
        #expect(back.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(back.folders)")
        #expect(try await serverFolders(a) == ["INBOX", "Work", "Work/Clients", "Work/Clients/Acme"])
        #expect(ids(try await a.serverMessages("Work/Clients").values.map(\.body)) == ["c1", "c2"])
        let last = try await a.sync()
        #expect(last.status == 0 && last.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(last.standardOutput)")
    }

    /// A folder deleted in both places is forgotten: `status` no longer lists it.
    @Test func folderDeletedOnBothSidesIsForgotten() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("Old", [mail("o1")])
        _ = try await a.sync()
        let s = try await a.session()
        try await s.delete(MailboxName("Old"))
        await s.logout()
        #expect(try await runCommand(["rm", "-rf", a.maildir + "/Old"]).status == 0)
        let out = try await a.sync()
        #expect(out.status == 0, "\(out.standardError)")
        let status = try await runMailmirror(["status", "--config", a.config, "--json"])
        #expect(status.standardOutput.contains("\"name\":\"INBOX\"") && !status.standardOutput.contains("Old"), "\(status.standardOutput)")
    }
}
