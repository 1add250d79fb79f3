#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Support
import TestSupport

/// An account whose username (or host) is changed to reach another mailbox keeps its name,
/// and so its state: the UIDs and UIDLs remembered for the old mailbox must not be taken
/// for the new one's.
@Suite struct MailboxChangeTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// Points `account`'s config at `other`'s server user.
    func repoint(_ account: SyncAccount, to other: SyncAccount, extra: String) throws {
        account.writeConfig(extra: extra)
        let text = String(decoding: readBytes(account.config) ?? [], as: UTF8.self)
            .replacing("username = \"\(account.user.name)\"", with: "username = \"\(other.user.name)\"")
            .replacing("echo \(account.user.password)", with: "echo \(other.user.password)")
        writeFile(account.config, text, mode: 0o600)
    }

    /// The worst case: the new mailbox's folder has the UIDVALIDITY of the old one (Dovecot
    /// counts them up per user from the time of its first folder, so two users' folders can
    /// share one), so its UIDs look valid. Trusted, they paired the new messages with the old files (never
    /// downloaded) and took a UID the new folder lacks for a server deletion (a local file
    /// deleted). Re-matched, nothing is lost and both sets end up on both sides.
    @Test func accountPointedAtAnotherMailboxIsRematchedNotTrusted() async throws {
        let a = try SyncAccount(fixture)
        let b = try SyncAccount(fixture)
        defer { a.dir.remove(); b.dir.remove() }
        let sa = try await a.session(), sb = try await b.session()
        var box: String?
        for attempt in 0..<6 where box == nil {
            let name = MailboxName("Box\(attempt)")
            async let madeA: Void = sa.create(name)
            async let madeB: Void = sb.create(name)
            _ = try await (madeA, madeB)
            async let va = sa.status(name, items: [.uidValidity]).uidValidity
            async let vb = sb.status(name, items: [.uidValidity]).uidValidity
            let (a1, b1) = try await (va, vb)
            guard let x = a1?.rawValue, let y = b1?.rawValue else { break }
            if x == y { box = "Box\(attempt)"; break }
            // Dovecot counts a user's UIDVALIDITYs up from the time of its first folder: the
            // user behind makes as many folders as it is behind, then both make one more.
            let (behind, gap) = x < y ? (sa, y - x) : (sb, x - y)
            guard gap <= 60 else { break }
            for filler in 0..<gap {
                let f = MailboxName("Filler\(attempt)-\(filler)")
                try await behind.create(f)
                _ = try await behind.status(f, items: [.uidValidity])
            }
        }
        await sa.logout()
        await sb.logout()
        let folder = try #require(box, "two folders with one UIDVALIDITY could not be made in 6 tries")
        try await a.append(folder, [mail("a1"), mail("a2"), mail("a3")])
        try await b.append(folder, [mail("b1"), mail("b2")])
        let only = "folders = [\"\(folder)\"]"
        a.writeConfig(extra: only)
        _ = try await a.sync()
        _ = try await a.sync()
        #expect(ids(a.localMessages(folder).map(\.body)) == ["a1", "a2", "a3"])

        try repoint(a, to: b, extra: only)
        let result = try await a.sync()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("now names another mailbox"), "\(result.standardError)")
        #expect(result.standardError.contains("re-matched for the account's new mailbox"), "\(result.standardError)")
        let all = ["a1", "a2", "a3", "b1", "b2"]
        #expect(ids(a.localMessages(folder).map(\.body)) == all)
        #expect(ids(try await b.serverMessages(folder).values.map(\.body)) == all)
        // Settled: the next pass has nothing to do, and the old mailbox was not touched.
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains(folder + ":"), "\(again.standardOutput)")
        #expect(!again.standardError.contains("another mailbox"), "\(again.standardError)")
        #expect(ids(try await a.serverMessages(folder).values.map(\.body)) == ["a1", "a2", "a3"])
    }

    /// POP3 cannot re-match: remembered UIDLs mean "delivered", and a drain deletes those from
    /// the server without downloading them (here the two mailboxes' UIDLs even coincide:
    /// Dovecot makes them of the UID and the UIDVALIDITY). A pass on another mailbox stops
    /// and says what to do; `--force` (the same mailbox under a new name) carries them over.
    @Test func pop3AccountPointedAtAnotherMailboxStopsUntilForced() async throws {
        let first = try fixture.makeUser("popold"), second = try fixture.makeUser("popnew")
        try await fixture.fill(user: first, [pop3Message(1), pop3Message(2)])
        try await fixture.fill(user: second, [pop3Message(3)])
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let mail = dir.path + "/mail"
        let config = fixture.pop3Config(in: dir.path, user: first, extra: "keep_on_server = true")
        let drained = try await runMailmirror(["sync", "--config", config])
        #expect(drained.status == 0, "\(drained.standardError)")
        #expect(localMessages(mail).count == 2)

        // Another mailbox under the same account name: stopped, nothing skipped or deleted.
        _ = fixture.pop3Config(in: dir.path, user: second, extra: "keep_on_server = true")
        let stopped = try await runMailmirror(["sync", "--config", config])
        #expect(stopped.status == 1)
        #expect(stopped.standardError.contains("now names another mailbox (pop3://\(first.name)@127.0.0.1 → pop3://\(second.name)@127.0.0.1)"), "\(stopped.standardError)")
        #expect(stopped.standardError.contains("mailmirror sync --force isp"), "\(stopped.standardError)")
        #expect(localMessages(mail).count == 2)
        #expect(try await fixture.serverCount(user: second) == 1)
        let status = try await runMailmirror(["status", "--config", config])
        #expect(status.standardOutput.contains("another mailbox"), "\(status.standardOutput)")
        // What the message advises for another mailbox: a new name, a state of its own.
        let renamed = String(decoding: readBytes(config) ?? [], as: UTF8.self).replacing("name = \"isp\"", with: "name = \"isp2\"")
        writeFile(config, renamed, mode: 0o600)
        let own = try await runMailmirror(["sync", "--config", config])
        #expect(own.status == 0, "\(own.standardError)")
        #expect(localMessages(mail).count == 3)

        // The first mailbox under a new host name: `--force` says it is the same, and what was
        // delivered from it is not delivered again.
        let sameMailbox = String(decoding: readBytes(fixture.pop3Config(in: dir.path, user: first, extra: "keep_on_server = true")) ?? [],
                                 as: UTF8.self).replacing("host = \"127.0.0.1\"", with: "host = \"localhost\"")
        writeFile(config, sameMailbox, mode: 0o600)
        let held = try await runMailmirror(["sync", "--config", config])
        #expect(held.status == 1 && held.standardError.contains("pop3://\(first.name)@localhost"), "\(held.standardError)")
        let forced = try await runMailmirror(["sync", "--config", config, "--force"])
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(forced.standardError.contains("carry over"), "\(forced.standardError)")
        let after = try await runMailmirror(["sync", "--config", config])
        #expect(after.status == 0, "\(after.standardError)")
        #expect(localMessages(mail).count == 3, "no message delivered twice")
    }
}
