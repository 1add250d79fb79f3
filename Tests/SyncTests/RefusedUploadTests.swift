import Testing
import IMAP
import Maildir
import TestSupport

@Suite struct RefusedUploadTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A server that refuses one local message (Dovecot's `quota_max_mail_size` for this user:
    /// `NO [LIMIT]`) takes the others of the same MULTIAPPEND; the refused one stays in the
    /// Maildir, is named in a warning and counted (exit 1), and the folder is not failed: a
    /// pass with nothing new does not send it again; one after a change there tries again.
    @Test func oneRefusedMessageDoesNotHoldBackTheOthers() async throws {
        let a = try SyncAccount(fixture, userFields: "userdb_mail_plugins=quota userdb_quota=count userdb_quota_vsizes=yes userdb_quota_max_mail_size=20k")
        defer { a.dir.remove() }
        for i in 1...3 { try a.deliverLocally("INBOX", mail("small\(i)")) }
        let big = try a.deliverLocally("INBOX", mail("big", lines: 2_000))   // ~40 KB
        let first = try await a.sync()
        #expect(first.status == 1, "a message not mirrored is a failure to report")
        #expect(first.standardOutput.contains("3 up") && first.standardOutput.contains("1 refused by the server, kept here"), "\(first.standardOutput)")
        #expect(!first.standardOutput.contains("failed"), "\(first.standardOutput)")
        #expect(first.standardError.contains("refused message") && first.standardError.contains("[LIMIT]"), "\(first.standardError)")
        #expect(try await a.serverMessages("INBOX").count == 3)
        #expect(a.localMessages("INBOX").count == 4)

        try await maildirSettles()
        let quiet = try await a.sync()
        #expect(!quiet.standardError.contains("refused"), "nothing changed: not sent again: \(quiet.standardError)")

        // A change in the folder: the pass looks at it again, and the server still refuses it.
        let store = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try #require(try store.scan().messages.first { $0.fileName != big && $0.flags == MessageFlags() })
        _ = try store.setFlags(file, to: MessageFlags("F"))
        try await maildirSettles()
        let again = try await a.sync()
        #expect(again.standardError.contains("refused message"), "\(again.standardError)")
        #expect(try await a.serverMessages("INBOX").values.filter { $0.flags.contains(.flagged) }.count == 1)
        #expect(try await a.serverMessages("INBOX").count == 3 && a.localMessages("INBOX").count == 4)
    }
}
