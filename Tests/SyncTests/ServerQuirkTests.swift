#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// What Cyrus and Courier do differently from Dovecot, each on the server that does it
/// (docs/servers.md). The suite's core scenarios run on all three (IMAPSyncTests,
/// UIDValidityTests, ExactUploadTests); these are the differences themselves.
@Suite struct ServerQuirkTests {
    /// Courier normalizes line ends on APPEND (a bare CR dropped, an open last line ended):
    /// the upload is paired all the same, nothing is sent twice, and after the folder is
    /// recreated on the server (new UIDVALIDITY) the files are re-matched, not duplicated.
    @Test func courierNormalizedCopiesArePairedAndRematched() async throws {
        let fixture = try await TestServers.shared(.courier)
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let files = [
            Array("Message-ID: <open@q>\nSubject: open\n\nno newline at the end".utf8),
            Array("Message-ID: <cr@q>\nSubject: bare CR\n\nbefore\rafter\n".utf8),
            Array("From: x@q\nSubject: neither id nor newline\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n\nbody".utf8),
            Array("Message-ID: <plain@q>\nSubject: plain\n\nbody\n".utf8),
        ]
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let folder = try store.createFolder(["Work"])
        for f in files {
            let w = try folder.beginDelivery()
            try w.write(f)
            _ = try folder.deliver(w, flags: MessageFlags(""))
        }
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        #expect(try await a.serverMessages("Work").count == 4)
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")

        // The folder deleted and recreated on the server with its own copies.
        let copies = try await a.serverMessages("Work").values.map(\.body)
        let s = try await a.session()
        try await s.delete(a.serverFolder("Work"))
        await s.logout()
        try await a.append("Work", copies)
        let rematch = try await a.sync()
        #expect(rematch.status == 0, "\(rematch.standardError)")
        #expect(rematch.standardOutput.contains("work/Work: 4 re-matched after a UIDVALIDITY change"), "\(rematch.standardOutput)")
        #expect(try await a.serverMessages("Work").count == 4)
        #expect(a.localMessages("Work").count == 4)
        let local = Set(a.localMessages("Work").map(\.body))
        #expect(local == Set(files), "the local files are untouched")
    }

    /// Cyrus with its default `munge8bit: yes` turns each 8-bit byte of a header into "X" ("Grüße": 4 bytes, 4 X)
    /// on APPEND (the fixture turns it off elsewhere). What mailmirror does: the upload is
    /// paired (same size), nothing is sent twice, the local file stays as it was — and the
    /// server copy, which is what a second machine downloads, differs. docs/servers.md
    /// tells the administrator to set `munge8bit: no`.
    @Test func cyrusMunge8bitChangesTheServerCopyOnly() async throws {
        let server = try await PackagedServerFixture.start(.cyrus, options: "--munge8bit")
        defer { server.stop() }
        let a = try SyncAccount(server)
        defer { a.dir.remove() }
        let file = Array("Message-ID: <munge@q>\nSubject: Grüße\n\nbody ü\n".utf8)
        try a.deliverLocally("INBOX", file)
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        let stored = try await a.serverMessages("INBOX").values.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(stored == ["Message-ID: <munge@q>\r\nSubject: GrXXXXe\r\n\r\nbody ü\r\n"], "\(stored)")
        #expect(a.localMessages("INBOX").map(\.body) == [file], "the local file is untouched")
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "nothing sent twice: \(again.standardOutput)")
    }

    /// Cyrus makes the parent of a nested folder a real, selectable mailbox ("A/B" brings
    /// "A" into being): it is mirrored in the pass that created it, as an empty folder.
    @Test func cyrusParentsOfNewFoldersAreMirroredAtOnce() async throws {
        let a = try SyncAccount(try await TestServers.shared(.cyrus))
        defer { a.dir.remove() }
        try a.deliverLocally("Projects/New", mail("p1"))
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        #expect(first.standardOutput.contains("work/Projects: created locally"), "\(first.standardOutput)")
        #expect(MaildirStore(root: a.maildir, layout: .fs).listFolders().contains { $0.name == ["Projects"] && $0.isMaildir })
        let again = try await a.sync()
        #expect(!again.standardOutput.contains("work/"), "\(again.standardOutput)")
    }

    /// Courier's "." separator: a local folder named "v1.0" cannot exist there. It is that
    /// folder's own problem, said by the pass and by `status`; the others sync.
    @Test func courierCannotHoldADotInAName() async throws {
        let a = try SyncAccount(try await TestServers.shared(.courier))
        defer { a.dir.remove() }
        try a.deliverLocally("v1.0", mail("v1"))
        try a.deliverLocally("Other", mail("o1"))
        let out = try await a.sync()
        #expect(out.status == 1)
        #expect(out.standardOutput.contains("work/v1.0: not mirrored: this server cannot hold the name: \".\" separates its folder levels"), "\(out.standardOutput)")
        #expect(try await a.serverMessages("Other").count == 1)
        let status = try await runMailmirror(["status", "--config", a.config])
        #expect(status.standardOutput.contains("  v1.0: 1 local, not on the server, error: not mirrored"), "\(status.standardOutput)")
        let s = try await a.session()
        let names = try await s.list().map { String(decoding: $0.name.bytes, as: UTF8.self) }
        await s.logout()
        #expect(!names.contains { $0.hasPrefix("INBOX.v1") }, "\(names)")
    }
}
