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

        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardError.contains("v1.2 cannot exist on this server"), "\(first.standardError)")
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
        #expect(again.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(again.standardOutput)")
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
