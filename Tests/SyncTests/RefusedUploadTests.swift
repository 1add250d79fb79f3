import Testing
import IMAP
import Maildir
import TestSupport

@Suite struct RefusedUploadTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A server that refuses one local message (Dovecot's `quota_max_mail_size` for this user:
    /// `NO [LIMIT]`) takes the others of the same MULTIAPPEND; the refused one stays in the
    /// Maildir, is named in a warning and counted (exit 1), and listed by `status`; the folder
    /// is not failed, and later passes — also after a change in the folder — do not send it
    /// again while the file stays the same; `sync --force` tries again.
    @Test func oneRefusedMessageDoesNotHoldBackTheOthers() async throws {
        try await refusedMessageScenario(on: fixture)
    }

    /// Without MULTIAPPEND each message is its own APPEND: those before the refused one are
    /// on the server already when it is refused; the retry finds them by what was sent and
    /// never sends them twice.
    @Test func withoutMultiappendNothingIsSentTwice() async throws {
        let basic = try await DovecotFixture.start(compress: false, basic: true)
        defer { basic.stop() }
        try await refusedMessageScenario(on: basic)
    }

    func refusedMessageScenario(on fixture: DovecotFixture) async throws {
        let a = try SyncAccount(fixture, userFields: "userdb_mail_plugins=quota userdb_quota=count userdb_quota_vsizes=yes userdb_quota_max_mail_size=20k")
        defer { a.dir.remove() }
        for i in 1...3 { try a.deliverLocally("INBOX", mail("small\(i)")) }
        let big = try a.deliverLocally("INBOX", mail("big", lines: 2_000))   // ~40 KB
        let first = try await a.sync()
        #expect(first.status == 1, "a message not mirrored is a failure to report")
        #expect(first.standardOutput.contains("3 up") && first.standardOutput.contains("1 refused by the server, kept here"), "\(first.standardOutput)")
        #expect(!first.standardOutput.contains("failed"), "\(first.standardOutput)")
        #expect(first.standardError.contains("refused message") && first.standardError.contains("[LIMIT]"), "\(first.standardError)")
        let uploaded = try await a.serverMessages("INBOX").values.map { lf($0.body) }.sorted { $0.lexicographicallyPrecedes($1) }
        let files = (1...3).map { lf(mail("small\($0)")) }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(uploaded == files, "the uploads sent one at a time after the refusal are byte for byte the files")
        #expect(a.localMessages("INBOX").count == 4)

        let status = try await runMailmirror(["status", "--config", a.config], timeout: 60)
        #expect(status.standardOutput.contains("1 refused by the server, kept here (" + String(big.split(separator: ":")[0])), "\(status.standardOutput)")
        let json = try await runMailmirror(["status", "--json", "--config", a.config], timeout: 60)
        #expect(json.standardOutput.contains("\"refused\":[{\"name\":"), "\(json.standardOutput)")

        try await maildirSettles()
        let quiet = try await a.sync()
        #expect(quiet.status == 0 && !quiet.standardError.contains("refused"), "not sent again: \(quiet.standardError)")

        // A change in the folder: its pass sends the flag, not the refused message again.
        let store = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let file = try #require(try store.scan().messages.first { $0.fileName != big })
        _ = try store.setFlags(file, to: MessageFlags("F"))
        try await maildirSettles()
        let changed = try await a.sync()
        #expect(changed.status == 0 && !changed.standardError.contains("refused"), "\(changed.standardError)")
        #expect(try await a.serverMessages("INBOX").values.filter { $0.flags.contains(.flagged) }.count == 1)

        // --force tries again; the server still refuses it.
        let forced = try await a.sync(["--force"])
        #expect(forced.status == 1 && forced.standardError.contains("refused message"), "\(forced.standardError)")
        #expect(try await a.serverMessages("INBOX").count == 3 && a.localMessages("INBOX").count == 4)
    }
}
