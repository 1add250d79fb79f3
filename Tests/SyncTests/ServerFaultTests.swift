#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import State
import Support
import TestSupport

/// A real server that says no part-way through a pass (Dovecot with a storage quota): a
/// clear error, what went is recorded and counted, nothing is lost or sent twice, and the
/// rest of the account still syncs.
@Suite struct ServerFaultTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    @Test func overQuotaPartWayThroughUploads() async throws {
        let a = try SyncAccount(fixture, userFields: "userdb_mail_plugins=quota userdb_quota=count userdb_quota_vsizes=yes userdb_quota_rule=*:storage=60K")
        defer { a.dir.remove() }
        try await a.append("News", (0..<3).map { mail("news\($0)") })
        let filler = String(repeating: "quota filler line\r\n", count: 45)
        for i in 0..<100 { try a.deliverLocally("INBOX", Array("Message-ID: <q\(i)@quota.test>\r\nSubject: \(i)\r\n\r\n\(filler)".utf8)) }

        let first = try await a.sync()
        #expect(first.status == 1, "\(first.standardOutput)\(first.standardError)")
        #expect(first.standardError.contains("OVERQUOTA") || first.standardError.lowercased().contains("quota"), "\(first.standardError)")
        #expect(a.localMessages("News").count == 3, "the other folder still synced: \(first.standardOutput)")
        #expect(a.localMessages("INBOX").count == 100, "nothing local is lost")
        let stored = try await a.serverMessages("INBOX").count
        #expect(stored > 0 && stored < 100, "the quota stopped the uploads part-way (\(stored))")
        #expect(first.standardOutput.contains("work/INBOX: \(stored) up, then failed"), "the count is what went: \(first.standardOutput)")
        let state = try StateStore.open(directory: a.dir.path + "/state")
        let folder = try state.folder(of: try state.account(named: "work", protocol: "imap"), remoteName: Array("INBOX".utf8), localName: "INBOX")
        #expect(try state.pairs(in: folder.id).count == stored, "what went is paired")

        let again = try await a.sync()
        #expect(again.status == 1)
        #expect(try await a.serverMessages("INBOX").count == stored, "nothing sent twice: \(again.standardOutput)")
        #expect(ids(try await a.serverMessages("INBOX").values.map(\.body)).count == Set(ids(try await a.serverMessages("INBOX").values.map(\.body))).count)
    }
}
