#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
@testable import State
import Support
import TestSupport

/// Uploads reach the server byte for byte (DESIGN invariant 5), and an upload whose APPEND
/// reply was lost is found again by what was sent — never a mark in the message, never a
/// second copy (invariant 2). The lost replies come from a `FaultProxy` in front of the
/// fixture's plain IMAP port: it lets the APPEND through and drops its tagged reply, and
/// the test then kills mailmirror (SIGKILL) and runs it again.
@Suite(.serialized) struct ExactUploadTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// Writes `bytes` as they are (LF form, no conversion) into a local folder.
    @discardableResult
    func deliverExactly(_ a: SyncAccount, _ folder: String, _ bytes: [UInt8], flags: String = "") throws -> String {
        let f = try MaildirStore(root: a.maildir, layout: a.layout).createFolder([folder])
        let w = try f.beginDelivery()
        try w.write(bytes)
        return try f.deliver(w, flags: MessageFlags(flags)).baseName
    }

    func sortedBytes(_ messages: [[UInt8]]) -> [[UInt8]] {
        messages.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// What `server` stores of a local file (LF form): the file itself, except that Courier
    /// normalizes line ends — drops every CR not followed by LF and ends an open last line
    /// — and nothing else (docs/servers.md).
    func storedForm(_ file: [UInt8], on server: ServerKind) -> [UInt8] {
        guard server == .courier else { return file }
        var out: [UInt8] = []
        for (i, b) in file.enumerated() where !(b == 13 && (i + 1 == file.count || file[i + 1] != 10)) { out.append(b) }
        if out.last != 10 { out.append(10) }
        return out
    }

    func lfForm(_ wire: [UInt8]) -> [UInt8] {
        var c = CRLFToLFConverter()
        return c.convert(wire) + c.finish()
    }

    /// Every server message of INBOX is paired in the state with the local file of the same
    /// bytes, each exactly once; the server holds exactly `expected` (as a multiset).
    func expectExactMirror(_ a: SyncAccount, _ files: [[UInt8]], _ context: String,
                           sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let expected = files.map { storedForm($0, on: a.fixture.kind) }
        let server = try await a.serverMessages("INBOX")
        let serverBodies = server.values.map { lfForm($0.body) }
        #expect(server.count == expected.count, "\(context): \(server.count) server messages, \(expected.count) expected", sourceLocation: sourceLocation)
        let same = sortedBytes(serverBodies) == sortedBytes(expected)   // a Bool: the arrays would flood the log
        #expect(same,
                "\(context): the server holds exactly the local files' bytes", sourceLocation: sourceLocation)
        let local = a.localMessages("INBOX")
        #expect(local.count == expected.count, "\(context): \(local.count) local files", sourceLocation: sourceLocation)
        let byName = Dictionary(local.map { (MessageFileName(parsing: $0.name).baseName, $0.body) }, uniquingKeysWith: { x, _ in x })
        let state = try StateStore.open(directory: a.dir.path + "/state")
        let account = try state.account(named: "work", protocol: "imap")
        let folder = try state.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        let pairs = try state.pairs(in: folder.id)
        #expect(pairs.count == expected.count, "\(context): \(pairs.count) pairs", sourceLocation: sourceLocation)
        #expect(Set(pairs.compactMap(\.uid)).count == pairs.count && Set(pairs.compactMap(\.localName)).count == pairs.count,
                "\(context): one to one", sourceLocation: sourceLocation)
        for p in pairs {
            guard let uid = p.uid, let name = p.localName, let remote = server[uid.rawValue], let file = byName[name] else {
                Issue.record("\(context): a pair without both sides: \(p)", sourceLocation: sourceLocation)
                continue
            }
            let equal = lfForm(remote.body) == storedForm(file, on: a.fixture.kind)
            #expect(equal, "\(context): UID \(uid) is paired with \(name), another message", sourceLocation: sourceLocation)
        }
        #expect(try await pendingJournal(a) == 0, "\(context): journal resolved", sourceLocation: sourceLocation)
    }

    func pendingJournal(_ a: SyncAccount) async throws -> Int {
        let state = try StateStore.open(directory: a.dir.path + "/state")
        return try state.pendingJournalEntries(of: state.account(named: "work", protocol: "imap")).count
    }

    // MARK: - Byte identity

    /// Awkward files go up as they are: no Message-ID, no final newline, 8-bit and encoded
    /// headers, a long folded header, X- headers of their own (one named like the old token),
    /// an empty body, a lone CR, a 20 MB attachment. The server's BODY[] is each file after
    /// CRLF → LF, and a second machine that downloads them writes the same files.
    @Test(arguments: ServerKind.allCases)
    func awkwardFilesReachTheServerByteForByte(server: ServerKind) async throws {
        let a = try SyncAccount(try await TestServers.shared(server))
        defer { a.dir.remove() }
        var files: [[UInt8]] = []
        files.append(Array("From: a@example.com\nSubject: no id\n\nbody without a Message-ID\n".utf8))
        files.append(Array("Message-ID: <nofinal@x>\nSubject: s\n\nthe last line has no newline".utf8))
        files.append(Array("Message-ID: <8bit@x>\nSubject: Grüße aus Köln — 東京\nFrom: =?UTF-8?B?SsO8cmdlbg==?= <j@x>\n\nÄÖÜ body\n".utf8))
        let folded = (0..<40).map { "word\($0)-" + String(repeating: "x", count: 40) }.joined(separator: "\n\t")
        files.append(Array("Message-ID: <long@x>\nX-Long: \(folded)\nSubject: s\n\nbody\n".utf8))
        files.append(Array("X-TUID: abcdefgh\nX-Mailmirror-Token: 0123456789abcdef01234567\nX-Spam: yes\nMessage-ID: <xhdr@x>\n\nbody\n".utf8))
        files.append(Array("Message-ID: <empty@x>\nSubject: empty body\n\n".utf8))
        files.append(Array("Message-ID: <cr@x>\nSubject: lone CR\n\nbefore\rafter\n".utf8))
        var big = Array("Message-ID: <big@x>\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n".utf8)
        var rng = SeededGenerator(seed: 16)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        big.reserveCapacity(21 << 20)
        while big.count < 20 << 20 {
            for _ in 0..<76 { big.append(alphabet[Int(rng.next() % 64)]) }
            big.append(10)
        }
        big += Array("--b--\n".utf8)
        files.append(big)
        for f in files { try deliverExactly(a, "INBOX", f) }
        // A folder new here is created on the server, then filled: same bytes.
        let inNewFolder = Array("Message-ID: <newfolder@x>\nSubject: in a folder made by this pass\n\nbody".utf8)
        try deliverExactly(a, "Projects", inNewFolder)

        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        try await expectExactMirror(a, files, "upload")
        #expect(try await a.serverMessages("Projects").values.map { lfForm($0.body) } == [storedForm(inNewFolder, on: server)])

        // A second machine downloads them: its files are the same bytes.
        let other = TemporaryDirectory("mailmirror-second")
        defer { other.remove() }
        let text = readFile(a.config)!.replacing(a.dir.path, with: other.path)
        writeFile(other.path + "/config.toml", text, mode: 0o600)
        let second = try await runMailmirror(["sync", "--config", other.path + "/config.toml"], timeout: 300)
        #expect(second.status == 0, "\(second.standardOutput)\(second.standardError)")
        let store = MaildirStore(root: other.path + "/mail", layout: .fs)
        let downloaded = try store.folder(["INBOX"]).scan().messages.map { readBytes(store.folder(["INBOX"]).filePath(of: $0)) ?? [] }
        let identical = sortedBytes(downloaded) == sortedBytes(files.map { storedForm($0, on: server) })
        #expect(identical, "identical files on both machines (as the server stores them)")
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")
    }

    // MARK: - Lost APPEND replies

    /// 100 messages (every 10th without a Message-ID, sizes varied).
    func hundredMessages(_ trial: Int) -> [[UInt8]] {
        (0..<100).map { i in
            var text = i % 10 == 3 ? "" : "Message-ID: <t\(trial)-m\(i)@lost.test>\n"
            text += "From: a@example.com\nSubject: message \(i)\n\n"
            for line in 0..<(i % 7 + 1) { text += "line \(line) of \(i) in trial \(trial)\n" }
            return Array(text.utf8)
        }
    }

    /// One trial: the `k`-th APPEND's reply is lost, mailmirror is killed while it waits,
    /// and a rerun must leave each message exactly once on the server, byte for byte, paired.
    func lostReplyTrial(_ server: any MailTestServer, _ bodies: [[UInt8]], dropAt k: Int, _ context: String) async throws {
        let proxy = try FaultProxy(targetPort: server.imapPort)
        defer { proxy.stop() }
        let a = try SyncAccount(server, plainPort: proxy.port)
        defer { a.dir.remove() }
        for b in bodies { try deliverExactly(a, "INBOX", b) }
        proxy.dropReply(to: "APPEND", occurrence: k)
        let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", a.config], outputPath: a.dir.path + "/log")
        let deadline = monotonicSeconds() + 60
        while proxy.droppedReplies == 0 && !process.hasExited && monotonicSeconds() < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        let exitedEarly = process.hasExited
        process.kill(SIGKILL)
        process.wait()
        #expect(proxy.droppedReplies == 1 && !exitedEarly, "\(context): the reply to APPEND #\(k) was dropped while mailmirror waited (\(proxy.commandCount("APPEND")) APPENDs seen)")
        #expect(try await pendingJournal(a) > 0, "\(context): killed with the upload journaled")
        let rerun = try await a.sync()
        #expect(rerun.status == 0, "\(context): \(rerun.standardOutput)\(rerun.standardError)")
        try await expectExactMirror(a, bodies, context)
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "\(context): converged: \(again.standardOutput)")
    }

    /// Without MULTIAPPEND each message is its own APPEND: the reply lost at 20 seeded
    /// message indices of a 100-message batch (the first and last among them).
    @Test func lostReplyAtEveryIndexOfABatch() async throws {
        let basic = try await DovecotFixture.start(compress: false, basic: true)
        defer { basic.stop() }
        var rng = SeededGenerator(seed: 1616)
        var points: Set<Int> = [1, 100]
        while points.count < 20 { points.insert(1 + Int(rng.next() % 100)) }
        for (trial, k) in points.sorted().enumerated() {
            try await lostReplyTrial(basic, hundredMessages(trial), dropAt: k, "trial \(trial), reply of APPEND #\(k) lost")
        }
    }

    /// On Cyrus (MULTIAPPEND) and Courier (one APPEND per message, and a final CRLF added
    /// to a message that lacks one): the reply lost at the first, a middle and the last
    /// message, among them one whose last line is open.
    @Test(arguments: [ServerKind.cyrus, .courier])
    func lostReplyOnOtherServers(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        for (trial, k) in [1, 37, 100].enumerated() {
            var bodies = hundredMessages(500 + trial)
            // Courier stores these two normalized (docs/servers.md): found by that form.
            bodies[k - 1] = trial == 1 ? Array("Message-ID: <cr-\(trial)@lost.test>\nSubject: bare CR\n\nbefore\rafter\n".utf8)
                : Array("Message-ID: <open-\(trial)@lost.test>\nSubject: open\n\nthe last line has no newline".utf8)
            try await lostReplyTrial(fixture, bodies, dropAt: server == .cyrus ? (k == 1 ? 1 : 2) : k,
                                     "\(server) trial \(trial), reply of APPEND #\(k) lost")
        }
    }

    /// With MULTIAPPEND a batch goes as APPENDs of 50: either reply lost, both halves settle.
    @Test func lostMultiappendReply() async throws {
        for k in [1, 2] {
            try await lostReplyTrial(fixture, hundredMessages(100 + k), dropAt: k, "MULTIAPPEND, reply of APPEND #\(k) lost")
        }
    }

    /// Without UIDPLUS (no APPENDUID) the new UIDs are found by the same identity search,
    /// on a plain pass and after a lost reply.
    @Test func withoutUIDPlus() async throws {
        let server = try await DovecotFixture.start(compress: false, noUIDPlus: true)
        defer { server.stop() }
        let a = try SyncAccount(server)
        defer { a.dir.remove() }
        var bodies = hundredMessages(200).prefix(30).map { $0 }
        bodies.append(bodies[5])   // two byte-identical files
        bodies.append(bodies[3])   // and two identical ones without a Message-ID
        for b in bodies { try deliverExactly(a, "INBOX", b) }
        let first = try await a.sync()
        #expect(first.status == 0, "\(first.standardOutput)\(first.standardError)")
        try await expectExactMirror(a, bodies, "no UIDPLUS, plain pass")
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")

        var rng = SeededGenerator(seed: 4315)
        for trial in 0..<4 {
            let k = 1 + Int(rng.next() % 100)
            try await lostReplyTrial(server, hundredMessages(300 + trial), dropAt: k, "no UIDPLUS, reply of APPEND #\(k) lost")
        }
    }

    /// Two byte-identical local files in one folder, the batch killed at each APPEND: two
    /// server copies after the rerun, not one and not three.
    @Test func identicalFilesKilledMidBatch() async throws {
        let basic = try await DovecotFixture.start(compress: false, basic: true)
        defer { basic.stop() }
        for k in 1...10 {
            var bodies = (0..<8).map { Array("Message-ID: <twin\(k)-\($0)@x>\nSubject: s\n\nbody \($0)\n".utf8) }
            let twin = Array("Message-ID: <twin\(k)@x>\nSubject: the same twice\n\nsame bytes\n".utf8)
            bodies.insert(twin, at: 2)
            bodies.insert(twin, at: 7)
            try await lostReplyTrial(basic, bodies, dropAt: k, "twins, reply of APPEND #\(k) lost")
        }
        var bodies = (0..<8).map { Array("Subject: s\n\nno id \($0)\n".utf8) }
        bodies += [Array("Subject: twin\n\nno id, twice\n".utf8), Array("Subject: twin\n\nno id, twice\n".utf8)]
        try await lostReplyTrial(fixture, bodies, dropAt: 1, "twins without Message-ID, MULTIAPPEND reply lost")
    }

    // MARK: - Earlier versions

    /// A state (schema 6) and a server mailbox left by a version that marked uploads with an
    /// `X-Mailmirror-Token:` header, killed after an APPEND that reached the server: the
    /// next pass pairs that copy by its token, uploads only the new file, duplicates nothing;
    /// with the state lost, the marked copies are still paired with their files.
    @Test func stateAndMailboxOfAnEarlierVersionSyncOn() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let bodies = ["a", "b", "c"].map { Array("Message-ID: <old-\($0)@x>\nSubject: \($0)\n\nbody \($0)\n".utf8) }
        let names = try bodies.map { try deliverExactly(a, "INBOX", $0) }
        func marked(_ body: [UInt8], _ token: String) -> [UInt8] {
            var c = LFToCRLFConverter()
            return Array("X-Mailmirror-Token: \(token)\r\n".utf8) + c.convert(body[...])
        }
        try await a.append("INBOX", [marked(bodies[0], "aaaa0000aaaa0000aaaa0000"), marked(bodies[1], "bbbb1111bbbb1111bbbb1111")])
        let s = try await a.session()
        let selected = try await s.select(.inbox)
        await s.logout()
        do {
            let state = try StateStore.open(directory: a.dir.path + "/state")
            let account = try state.account(named: "work", protocol: "imap")
            var folder = try state.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
            folder.uidValidity = selected.uidValidity
            folder.uidNext = UID(2)
            try state.updateFolder(folder)
            _ = try state.insertPairs([MessagePair(folder: folder.id, uid: UID(1), localName: names[0], flags: "")])
            try state.addJournalEntry(JournalEntry(account: account, folder: folder.id, kind: .upload, localName: names[1],
                                                   token: "bbbb1111bbbb1111bbbb1111", uidNextBefore: UID(2), flags: "", created: 1))
            try state.db.execute("""
                DROP TABLE unmirrorable; DROP TABLE keywords; ALTER TABLE folders DROP COLUMN unstorable_keywords; ALTER TABLE accounts DROP COLUMN notmuch_revision;
                ALTER TABLE journal DROP COLUMN normalized_size; ALTER TABLE journal DROP COLUMN normalized_digest;
                ALTER TABLE journal DROP COLUMN uidvalidity; ALTER TABLE journal DROP COLUMN size;
                ALTER TABLE journal DROP COLUMN message_id; ALTER TABLE journal DROP COLUMN digest;
                PRAGMA user_version = 6
                """)
        }
        let run = try await a.sync()
        #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
        #expect(run.standardOutput.contains("work/INBOX: 1 up, 1 recovered"), "only the new file goes up: \(run.standardOutput)")
        let server = try await a.serverMessages("INBOX")
        #expect(server.count == 3, "no duplicate")
        let asExpected = sortedBytes(server.values.map { lfForm($0.body) })
                == sortedBytes([lfForm(marked(bodies[0], "aaaa0000aaaa0000aaaa0000")), lfForm(marked(bodies[1], "bbbb1111bbbb1111bbbb1111")), bodies[2]])
        #expect(asExpected, "the old copies stay as they are, the new one is exact")
        let state = try StateStore.open(directory: a.dir.path + "/state")
        #expect(try state.schemaVersion() == Schema.currentVersion)
        let folder = try state.folder(of: try state.account(named: "work", protocol: "imap"), remoteName: Array("INBOX".utf8), localName: "INBOX")
        #expect(try state.pairs(in: folder.id).count == 3)
        let again = try await a.sync()
        #expect(again.status == 0 && !again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")

        // The state lost: the marked copies are known by their size without the token line.
        #expect(try await runCommand(["rm", "-rf", a.dir.path + "/state"]).status == 0)
        let fresh = try await a.sync()
        #expect(fresh.status == 0 && fresh.standardOutput.contains("work/INBOX: 3 already on both sides, paired"), "\(fresh.standardOutput)")
        #expect(try await a.serverMessages("INBOX").count == 3 && a.localMessages("INBOX").count == 3)
    }
}
