#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import State
import Support
import TestSupport
import Dispatch

struct ExpectedFailure: Error {}

@Suite struct StateStoreTests {
    @Test func createsFileAndFolderPrivatelyAndMigrates() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let stateDir = dir.path + "/nested/state"
        let store = try StateStore.open(directory: stateDir)
        #expect(try store.schemaVersion() == Schema.currentVersion)
        var st = stat()
        stat(stateDir, &st)
        #expect(st.st_mode & 0o777 == 0o700)
        stat(store.path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        _ = try store.account(named: "work", protocol: "imap")
        stat(store.path + "-wal", &st)
        #expect(st.st_mode & 0o077 == 0)
        // Reopening an up-to-date file is a no-op.
        let again = try StateStore(path: store.path)
        #expect(try again.account(named: "work", protocol: "imap") == (try store.account(named: "work", protocol: "imap")))
    }

    /// A state written by an earlier schema (v3) opens: the tables of the later steps are
    /// added and work, nothing else changes.
    @Test func stateFromSchemaThreeIsMigrated() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try StateStore.open(directory: dir.path)
            let account = try store.account(named: "work", protocol: "imap")
            _ = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
            try store.db.execute("""
                DROP TABLE keywords; ALTER TABLE folders DROP COLUMN unstorable_keywords; ALTER TABLE accounts DROP COLUMN notmuch_revision;
                DROP TABLE refused; DROP TABLE unfetchable; DROP TABLE unmirrorable; ALTER TABLE journal DROP COLUMN normalized_size; ALTER TABLE journal DROP COLUMN normalized_digest; ALTER TABLE accounts DROP COLUMN mailbox;
                ALTER TABLE journal DROP COLUMN uidvalidity; ALTER TABLE journal DROP COLUMN size;
                ALTER TABLE journal DROP COLUMN message_id; ALTER TABLE journal DROP COLUMN digest;
                PRAGMA user_version = 3
                """)
        }
        let store = try StateStore.open(directory: dir.path)
        #expect(try store.schemaVersion() == Schema.currentVersion)
        let account = try store.account(named: "work", protocol: "imap")
        let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        try store.noteRefused(in: folder.id, name: "1.M1P1.host", size: 10, reason: "NO [LIMIT] too big", at: 5)
        try store.noteUnfetchable(in: folder.id, uids: [UID(7)], failed: true, reason: "BYE")
        #expect(try store.refused(in: folder.id)["1.M1P1.host"]?.reason == "NO [LIMIT] too big")
        #expect(try store.unfetchable(in: folder.id)[UID(7)]?.failed == true)
        #expect(try store.accountMailbox(account) == nil, "not known before v6: the next pass records it")
        try store.replaceUnmirrorable(of: account, ["v1%2E2": "why"])
        #expect(try store.unmirrorable(of: account) == ["v1%2E2": "why"])
        try store.replaceUnmirrorable(of: account, [:])
        #expect(try store.unmirrorable(of: account).isEmpty)
        try store.saveKeywords(in: folder.id, [(UInt8(ascii: "a"), "$Junk"), (128, "$label1")])
        #expect(try store.keywords(in: folder.id) == [UInt8(ascii: "a"): "$Junk", 128: "$label1"])
        try store.setUnstorableKeywords(in: folder.id, "$Junk")
        #expect(try store.unstorableKeywords(in: folder.id) == "$Junk")
    }

    /// A state of schema v6 with an upload journaled the old way (a token) opens: the entry
    /// keeps its token for recovery, and new entries carry what was sent.
    @Test func stateFromSchemaSixKeepsItsTokenEntries() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try StateStore.open(directory: dir.path)
            let account = try store.account(named: "work", protocol: "imap")
            let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
            try store.db.execute("""
                DROP TABLE keywords; ALTER TABLE folders DROP COLUMN unstorable_keywords; ALTER TABLE accounts DROP COLUMN notmuch_revision;
                DROP TABLE unmirrorable; ALTER TABLE journal DROP COLUMN normalized_size; ALTER TABLE journal DROP COLUMN normalized_digest;
                ALTER TABLE journal DROP COLUMN uidvalidity; ALTER TABLE journal DROP COLUMN size;
                ALTER TABLE journal DROP COLUMN message_id; ALTER TABLE journal DROP COLUMN digest;
                INSERT INTO journal (account_id, folder_id, kind, local_name, token, uidnext_before, flags, created)
                VALUES (\(account.rawValue), \(folder.id.rawValue), 'upload', '1.M1P1.host', 'a1b2c3', 9, 'S', 5);
                PRAGMA user_version = 6
                """)
        }
        let store = try StateStore.open(directory: dir.path)
        #expect(try store.schemaVersion() == Schema.currentVersion)
        let account = try store.account(named: "work", protocol: "imap")
        let old = try store.pendingJournalEntries(of: account)
        #expect(old.count == 1 && old[0].token == "a1b2c3" && old[0].uidNextBefore == UID(9) && old[0].digest == nil && old[0].size == nil)
        let id = try store.addJournalEntry(JournalEntry(account: account, folder: old[0].folder, kind: .upload, localName: "2.M2P2.host",
                                                        uidNextBefore: UID(10), created: 6, uidValidity: UIDValidity(3), size: 99,
                                                        messageID: nil, digest: [1, 2, 3]))
        let now = try store.pendingJournalEntries(of: account).first { $0.id == id }
        #expect(now?.size == 99 && now?.digest == [1, 2, 3] && now?.uidValidity == UIDValidity(3) && now?.messageID == nil && now?.token == nil)
    }

    @Test func corruptFileIsAClearErrorAndIsNotReset() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/state.sqlite3"
        let garbage = String(repeating: "this is not a database ", count: 400)
        writeFile(path, garbage, mode: 0o600)
        let error = #expect(throws: StateError.self) { _ = try StateStore(path: path) }
        if case .corrupt? = error {} else { Issue.record("got \(String(describing: error))") }
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("backup") == true)
        #expect(readFile(path) == garbage)
    }

    @Test func newerSchemaIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/state.sqlite3"
        let store = try StateStore(path: path)
        try store.db.execute("PRAGMA user_version = 99")
        let error = #expect(throws: StateError.self) { _ = try StateStore(path: path) }
        if case .newerSchema(_, 99, Schema.currentVersion)? = error {} else { Issue.record("got \(String(describing: error))") }
        #expect(error?.description.contains("upgrade mailmirror") == true)
    }

    @Test func foldersAndPairsRoundTrip() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "work", protocol: "imap")
        var folder = try store.folder(of: account, remoteName: Array("Entw&APw-rfe".utf8), localName: "Entwürfe")
        #expect(folder.uidValidity == nil)
        folder.uidValidity = UIDValidity(1234)
        folder.uidNext = UID(10)
        folder.highestModSeq = ModSeq(UInt64(1) << 40)
        folder.lastSync = 1_700_000_000
        try store.updateFolder(folder)
        #expect(try store.folders(of: account) == [folder])
        #expect(try store.folder(of: account, remoteName: Array("Entw&APw-rfe".utf8), localName: "x") == folder)

        let inserted = try store.insertPairs([
            MessagePair(folder: folder.id, uid: UID(3), localName: "a", flags: "S", size: 100, messageID: Array("<a@x>".utf8), internalDate: 5),
            MessagePair(folder: folder.id, uid: nil, localName: "b", flags: ""),
            MessagePair(folder: folder.id, uid: UID(1), localName: nil, flags: "FS"),
        ])
        let loaded = try store.pairs(in: folder.id)
        #expect(loaded.map(\.uid) == [UID(1), UID(3), nil])
        #expect(loaded[1] == inserted[0])
        var b = loaded[2]
        b.uid = UID(7)
        b.flags = "R"
        try store.updatePair(b)
        try store.deletePairs(ids: [loaded[0].id!])
        #expect(try store.pairs(in: folder.id).map(\.uid) == [UID(3), UID(7)])
        #expect(try store.pairCount(in: folder.id) == 2)

        // The same UID twice in one folder is refused: a pair is unique on each side.
        #expect(throws: StateError.self) {
            try store.insertPairs([MessagePair(folder: folder.id, uid: UID(3), localName: "c", flags: "")])
        }
        try store.deleteFolder(folder.id)
        #expect(try store.pairCount(in: folder.id) == 0)
    }

    /// A full pass reads its pairs one at a time in the order a sorted Maildir listing
    /// merges with: no local name first, then by the bytes of the names, from the index.
    @Test func pairsComeInByteOrderOfTheirNamesFromTheIndex() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "work", protocol: "imap")
        let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        let other = try store.folder(of: account, remoteName: Array("Other".utf8), localName: "Other")
        // "é" precomposed and decomposed are two names on disk (Swift's == calls them equal).
        let names: [String?] = ["b.host", "a.host", nil, "", "\u{E9}.host", "e\u{301}.host", "B.host", "a.host2"]
        var uid: UInt32 = 0
        try store.insertPairs(names.map { name in
            uid += 1
            return MessagePair(folder: folder.id, uid: name == nil ? nil : UID(uid), localName: name, flags: "S",
                               messageID: Array("<\(uid)@x>".utf8))
        })
        try store.insertPairs([MessagePair(folder: other.id, uid: UID(1), localName: "0.other", flags: "")])
        var seen: [MessagePair] = []
        try store.forEachPairInNameOrder(in: folder.id) { seen.append($0) }
        #expect(seen.count == names.count)
        #expect(seen.prefix(2).allSatisfy { $0.localName == nil || $0.localName == "" })
        let named = seen.dropFirst(2).map { Array($0.localName!.utf8) }
        #expect(named == named.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(named.count == 6)
        #expect(seen.allSatisfy { $0.messageID == nil && $0.flags == "S" && $0.id != nil })
        for sql in StateStore.pairsInNameOrder {
            var plan: [String] = []
            try store.db.query("EXPLAIN QUERY PLAN " + sql, .integer(folder.id.rawValue)) { row in plan.append(row.text(3)) }
            #expect(!plan.joined().contains("TEMP B-TREE"), "sorted by SQLite, not read in order: \(plan)")
        }
        #expect(try store.pairedUIDs(in: folder.id) == [1, 2, 4, 5, 6, 7, 8])
        #expect(try store.hasPairs(in: other.id))
        #expect(try store.pair(in: folder.id, localName: "b.host")?.uid == UID(1))
        let first = seen[0]
        #expect(try store.pair(id: first.id!)?.localName == first.localName)
    }

    /// Reads in one snapshot: what another writer commits meanwhile is not seen until the
    /// snapshot ends, and a read block inside a write transaction is part of it.
    @Test func readsInOneSnapshot() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let other = try StateStore(path: store.path)
        let account = try store.account(named: "work", protocol: "imap")
        let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        let seen = try store.reading {
            let before = try store.pairCount(in: folder.id)
            try other.insertPairs([MessagePair(folder: folder.id, uid: UID(1), localName: "a", flags: "")])
            return (before, try store.pairCount(in: folder.id))
        }
        #expect(seen.0 == 0 && seen.1 == 0)
        #expect(try store.pairCount(in: folder.id) == 1)
        try store.transaction {
            try store.insertPairs([MessagePair(folder: folder.id, uid: UID(2), localName: "b", flags: "")])
            #expect(try store.reading { try store.pairCount(in: folder.id) } == 2)
        }
    }

    @Test func journalInsertResolveAndOrder() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "work", protocol: "imap")
        let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        let upload = JournalEntry(account: account, folder: folder.id, kind: .upload, localName: "123.x.host",
                                  uidNextBefore: UID(42), flags: "S", created: 1, uidValidity: UIDValidity(7),
                                  size: 1234, messageID: Array("<a@b>".utf8), digest: [UInt8](repeating: 0xab, count: 32))
        let id1 = try store.transaction(durability: .full) { try store.addJournalEntry(upload) }
        let id2 = try store.addJournalEntry(JournalEntry(account: account, kind: .pop3Retrieve, detail: [0, 1, 2], created: 2))
        var pending = try store.pendingJournalEntries(of: account)
        #expect(pending.map(\.id) == [id1, id2])
        var expected = upload
        expected.id = id1
        #expect(pending[0] == expected)
        #expect(pending[1].detail == [0, 1, 2])
        #expect(try store.pendingJournalCount(in: folder.id) == 1)
        try store.resolveJournalEntry(id1)
        pending = try store.pendingJournalEntries(of: account)
        #expect(pending.map(\.id) == [id2])
    }

    @Test func transactionRollsBackOnThrow() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "work", protocol: "imap")
        let folder = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        #expect(throws: ExpectedFailure.self) {
            try store.transaction {
                try store.insertPairs([MessagePair(folder: folder.id, uid: UID(1), localName: "a", flags: "")])
                try store.addJournalEntry(JournalEntry(account: account, kind: .download, created: 0))
                throw ExpectedFailure()
            }
        }
        #expect(try store.pairCount(in: folder.id) == 0)
        #expect(try store.pendingJournalEntries(of: account).isEmpty)
        // Nested transactions join the outer one.
        try store.transaction {
            _ = try store.transaction { try store.insertPairs([MessagePair(folder: folder.id, uid: UID(1), localName: "a", flags: "")]) }
            try store.insertPairs([MessagePair(folder: folder.id, uid: UID(2), localName: "b", flags: "")])
        }
        #expect(try store.pairCount(in: folder.id) == 2)
    }

    @Test func pop3UIDLs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "isp", protocol: "pop3")
        let uidl = Array("00000001abcdef01".utf8)
        #expect(try !store.hasPOP3Message(account, uidl: uidl))
        try store.transaction(durability: .full) {
            try store.recordPOP3Message(account, POP3Record(uidl: uidl, localName: "1.x.host", deliveredAt: 100))
        }
        #expect(try store.hasPOP3Message(account, uidl: uidl))
        try store.markPOP3Deleted(account, uidls: [uidl], at: 200)
        #expect(try store.pop3Messages(of: account) == [POP3Record(uidl: uidl, localName: "1.x.host", deliveredAt: 100, deletedAt: 200)])
    }

    /// Closing keeps the WAL (no checkpoint at each run's end); the next opening folds a
    /// large one into the database and truncates it, unless told not to, and never waits for
    /// a connection that is reading.
    @Test func largeLogIsTruncatedWhenTheStateIsOpenedAgain() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let wal = dir.path + "/" + StateStore.fileName + "-wal"
        func walSize() -> Int { var st = stat(); return stat(wal, &st) == 0 ? Int(st.st_size) : -1 }
        do {
            let store = try StateStore.open(directory: dir.path)
            try store.db.execute("CREATE TABLE filler (x BLOB)")
            for _ in 0..<8 {
                try store.transaction { try store.db.execute("INSERT INTO filler SELECT randomblob(1000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) a, (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10) b") }
            }
        }
        let kept = walSize()
        #expect(kept > Int(StateStore.walLimitAtOpen))
        do { _ = try StateStore.open(directory: dir.path, trimmingLog: false) }
        #expect(walSize() == kept)

        // A reader holds a snapshot: the truncation gives up at once (the busy timeout is 10 s).
        let reader = try StateStore.open(directory: dir.path, trimmingLog: false)
        try reader.db.execute("BEGIN")
        try reader.db.query("SELECT count(*) FROM filler") { _ in }
        let start = monotonicSeconds()
        do { _ = try StateStore.open(directory: dir.path) }
        #expect(monotonicSeconds() - start < 5)
        #expect(walSize() == kept)
        try reader.db.execute("COMMIT")

        let store = try StateStore.open(directory: dir.path)
        #expect(walSize() < 16 * 1024, "a fresh WAL: its header and one frame")
        var rows: Int64 = 0
        try store.db.query("SELECT count(*) FROM filler") { row in rows = row.int(0) }
        #expect(rows == 400)
    }

    @Test func secondWriterWaitsThenSeesCommittedData() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let a = try StateStore.open(directory: dir.path)
        let b = try StateStore.open(directory: dir.path)
        let account = try a.account(named: "work", protocol: "imap")
        #expect(try b.account(named: "work", protocol: "imap") == account)
    }

    /// The mailbox an account's state describes: recorded once; when it changes, the UIDs of
    /// every folder stop being trusted (UIDVALIDITY 0, no mod-sequence, no marker).
    @Test func accountMailboxAndForgottenUIDs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try StateStore.open(directory: dir.path)
        let account = try store.account(named: "work", protocol: "imap")
        #expect(try store.accountMailbox(account) == nil)
        var known = try store.folder(of: account, remoteName: Array("INBOX".utf8), localName: "INBOX")
        known.uidValidity = UIDValidity(rawValue: 77)
        known.highestModSeq = ModSeq(5)
        known.localMarker = "m"
        try store.updateFolder(known)
        let fresh = try store.folder(of: account, remoteName: Array("New".utf8), localName: "New")
        try store.setAccountMailbox(account, "imap://me@a", forgettingUIDs: false)
        #expect(try store.accountMailbox(account) == "imap://me@a")
        #expect(try store.folderRecord(id: known.id).uidValidity == UIDValidity(rawValue: 77))
        try store.setAccountMailbox(account, "imap://me@b", forgettingUIDs: true)
        #expect(try store.accountMailbox(account) == "imap://me@b")
        let forgotten = try store.folderRecord(id: known.id)
        #expect(forgotten.uidValidity == UIDValidity(rawValue: 0) && forgotten.highestModSeq == nil && forgotten.localMarker == nil)
        #expect(try store.folderRecord(id: fresh.id).uidValidity == nil, "a folder without UIDs stays without")
    }

    /// A first run with several accounts: each opens the fresh state at the same time, and
    /// every one of them must find it created and migrated once (one used to fail with
    /// "table accounts already exists").
    @Test func freshStateOpenedByManyAtOnce() throws {
        for round in 0..<5 {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let path = dir.path
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 6) { i in
                do {
                    let store = try StateStore.open(directory: path)
                    _ = try store.account(named: "account\(i)", protocol: "imap")
                    if try store.schemaVersion() != Schema.currentVersion { failures.add("schema \(try store.schemaVersion())") }
                } catch {
                    failures.add("\(error)")
                }
            }
            #expect(failures.list.isEmpty, "round \(round): \(failures.list)")
            let store = try StateStore.open(directory: path)
            var accounts: Int64 = 0
            try store.db.query("SELECT count(*) FROM accounts") { row in accounts = row.int(0) }
            #expect(accounts == 6)
        }
    }
}

/// Errors collected from several threads.
private final class Failures: @unchecked Sendable {
    private let mutex = NSLockLite()
    private var items: [String] = []
    func add(_ item: String) { mutex.lock(); items.append(item); mutex.unlock() }
    var list: [String] { mutex.lock(); defer { mutex.unlock() }; return items }
}
