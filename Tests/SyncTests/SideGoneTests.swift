#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Support
import TestSupport

/// Invariant 1: nothing is done because a side looked empty or unreachable. A Maildir on a
/// disk that is not mounted must not be filled again behind the mount point (the mail
/// would be hidden, then the state's files missing when the disk is back), and a server
/// that lists no folders must not be filled again from the Maildir.
@Suite struct SideGoneTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    @Test func maildirThatLooksUnmountedIsLeftAloneUntilForced() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("u1")])
        try await a.append("Archive", [mail("u2")])
        _ = try await a.sync()
        // The disk is "unmounted": an empty directory where the Maildir was.
        #expect(rename(a.maildir, a.maildir + ".mounted") == 0 && mkdir(a.maildir, 0o700) == 0)
        let held = try await a.sync()
        #expect(held.status == 1)
        #expect(held.standardError.contains("has no folder at all, though mailmirror synced 2 there"), "\(held.standardError)")
        #expect(held.standardError.contains("mailmirror sync --force work"), "\(held.standardError)")
        #expect(FileSystemCheck.entries(a.maildir) == [], "nothing written behind the mount point")
        let status = try await runMailmirror(["status", "--config", a.config])
        #expect(status.standardOutput.contains("has no folder at all"), "\(status.standardOutput)")

        // Back: nothing to do. Removed on purpose: --force downloads it all again.
        #expect(rmdir(a.maildir) == 0 && rename(a.maildir + ".mounted", a.maildir) == 0)
        let back = try await a.sync()
        #expect(back.status == 0 && back.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(back.standardOutput)")
        #expect(try await runCommand(["rm", "-rf", a.maildir]).status == 0)
        let forced = try await a.sync(["--force"])
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(ids(a.localMessages("INBOX").map(\.body)) == ["u1"])
        #expect(ids(a.localMessages("Archive").map(\.body)) == ["u2"])
    }

    @Test func pop3DoesNotDeliverBehindAMountPoint() async throws {
        let user = try fixture.makeUser("popgone")
        try await fixture.fill(user: user, [pop3Message(1)])
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user)
        #expect(try await runMailmirror(["sync", "--config", config]).status == 0)
        try await fixture.fill(user: user, [pop3Message(2)])
        #expect(rename(dir.path + "/mail", dir.path + "/mail.mounted") == 0 && mkdir(dir.path + "/mail", 0o700) == 0)
        let held = try await runMailmirror(["sync", "--config", config])
        #expect(held.status == 1)
        #expect(held.standardError.contains("is missing, though messages were delivered there before"), "\(held.standardError)")
        #expect(try await fixture.serverCount(user: user) == 1, "the new message stays on the server")
        #expect(FileSystemCheck.entries(dir.path + "/mail") == [])
        let forced = try await runMailmirror(["sync", "--config", config, "--force"])
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(localMessages(dir.path + "/mail").count == 1)
        #expect(try await fixture.serverCount(user: user) == 0)
    }

    /// A server whose LIST shows no INBOX (broken, or a namespace misconfigured mid-way):
    /// the Maildir's folders must not be created and uploaded there again. Scripted: no real
    /// server lists no INBOX.
    @Test func serverListingNoInboxIsNotTrusted() async throws {
        let server = try ScriptedServer([
            .send(Array("* OK [CAPABILITY IMAP4rev1 NAMESPACE] scripted\r\n".utf8)),
            .readLine,                                     // M1 LOGIN
            .send(Array("M1 OK [CAPABILITY IMAP4rev1 NAMESPACE] in\r\n".utf8)),
            .readLine, .readLine,                          // NAMESPACE and LIST, pipelined
            .send(Array("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n* LIST () \"/\" Archive\r\nM2 OK done\r\nM3 OK done\r\n".utf8)),
            .readLine,                                     // LOGOUT
            .send(Array("* BYE bye\r\nM4 OK done\r\n".utf8)),
            .close,
        ])
        defer { server.stop() }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let maildir = dir.path + "/mail"
        for sub in ["", "/INBOX", "/INBOX/cur", "/INBOX/new", "/INBOX/tmp"] { #expect(mkdir(maildir + sub, 0o700) == 0) }
        writeFile(maildir + "/INBOX/new/1.local.host", "From: a@b\nSubject: s\nMessage-ID: <l@x>\n\nbody\n", mode: 0o600)
        let config = dir.path + "/config.toml"
        writeFile(config, """
            [general]
            state_dir = "\(dir.path)/state"
            [[account]]
            name = "odd"
            host = "127.0.0.1"
            port = \(server.port)
            tls = "none"
            allow_plaintext = true
            username = "u"
            password = "p"
            maildir = "\(maildir)"
            connections = 1
            """, mode: 0o600)
        let out = try await runMailmirror(["sync", "--config", config], timeout: 60)
        #expect(out.status == 1)
        #expect(out.standardError.contains("the server's folder list has no INBOX"), "\(out.standardError)")
    }
}
