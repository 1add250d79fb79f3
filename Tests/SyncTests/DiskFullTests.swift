#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import State
import Support
import TestSupport

/// The Maildir, or the state directory, on a small file system that fills up in the middle
/// of a pass: the pass stops with a clear error naming the path, nothing half-written is
/// visible, nothing is recorded that is not on disk, the counts printed are true, a POP3
/// drain deletes nothing it could not store; once there is room the next run completes with
/// nothing lost or doubled. The small file system is a tmpfs mounted by the test (root only:
/// without the right to mount the test fails and says so).
@Suite(.serialized) struct DiskFullTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A tmpfs of `size` mounted at `path` (created), unmounted by `unmount`.
    struct SmallDisk {
        let path: String
        init(at path: String, size: String) async throws {
            self.path = path
            mkdir(path, 0o755)
            let r = try await runCommand(["mount", "-t", "tmpfs", "-o", "size=\(size),mode=0755", "tmpfs", path])
            guard r.status == 0 else {
                throw FixtureError(message: "this test mounts a small tmpfs and needs root for it (mount said: \(r.standardError))")
            }
        }
        func remount(_ options: String) async throws {
            let r = try await runCommand(["mount", "-o", "remount,\(options)", path])
            guard r.status == 0 else { throw FixtureError(message: "remount \(options): \(r.standardError)") }
        }
        func unmount() { _ = try? runCommandBlocking(["umount", "-l", path]) }
    }

    func messages(_ tag: String, count: Int, kilobytes: Int) -> [[UInt8]] {
        (0..<count).map { i in
            var text = "Message-ID: <\(tag)\(i)@full.test>\r\nSubject: \(i)\r\n\r\n"
            let line = String(repeating: "\(i % 10)", count: 78) + "\r\n"
            for _ in 0..<(kilobytes * 1024 / 80) { text += line }
            return Array(text.utf8)
        }
    }

    /// Every file in new/ and cur/ is whole (the server's bytes), and the state pairs exactly
    /// those files; returns how many there are.
    func expectOnlyWholeFiles(_ a: SyncAccount, _ sent: [[UInt8]], _ context: String) throws -> Int {
        let byID = Dictionary(uniqueKeysWithValues: sent.map { (ids([$0])[0], lf($0)) })
        let local = a.localMessages("INBOX")
        for m in local {
            let whole = byID[ids([m.body])[0]] == m.body
            #expect(whole, "\(context): \(m.name) is not a whole message")
        }
        #expect(Set(local.map { ids([$0.body])[0] }).count == local.count, "\(context): no message twice")
        let state = try StateStore.open(directory: a.dir.path + "/state")
        let account = try state.account(named: "work", protocol: "imap")
        let folder = try state.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        let names = Set(local.map { MessageFileName(parsing: $0.name).baseName })
        let pairs = try state.pairs(in: folder.id)
        #expect(pairs.allSatisfy { $0.localName.map(names.contains) ?? false }, "\(context): a pair without its file")
        #expect(pairs.count == local.count, "\(context): \(pairs.count) pairs for \(local.count) files")
        return local.count
    }

    /// The number before " down" in the folder's summary line (0 without one; nil: no line).
    func downCount(_ output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("work/INBOX:") }) else { return nil }
        guard let range = line.firstRange(of: " down") else { return 0 }
        let digits = line[..<range.lowerBound].reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }

    @Test func maildirFillsUpMidDownload() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let disk = try await SmallDisk(at: a.maildir, size: "4m")
        defer { disk.unmount() }
        // Batches of 250 × ~12 KB on the disk: the first fits, the second does not.
        let sent = messages("d", count: 1000, kilobytes: 10)
        try await a.append("INBOX", sent)

        let full = try await a.sync()
        #expect(full.status == 1, "\(full.standardOutput)\(full.standardError)")
        let errorLines = full.standardError.split(separator: "\n").filter { $0.lowercased().contains("no space") }
        #expect(!errorLines.isEmpty && errorLines.allSatisfy { $0.contains(a.maildir) }, "one clear line naming the path: \(full.standardError)")
        let delivered = try expectOnlyWholeFiles(a, sent, "after the disk filled")
        #expect(delivered > 0 && delivered < 1000, "the disk filled in the middle (\(delivered))")
        #expect(downCount(full.standardOutput) == delivered, "the count printed is what was stored: \(full.standardOutput)")

        try await disk.remount("size=64m")
        let again = try await a.sync()
        #expect(again.status == 0, "\(again.standardOutput)\(again.standardError)")
        #expect(try expectOnlyWholeFiles(a, sent, "after room was made") == 1000)
        #expect(downCount(again.standardOutput) == 1000 - delivered, "\(again.standardOutput)")
    }

    @Test func readOnlyMaildirThenWritable() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let disk = try await SmallDisk(at: a.maildir, size: "16m")
        defer { disk.unmount() }
        let sent = messages("r", count: 20, kilobytes: 2)
        try await a.append("INBOX", sent)
        try await disk.remount("ro")
        let refused = try await a.sync()
        #expect(refused.status == 1, "\(refused.standardOutput)\(refused.standardError)")
        #expect(refused.standardError.contains(a.maildir) && refused.standardError.lowercased().contains("read-only"), "\(refused.standardError)")
        try await disk.remount("rw")
        let again = try await a.sync()
        #expect(again.status == 0, "\(again.standardOutput)\(again.standardError)")
        #expect(try expectOnlyWholeFiles(a, sent, "once writable") == 20)
    }

    @Test func stateDirectoryFillsUp() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let disk = try await SmallDisk(at: a.dir.path + "/state", size: "96k")
        defer { disk.unmount() }
        let sent = messages("s", count: 600, kilobytes: 1)
        try await a.append("INBOX", sent)
        let full = try await a.sync()
        #expect(full.status != 0, "\(full.standardOutput)\(full.standardError)")
        #expect(full.standardError.contains(a.dir.path + "/state"), "the error names the state file: \(full.standardError)")
        try await disk.remount("size=16m")
        let again = try await a.sync()
        #expect(again.status == 0, "\(again.standardOutput)\(again.standardError)")
        #expect(try expectOnlyWholeFiles(a, sent, "after room was made") == 600)
        #expect(try await a.serverMessages("INBOX").count == 600, "the server is untouched")
    }

    @Test func pop3DrainDeletesOnlyWhatItStored() async throws {
        let user = try fixture.makeUser("pop")
        let dir = TemporaryDirectory("mailmirror-pop-full")
        defer { dir.remove() }
        let maildir = dir.path + "/mail"
        let disk = try await SmallDisk(at: maildir, size: "3m")
        defer { disk.unmount() }
        let sent = messages("p", count: 600, kilobytes: 10)   // ~7 MB on the disk
        try await fixture.fill(user: user, sent)
        let config = fixture.pop3Config(in: dir.path, user: user)   // its maildir is dir/mail
        let full = try await runMailmirror(["sync", "--config", config], timeout: 300)
        #expect(full.status == 1, "\(full.standardOutput)\(full.standardError)")
        #expect(full.standardError.lowercased().contains("no space") && full.standardError.contains(maildir), "\(full.standardError)")
        let store = MaildirStore(root: maildir, layout: .fs).folder(["INBOX"])
        let here = Set(try store.scan().messages.map { ids([readBytes(store.filePath(of: $0)) ?? []])[0] })
        let left = try await fixture.serverCount(user: user)
        #expect(here.count + left >= 600, "nothing deleted on the server that is not here (\(here.count) here, \(left) left)")
        #expect(here.count > 0 && left > 0, "the disk filled in the middle")

        try await disk.remount("size=64m")
        let again = try await runMailmirror(["sync", "--config", config], timeout: 300)
        #expect(again.status == 0, "\(again.standardOutput)\(again.standardError)")
        let all = try store.scan().messages.map { ids([readBytes(store.filePath(of: $0)) ?? []])[0] }
        #expect(all.count == 600 && Set(all).count == 600, "each message delivered once")
        #expect(try await fixture.serverCount(user: user) == 0, "drained")
    }

    /// A local file mailmirror may not read (run as an unprivileged user: root reads any
    /// file): the others go up, that one is named and left, and goes once it is readable.
    @Test func unreadableFileIsLeftAndTheOthersGo() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        for i in 0..<5 { try a.deliverLocally("INBOX", mail("readable\(i)")) }
        let secret = try a.deliverLocally("INBOX", mail("secret"))
        let secretPath = a.maildir + "/INBOX/new/" + secret
        let nobody = "65534"
        #expect(try await runCommand(["chown", "-R", "\(nobody):\(nobody)", a.dir.path]).status == 0, "this test runs as root to hand the account to nobody")
        chmod(secretPath, 0)
        func syncAsNobody() async throws -> CommandOutput {
            try await runCommand(["setpriv", "--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", mailmirrorBinary, "sync", "--config", a.config], timeout: 120)
        }
        let first = try await syncAsNobody()
        #expect(first.status == 1, "\(first.standardOutput)\(first.standardError)")
        #expect(first.standardError.contains(secretPath) && first.standardError.contains("Permission denied"), "the file is named: \(first.standardError)")
        #expect(first.standardOutput.contains("work/INBOX: 5 up, 1 not readable here, not uploaded"), "\(first.standardOutput)")
        #expect(ids(try await a.serverMessages("INBOX").values.map(\.body)) == (0..<5).map { "readable\($0)" })
        chmod(secretPath, 0o600)
        let second = try await syncAsNobody()
        #expect(second.status == 0 && second.standardOutput.contains("work/INBOX: 1 up"), "\(second.standardOutput)\(second.standardError)")
        #expect(try await a.serverMessages("INBOX").count == 6)
    }
}
