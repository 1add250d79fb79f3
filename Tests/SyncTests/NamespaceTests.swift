#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Support
import TestSupport

/// A server whose personal namespace is "INBOX." with the delimiter "." (Courier, some
/// older Dovecot set-ups): folder names on disk drop the prefix, the delimiter maps to the
/// layout's own, and folders created here get the prefix on the server.
@Suite struct NamespaceTests {
    @Test func courierNamespaceMapsBothWays() async throws {
        let server = try await DovecotFixture.start(compress: false, courier: true)
        defer { server.stop() }
        let a = try SyncAccount(server)
        defer { a.dir.remove() }
        try await a.append("INBOX.Team.Q1", [mail("q1")])
        try await a.append("INBOX", [mail("i1")])
        try a.deliverLocally("Archive/2024", mail("a1"))
        try a.deliverLocally("v1.2", mail("v1"))   // "." is the server's delimiter: cannot exist there

        // The folder whose name the server cannot hold is that folder's problem alone: the
        // pass completes, says so (exit status 1, as for any folder needing attention), and
        // `status` keeps saying it until the folder is renamed.
        let first = try await a.sync()
        #expect(first.status == 1, "\(first.standardError)")
        #expect(first.standardOutput.contains("work/v1.2: not mirrored: this server cannot hold the name: \".\" separates its folder levels; rename the local folder"), "\(first.standardOutput)")
        let status = try await runMailmirror(["status", "--config", a.config])
        #expect(status.standardOutput.contains("work (imap): synced, last sync"), "\(status.standardOutput)")
        #expect(status.standardOutput.contains("  v1.2: 1 local, not on the server, error: not mirrored: this server cannot hold the name"), "\(status.standardOutput)")
        let s = try await a.session()
        let names = try await s.list().filter { !$0.has("\\Noselect") }.map { String(decoding: $0.name.bytes, as: UTF8.self) }.sorted()
        await s.logout()
        #expect(names == ["INBOX", "INBOX.Archive.2024", "INBOX.Team.Q1"], "\(names)")
        #expect(ids(a.localMessages("Team/Q1").map(\.body)) == ["q1"])
        #expect(ids(a.localMessages("INBOX").map(\.body)) == ["i1"])
        #expect(ids(try await a.serverMessages("INBOX.Archive.2024").values.map(\.body)) == ["a1"])
        #expect(ids(a.localMessages("v1.2").map(\.body)) == ["v1"], "nothing local is touched")
        #expect(!FileSystemCheck.exists(a.maildir + "/INBOX/Team"), "the prefix is not a folder on disk")

        let again = try await a.sync()
        #expect(again.standardOutput.split(separator: "\n").filter { !$0.hasPrefix("work/v1.2: not mirrored") }
            == ["1 of 1 account(s) synced: 0 down, 0 deleted, 1 folder(s) with failures, held deletions, refused messages or names the server cannot hold"],
            "\(again.standardOutput)")

        // Renamed without the delimiter: uploaded, and no longer listed as a problem.
        #expect(rename(a.maildir + "/v1.2", a.maildir + "/v1_2") == 0)
        let renamed = try await a.sync()
        #expect(renamed.status == 0, "\(renamed.standardOutput)\(renamed.standardError)")
        #expect(ids(try await a.serverMessages("INBOX.v1_2").values.map(\.body)) == ["v1"])
        let after = try await runMailmirror(["status", "--config", a.config])
        #expect(!after.standardOutput.contains("not mirrored"), "\(after.standardOutput)")
    }

    /// `layout = "maildir++"`: INBOX is the Maildir itself, other folders are `.A.B`
    /// directories beside it (a "." inside a name is %2E), both ways, renames included.
    @Test func maildirPlusPlusLayoutBothWays() async throws {
        let fixture = try await DovecotFixture.shared()
        let a = try SyncAccount(fixture, layout: "maildir++")
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("i1")])
        try await a.append("Archive/2024", [mail("a1")])
        try await a.append("INBOX/child", [mail("c1")])
        try await a.append("v1.2", [mail("v1")])
        try a.deliverLocally("Local", mail("l1"))
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        let entries = (FileSystemCheck.entries(a.maildir) ?? []).sorted()
        #expect(entries == [".Archive.2024", ".INBOX.child", ".Local", ".v1%2E2", "cur", "new", "tmp"], "\(entries)")
        #expect(ids(a.localMessages("INBOX").map(\.body)) == ["i1"])
        #expect(ids(a.localMessages("v1.2").map(\.body)) == ["v1"])
        #expect(ids(try await a.serverMessages("Local").values.map(\.body)) == ["l1"])

        #expect(rename(a.maildir + "/.Local", a.maildir + "/.Local%2Eold") == 0)
        let second = try await a.sync()
        #expect(second.standardOutput.contains("work/Local.old: renamed on the server, as here (was Local)"), "\(second.standardOutput)")
        #expect(ids(try await a.serverMessages("Local.old").values.map(\.body)) == ["l1"])
        let third = try await a.sync()
        #expect(third.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(third.standardOutput)")
    }
}
