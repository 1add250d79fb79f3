#if canImport(Glibc)
import Glibc
#endif
import Support

/// The state database (`state.sqlite3` in `state_dir`): accounts, folders, message pairs,
/// the journal of pending work, and POP3 UIDLs — behind a typed API.
///
/// One `StateStore` is one SQLite connection; use it from one task at a time (it may move
/// between tasks, hence `@unchecked Sendable`; give concurrent workers their own store).
/// WAL mode with `synchronous=NORMAL`, switched to `FULL` for `Durability.full`
/// transactions (see `Durability` for which commits need it). A damaged file or one from a
/// newer mailmirror is an error naming the file, never a silent reset.
public final class StateStore: @unchecked Sendable {
    /// The database file.
    public let path: String
    let db: Database

    /// The file an fsync of which makes the commits made so far durable (WAL mode: a
    /// commit's frames are in the `-wal` file), for a caller that flushes it together with
    /// its own files instead of a `.full` commit; nil for an in-memory store.
    public var commitLogPath: String? { path == ":memory:" ? nil : path + "-wal" }

    /// The file name inside `state_dir`.
    public static let fileName = "state.sqlite3"

    /// An in-memory copy of `directory/state.sqlite3` (empty when there is none), for a dry
    /// run: it may be written freely, and nothing reaches the file.
    public static func scratchCopy(of directory: String) throws(StateError) -> StateStore {
        let store = try StateStore(path: ":memory:")
        let file = directory + "/" + fileName
        if access(file, R_OK) == 0 { try store.db.restore(from: file) }
        return store
    }

    /// Opens (creating with mode 0700/0600 when missing) `directory/state.sqlite3`.
    /// `trimmingLog`: checkpoint and truncate a large WAL first (see `walLimitAtOpen`); a
    /// second connection opened in the middle of a pass leaves that to the next run.
    public static func open(directory: String, trimmingLog: Bool = true) throws(StateError) -> StateStore {
        try makeDirectory(directory)
        let store = try StateStore(path: directory + "/" + fileName)
        if trimmingLog { store.db.truncateLog(ifLargerThan: walLimitAtOpen) }
        return store
    }

    /// WAL size above which opening the state checkpoints and truncates it. Closing keeps
    /// the WAL (no checkpoint and no fsyncs at the end of every run), but the next open reads
    /// every frame of it to rebuild its index: after an initial sync (~1,000 frames, 4 MB)
    /// that added ~2 ms to every later run. Opening is where the truncation is cheap: a
    /// sync opens the state while its connection is still being set up.
    static let walLimitAtOpen: off_t = 256 * 1024

    /// Opens the database at `path`, creating it (mode 0600) and migrating it as needed.
    public init(path: String) throws(StateError) {
        self.path = path
        let lock = path == ":memory:" ? nil : try Self.prepareFile(path)
        defer { if let lock { flock(lock, LOCK_UN); close(lock) } }
        db = try Database(path: path)
        try configure()
        try migrate()
    }

    /// Creates the file when missing (mode 0600 from the first byte; SQLite gives its -wal
    /// and -shm files the same mode) and returns the lock, held, that serializes setting a
    /// file up between connections (flock on its directory, so in this process too): the
    /// accounts of a first run open the fresh file at once, and two connections turning it
    /// to WAL mode can deadlock (SQLite then answers BUSY at once, without waiting).
    private static func prepareFile(_ path: String) throws(StateError) -> Int32 {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let lock = Glibc.open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lock >= 0 else { throw StateError.cannotOpen(path: path, detail: String(cString: strerror(errno))) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        // Only when missing: closing any descriptor of a file drops every POSIX lock this
        // process holds on it, the SQLite connections' included.
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {
            let detail = String(cString: strerror(errno))
            close(lock)
            throw StateError.cannotOpen(path: path, detail: detail)
        }
        return lock
    }

    /// Creates the state directory (mode 0700) and its parents when missing.
    public static func makeDirectory(_ directory: String) throws(StateError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw StateError.cannotOpen(path: directory, detail: String(cString: strerror(errno)))
            }
        }
    }

    private func configure() throws(StateError) {
        // The first read of the header is where a non-database file shows.
        var version = 0
        try db.query("PRAGMA user_version") { row in version = Int(row.int(0)) }
        if version > Schema.currentVersion {
            throw StateError.newerSchema(path: path, found: version, known: Schema.currentVersion)
        }
        try db.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
    }

    private func migrate() throws(StateError) {
        var version = 0
        try db.query("PRAGMA user_version") { row in version = Int(row.int(0)) }
        while version < Schema.currentVersion {
            try write("migration \(version + 1)") {
                // Read again under the write lock: two accounts of one first run open a
                // fresh file at the same time, and the other may have migrated it since.
                try db.query("PRAGMA user_version") { row in version = Int(row.int(0)) }
                guard version < Schema.currentVersion else { return }
                try db.execute(Schema.migrations[version])
                try db.execute("PRAGMA user_version = \(version + 1)")
                version += 1
            }
        }
    }

    /// `body` in one write transaction, its failures as `StateError`s naming `what`.
    private func write(_ what: String, _ body: () throws -> Void) throws(StateError) {
        do {
            try db.transaction(body)
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError.sqlite(path: path, code: -1, message: "\(error)", statement: what)
        }
    }

    /// The schema version of the file.
    public func schemaVersion() throws(StateError) -> Int {
        var version = 0
        try db.query("PRAGMA user_version") { row in version = Int(row.int(0)) }
        return version
    }

    /// Runs `body` in one write transaction: everything or nothing. A throw rolls back.
    /// With `.full`, the commit is on disk before this returns.
    /// Runs `body`'s reads as one snapshot (no write lock): a no-change pass looks at
    /// every folder's record with SQLite's locks taken once (docs/scale.md).
    public func reading<T>(_ body: () throws -> T) throws -> T { try db.reading(body) }

    public func transaction<T>(durability: Durability = .normal, _ body: () throws -> T) throws -> T {
        if durability == .full { try db.execute("PRAGMA synchronous = FULL") }
        defer { if durability == .full { try? db.execute("PRAGMA synchronous = NORMAL") } }
        return try db.transaction(body)
    }

    // MARK: - Accounts

    /// The id of the account called `name`, created on first use.
    public func account(named name: String, protocol proto: String) throws(StateError) -> AccountID {
        try db.run("INSERT INTO accounts (name, protocol) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", .text(name), .text(proto))
        var id: Int64 = 0
        try db.query("SELECT id FROM accounts WHERE name = ?", .text(name)) { row in id = row.int(0) }
        return AccountID(rawValue: id)
    }

    /// The id of an account that has been synced before, without creating it.
    public func existingAccount(named name: String) throws(StateError) -> AccountID? {
        var id: Int64?
        try db.query("SELECT id FROM accounts WHERE name = ?", .text(name)) { row in id = row.int(0) }
        return id.map(AccountID.init(rawValue:))
    }

    /// An account's last completed pass and last error.
    public func accountSummary(_ account: AccountID) throws(StateError) -> (lastSync: Int64?, lastError: String?) {
        var result: (Int64?, String?) = (nil, nil)
        try db.query("SELECT last_sync, last_error FROM accounts WHERE id = ?", .integer(account.rawValue)) { row in
            result = (row.optionalInt(0), row.optionalText(1))
        }
        return result
    }

    /// Which server mailbox the account's state describes; nil until first recorded.
    public func accountMailbox(_ account: AccountID) throws(StateError) -> String? {
        var mailbox: String?
        try db.query("SELECT mailbox FROM accounts WHERE id = ?", .integer(account.rawValue)) { row in mailbox = row.optionalText(0) }
        return mailbox
    }

    /// Records which server mailbox the account's state describes. `forgettingUIDs`: the
    /// UIDs remembered for its folders belong to another mailbox — each folder's UIDVALIDITY
    /// is set to 0 (never a server's), so its next pass re-matches its pairs by Message-ID
    /// and size, and no fast path trusts the old mod-sequences or markers.
    public func setAccountMailbox(_ account: AccountID, _ mailbox: String, forgettingUIDs: Bool) throws(StateError) {
        try write("record the account's mailbox") {
            try db.run("UPDATE accounts SET mailbox = ? WHERE id = ?", .text(mailbox), .integer(account.rawValue))
            if forgettingUIDs {
                try db.run("""
                    UPDATE folders SET uidvalidity = CASE WHEN uidvalidity IS NULL THEN NULL ELSE 0 END,
                                       highestmodseq = NULL, local_marker = NULL
                    WHERE account_id = ?
                    """, .integer(account.rawValue))
            }
        }
    }

    /// Records the outcome of an account's pass: the time it completed, or the error.
    public func recordAccountPass(_ account: AccountID, completedAt: Int64?, error: String?) throws(StateError) {
        if let completedAt {
            try db.run("UPDATE accounts SET last_sync = ?, last_error = NULL WHERE id = ?", .integer(completedAt), .integer(account.rawValue))
        } else {
            try db.run("UPDATE accounts SET last_error = ? WHERE id = ?", .optional(error), .integer(account.rawValue))
        }
    }

    // MARK: - Folders

    private static let folderColumns = "id, account_id, remote_name, local_name, uidvalidity, uidnext, highestmodseq, local_marker, last_sync, last_error"

    private func folderRecord(_ row: Row) -> FolderRecord {
        FolderRecord(id: FolderID(rawValue: row.int(0)), account: AccountID(rawValue: row.int(1)),
                     remoteName: row.blob(2), localName: row.text(3),
                     uidValidity: row.optionalInt(4).map { UIDValidity(UInt32(truncatingIfNeeded: $0)) },
                     uidNext: row.optionalInt(5).map { UID(UInt32(truncatingIfNeeded: $0)) },
                     highestModSeq: row.optionalInt(6).map { ModSeq(UInt64(bitPattern: $0)) },
                     localMarker: row.optionalText(7), lastSync: row.optionalInt(8), lastError: row.optionalText(9))
    }

    /// Every folder of an account.
    public func folders(of account: AccountID) throws(StateError) -> [FolderRecord] {
        var result: [FolderRecord] = []
        try db.query("SELECT \(Self.folderColumns) FROM folders WHERE account_id = ? ORDER BY id", .integer(account.rawValue)) { row in
            result.append(folderRecord(row))
        }
        return result
    }

    /// The folder with that remote name, created (with no sync state) on first use.
    public func folder(of account: AccountID, remoteName: [UInt8], localName: String) throws(StateError) -> FolderRecord {
        try db.run("INSERT INTO folders (account_id, remote_name, local_name) VALUES (?, ?, ?) ON CONFLICT (account_id, remote_name) DO NOTHING",
                   .integer(account.rawValue), .blob(remoteName), .text(localName))
        var record: FolderRecord?
        try db.query("SELECT \(Self.folderColumns) FROM folders WHERE account_id = ? AND remote_name = ?",
                     .integer(account.rawValue), .blob(remoteName)) { row in record = folderRecord(row) }
        return record!
    }

    /// One folder by id.
    public func folderRecord(id: FolderID) throws(StateError) -> FolderRecord {
        var record: FolderRecord?
        try db.query("SELECT \(Self.folderColumns) FROM folders WHERE id = ?", .integer(id.rawValue)) { row in record = folderRecord(row) }
        guard let record else { throw StateError.sqlite(path: path, code: 0, message: "no folder with id \(id.rawValue)", statement: "folderRecord") }
        return record
    }

    /// Stores what a pass learned of a folder.
    public func updateFolder(_ record: FolderRecord) throws(StateError) {
        try db.run("""
            UPDATE folders SET remote_name = ?, local_name = ?, uidvalidity = ?, uidnext = ?, highestmodseq = ?,
                local_marker = ?, last_sync = ?, last_error = ? WHERE id = ?
            """, bindings: [.blob(record.remoteName), .text(record.localName),
                            .optional(record.uidValidity.map { Int64($0.rawValue) }), .optional(record.uidNext.map { Int64($0.rawValue) }),
                            .optional(record.highestModSeq.map { Int64(bitPattern: $0.rawValue) }), .optional(record.localMarker),
                            .optional(record.lastSync), .optional(record.lastError), .integer(record.id.rawValue)])
    }

    /// Forgets a folder and its pairs and journal entries.
    public func deleteFolder(_ id: FolderID) throws(StateError) {
        try db.run("DELETE FROM folders WHERE id = ?", .integer(id.rawValue))
    }

    // MARK: - Pairs

    private func pair(_ row: Row) -> MessagePair {
        MessagePair(id: row.int(0), folder: FolderID(rawValue: row.int(1)),
                    uid: row.optionalInt(2).map { UID(UInt32(truncatingIfNeeded: $0)) }, localName: row.optionalText(3),
                    flags: row.text(4), size: row.optionalInt(5), messageID: row.optionalBlob(6), internalDate: row.optionalInt(7))
    }

    /// Every pair of a folder, in UID order (pairs without UID last).
    public func pairs(in folder: FolderID) throws(StateError) -> [MessagePair] {
        var result: [MessagePair] = []
        var withoutUID: [MessagePair] = []
        // In index order (NULL first), so SQLite sorts nothing; the UID-less go last here.
        try db.query("SELECT id, folder_id, uid, local_name, flags, size, message_id, internal_date FROM pairs WHERE folder_id = ? ORDER BY uid",
                     .integer(folder.rawValue)) { row in
            let p = pair(row)
            if p.uid == nil { withoutUID.append(p) } else { result.append(p) }
        }
        return result + withoutUID
    }

    /// The pair of a folder with this UID, if any (by index).
    public func pair(in folder: FolderID, uid: UID) throws(StateError) -> MessagePair? {
        var result: MessagePair?
        try db.query("SELECT id, folder_id, uid, local_name, flags, size, message_id, internal_date FROM pairs WHERE folder_id = ? AND uid = ?",
                     .integer(folder.rawValue), .integer(Int64(uid.rawValue))) { row in result = pair(row) }
        return result
    }

    /// The pair with this row id, if any.
    public func pair(id: Int64) throws(StateError) -> MessagePair? {
        var result: MessagePair?
        try db.query("SELECT id, folder_id, uid, local_name, flags, size, message_id, internal_date FROM pairs WHERE id = ?",
                     .integer(id)) { row in result = pair(row) }
        return result
    }

    /// The pair of a folder with this local base name, if any (by index).
    public func pair(in folder: FolderID, localName: String) throws(StateError) -> MessagePair? {
        var result: MessagePair?
        try db.query("SELECT id, folder_id, uid, local_name, flags, size, message_id, internal_date FROM pairs WHERE folder_id = ? AND local_name = ?",
                     .integer(folder.rawValue), .text(localName)) { row in result = pair(row) }
        return result
    }

    /// Whether a folder has any pair.
    public func hasPairs(in folder: FolderID) throws(StateError) -> Bool {
        var found = false
        try db.query("SELECT 1 FROM pairs WHERE folder_id = ? LIMIT 1", .integer(folder.rawValue)) { _ in found = true }
        return found
    }

    /// The UIDs of a folder's pairs, ascending (4 bytes a pair; read from the index).
    public func pairedUIDs(in folder: FolderID) throws(StateError) -> [UInt32] {
        var result: [UInt32] = []
        try db.query("SELECT uid FROM pairs WHERE folder_id = ? AND uid IS NOT NULL AND uid != 0 ORDER BY uid",
                     .integer(folder.rawValue)) { row in result.append(UInt32(truncatingIfNeeded: row.int(0))) }
        return result
    }

    /// Hands out a folder's pairs one at a time, never all held (a full pass over 100,000
    /// pairs; docs/scale.md): first those without a local name (NULL or the "gone locally"
    /// mark), then the rest in byte order of their local names — SQLite's BINARY collation,
    /// read from the `pairs_by_local` index, which is the order `ByteOrder` gives a listing.
    /// The Message-ID is not read.
    public func forEachPairInNameOrder(in folder: FolderID, _ body: (MessagePair) -> Void) throws(StateError) {
        for sql in Self.pairsInNameOrder {
            try db.query(sql, .integer(folder.rawValue)) { row in body(pair(row)) }
        }
    }

    /// The two queries of `forEachPairInNameOrder` (the second must read the index in order).
    static let pairsInNameOrder = [
        "SELECT id, folder_id, uid, local_name, flags, size, NULL, internal_date FROM pairs WHERE folder_id = ? AND (local_name IS NULL OR local_name = '')",
        "SELECT id, folder_id, uid, local_name, flags, size, NULL, internal_date FROM pairs WHERE folder_id = ? AND local_name IS NOT NULL AND local_name != '' ORDER BY local_name",
    ]

    /// Inserts pairs; returns them with their row ids.
    @discardableResult
    public func insertPairs(_ pairs: [MessagePair]) throws(StateError) -> [MessagePair] {
        var inserted: [MessagePair] = []
        inserted.reserveCapacity(pairs.count)
        for var p in pairs {
            try db.run("INSERT INTO pairs (folder_id, uid, local_name, flags, size, message_id, internal_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       bindings: [.integer(p.folder.rawValue), .optional(p.uid.map { Int64($0.rawValue) }), .optional(p.localName),
                                  .text(p.flags), .optional(p.size), .optional(p.messageID), .optional(p.internalDate)])
            p.id = db.lastInsertRowID
            inserted.append(p)
        }
        return inserted
    }

    /// Rewrites a pair (by row id): its UID, local name and agreed flags.
    public func updatePair(_ p: MessagePair) throws(StateError) {
        guard let id = p.id else { return }
        try db.run("UPDATE pairs SET uid = ?, local_name = ?, flags = ?, size = ?, message_id = ?, internal_date = ?, folder_id = ? WHERE id = ?",
                   bindings: [.optional(p.uid.map { Int64($0.rawValue) }), .optional(p.localName), .text(p.flags), .optional(p.size),
                              .optional(p.messageID), .optional(p.internalDate), .integer(p.folder.rawValue), .integer(id)])
    }

    /// Sets the agreed flags of a pair.
    public func updatePairFlags(id: Int64, flags: String) throws(StateError) {
        try db.run("UPDATE pairs SET flags = ? WHERE id = ?", .text(flags), .integer(id))
    }

    /// Replaces one side of a pair (the UID when `uid` is given, the local name when
    /// `localName` is), e.g. to mark a side as gone but kept by policy.
    public func markPair(id: Int64, uid: UID?, localName: String?) throws(StateError) {
        if let uid { try db.run("UPDATE pairs SET uid = ? WHERE id = ?", .integer(Int64(uid.rawValue)), .integer(id)) }
        if let localName { try db.run("UPDATE pairs SET local_name = ? WHERE id = ?", .text(localName), .integer(id)) }
    }

    /// Forgets every pair of a folder (its other side is being rebuilt from scratch).
    public func deleteAllPairs(in folder: FolderID) throws(StateError) {
        try db.run("DELETE FROM pairs WHERE folder_id = ?", .integer(folder.rawValue))
    }

    /// Removes pairs by row id.
    public func deletePairs(ids: [Int64]) throws(StateError) {
        for id in ids { try db.run("DELETE FROM pairs WHERE id = ?", .integer(id)) }
    }

    /// Number of pairs in a folder.
    public func pairCount(in folder: FolderID) throws(StateError) -> Int {
        var count = 0
        try db.query("SELECT count(*) FROM pairs WHERE folder_id = ?", .integer(folder.rawValue)) { row in count = Int(row.int(0)) }
        return count
    }

    // MARK: - Keywords

    /// A folder's keywords by their code in the agreed flags (docs/keywords.md).
    public func keywords(in folder: FolderID) throws(StateError) -> [UInt8: String] {
        var result: [UInt8: String] = [:]
        try db.query("SELECT code, name FROM keywords WHERE folder_id = ?", .integer(folder.rawValue)) { row in
            let code = row.int(0)
            if code > 0 && code < 256 { result[UInt8(code)] = row.text(1) }
        }
        return result
    }

    /// Records the codes given to keywords (a code already named is renamed).
    public func saveKeywords(in folder: FolderID, _ items: [(code: UInt8, name: String)]) throws(StateError) {
        try write("save keywords") {
            for item in items {
                try db.run("INSERT OR REPLACE INTO keywords (folder_id, code, name) VALUES (?, ?, ?)",
                           .integer(folder.rawValue), .integer(Int64(item.code)), .text(item.name))
            }
        }
    }

    /// The keywords local messages carry that the server folder cannot keep, as the last
    /// pass found them (space-separated; nil: none).
    public func unstorableKeywords(in folder: FolderID) throws(StateError) -> String? {
        var result: String?
        try db.query("SELECT unstorable_keywords FROM folders WHERE id = ?", .integer(folder.rawValue)) { row in
            result = row.optionalText(0)
        }
        return result
    }

    /// Notes the keywords the server folder cannot keep (nil: none).
    public func setUnstorableKeywords(in folder: FolderID, _ names: String?) throws(StateError) {
        try db.run("UPDATE folders SET unstorable_keywords = ? WHERE id = ?", names.map { .text($0) } ?? .null, .integer(folder.rawValue))
    }

    /// The notmuch revision ("uuid n") whose changes the account's last complete pass took.
    public func notmuchRevision(_ account: AccountID) throws(StateError) -> String? {
        var result: String?
        try db.query("SELECT notmuch_revision FROM accounts WHERE id = ?", .integer(account.rawValue)) { row in result = row.optionalText(0) }
        return result
    }

    /// Notes the notmuch revision whose changes were taken.
    public func setNotmuchRevision(_ account: AccountID, _ revision: String?) throws(StateError) {
        try db.run("UPDATE accounts SET notmuch_revision = ? WHERE id = ?", .optional(revision), .integer(account.rawValue))
    }

    // MARK: - Folders that cannot be mirrored

    /// Replaces the account's local folders that cannot exist on its server (canonical fs
    /// path → why), as the last pass found them.
    public func replaceUnmirrorable(of account: AccountID, _ folders: [String: String]) throws(StateError) {
        try db.run("DELETE FROM unmirrorable WHERE account_id = ?", .integer(account.rawValue))
        for (name, reason) in folders.sorted(by: { $0.key < $1.key }) {
            try db.run("INSERT INTO unmirrorable (account_id, local_name, reason) VALUES (?, ?, ?)",
                       .integer(account.rawValue), .text(name), .text(reason))
        }
    }

    /// The account's local folders that cannot exist on its server: canonical fs path → why.
    public func unmirrorable(of account: AccountID) throws(StateError) -> [String: String] {
        var result: [String: String] = [:]
        try db.query("SELECT local_name, reason FROM unmirrorable WHERE account_id = ?", .integer(account.rawValue)) { row in
            result[row.text(0)] = row.text(1)
        }
        return result
    }

    // MARK: - Skipped messages

    /// Replaces the list of messages a folder's last pass left on the server on purpose.
    public func replaceSkipped(in folder: FolderID, _ items: [(uid: UID, size: Int64?, reason: String)]) throws(StateError) {
        try db.run("DELETE FROM skipped WHERE folder_id = ?", .integer(folder.rawValue))
        for item in items {
            try db.run("INSERT OR REPLACE INTO skipped (folder_id, uid, size, reason) VALUES (?, ?, ?, ?)",
                       .integer(folder.rawValue), .integer(Int64(item.uid.rawValue)), .optional(item.size), .text(item.reason))
        }
    }

    /// Messages a folder's last pass left on the server on purpose.
    public func skipped(in folder: FolderID) throws(StateError) -> [(uid: UID, size: Int64?, reason: String)] {
        var result: [(uid: UID, size: Int64?, reason: String)] = []
        try db.query("SELECT uid, size, reason FROM skipped WHERE folder_id = ? ORDER BY uid", .integer(folder.rawValue)) { row in
            result.append((UID(UInt32(truncatingIfNeeded: row.int(0))), row.optionalInt(1), row.text(2)))
        }
        return result
    }

    // MARK: - Refused uploads

    /// A local message the server refused (its words), as large as `size` then.
    public func noteRefused(in folder: FolderID, name: String, size: Int64, reason: String, at time: Int64) throws(StateError) {
        try db.run("INSERT OR REPLACE INTO refused (folder_id, local_name, size, reason, refused_at) VALUES (?, ?, ?, ?, ?)",
                   .integer(folder.rawValue), .text(name), .integer(size), .text(reason), .integer(time))
    }

    /// The local messages of a folder the server refused, by base name.
    public func refused(in folder: FolderID) throws(StateError) -> [String: (size: Int64, reason: String, at: Int64)] {
        var result: [String: (size: Int64, reason: String, at: Int64)] = [:]
        try db.query("SELECT local_name, size, reason, refused_at FROM refused WHERE folder_id = ?", .integer(folder.rawValue)) { row in
            result[row.text(0)] = (row.int(1), row.text(2), row.int(3))
        }
        return result
    }

    /// Forgets refusals (the file is gone, changed, or went up after all).
    public func forgetRefused(in folder: FolderID, names: [String]) throws(StateError) {
        for name in names {
            try db.run("DELETE FROM refused WHERE folder_id = ? AND local_name = ?", .integer(folder.rawValue), .text(name))
        }
    }

    // MARK: - Messages the server could not send

    /// Server messages of a folder whose FETCH failed: suspects (in a batch that failed) and
    /// those that failed alone, with the server's words.
    public func unfetchable(in folder: FolderID) throws(StateError) -> [UID: (failed: Bool, reason: String)] {
        var result: [UID: (failed: Bool, reason: String)] = [:]
        try db.query("SELECT uid, failed, reason FROM unfetchable WHERE folder_id = ?", .integer(folder.rawValue)) { row in
            result[UID(UInt32(truncatingIfNeeded: row.int(0)))] = (row.int(1) != 0, row.text(2))
        }
        return result
    }

    /// Notes `uids` as suspects, or as failed alone.
    public func noteUnfetchable(in folder: FolderID, uids: [UID], failed: Bool, reason: String) throws(StateError) {
        for uid in uids {
            try db.run("INSERT OR REPLACE INTO unfetchable (folder_id, uid, failed, reason) VALUES (?, ?, ?, ?)",
                       .integer(folder.rawValue), .integer(Int64(uid.rawValue)), .integer(failed ? 1 : 0), .text(reason))
        }
    }

    /// Forgets `uids` (fetched after all, or gone from the server).
    public func forgetUnfetchable(in folder: FolderID, uids: [UID]) throws(StateError) {
        for uid in uids {
            try db.run("DELETE FROM unfetchable WHERE folder_id = ? AND uid = ?", .integer(folder.rawValue), .integer(Int64(uid.rawValue)))
        }
    }

    // MARK: - Journal

    /// Records work before it is done; returns the entry's id.
    @discardableResult
    public func addJournalEntry(_ entry: JournalEntry) throws(StateError) -> JournalID {
        try db.run("""
            INSERT INTO journal (account_id, folder_id, kind, uid, local_name, token, uidnext_before, flags, target_folder_id, detail, created,
                                 uidvalidity, size, message_id, digest, normalized_size, normalized_digest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, bindings: [.integer(entry.account.rawValue), .optional(entry.folder?.rawValue), .text(entry.kind.rawValue),
                            .optional(entry.uid.map { Int64($0.rawValue) }), .optional(entry.localName), .optional(entry.token),
                            .optional(entry.uidNextBefore.map { Int64($0.rawValue) }), .optional(entry.flags),
                            .optional(entry.targetFolder?.rawValue), .optional(entry.detail), .integer(entry.created),
                            .optional(entry.uidValidity.map { Int64($0.rawValue) }), .optional(entry.size),
                            .optional(entry.messageID), .optional(entry.digest), .optional(entry.normalizedSize),
                            .optional(entry.normalizedDigest)])
        return JournalID(rawValue: db.lastInsertRowID)
    }

    /// Removes a journal entry once its result is recorded.
    public func resolveJournalEntry(_ id: JournalID) throws(StateError) {
        try db.run("DELETE FROM journal WHERE id = ?", .integer(id.rawValue))
    }

    /// Pending entries of an account, oldest first: what recovery resolves before planning.
    public func pendingJournalEntries(of account: AccountID) throws(StateError) -> [JournalEntry] {
        var result: [JournalEntry] = []
        try db.query("""
            SELECT id, account_id, folder_id, kind, uid, local_name, token, uidnext_before, flags, target_folder_id, detail, created,
                   uidvalidity, size, message_id, digest, normalized_size, normalized_digest
            FROM journal WHERE account_id = ? ORDER BY id
            """, .integer(account.rawValue)) { row throws(StateError) in
            guard let kind = JournalKind(rawValue: row.text(3)) else {
                throw StateError.corrupt(path: path, detail: "unknown journal entry kind \"\(row.text(3))\"")
            }
            result.append(JournalEntry(id: JournalID(rawValue: row.int(0)), account: AccountID(rawValue: row.int(1)),
                                       folder: row.optionalInt(2).map(FolderID.init(rawValue:)), kind: kind,
                                       uid: row.optionalInt(4).map { UID(UInt32(truncatingIfNeeded: $0)) }, localName: row.optionalText(5),
                                       token: row.optionalText(6), uidNextBefore: row.optionalInt(7).map { UID(UInt32(truncatingIfNeeded: $0)) },
                                       flags: row.optionalText(8), targetFolder: row.optionalInt(9).map(FolderID.init(rawValue:)),
                                       detail: row.optionalBlob(10), created: row.int(11),
                                       uidValidity: row.optionalInt(12).map { UIDValidity(UInt32(truncatingIfNeeded: $0)) },
                                       size: row.optionalInt(13), messageID: row.optionalBlob(14), digest: row.optionalBlob(15),
                                       normalizedSize: row.optionalInt(16), normalizedDigest: row.optionalBlob(17)))
        }
        return result
    }

    /// Pending entries per folder, for `status`.
    public func pendingJournalCount(in folder: FolderID) throws(StateError) -> Int {
        var count = 0
        try db.query("SELECT count(*) FROM journal WHERE folder_id = ?", .integer(folder.rawValue)) { row in count = Int(row.int(0)) }
        return count
    }

    // MARK: - POP3

    /// Whether a UIDL was delivered before (then it is never downloaded again).
    public func hasPOP3Message(_ account: AccountID, uidl: [UInt8]) throws(StateError) -> Bool {
        var found = false
        try db.query("SELECT 1 FROM pop3_uidls WHERE account_id = ? AND uidl = ?", .integer(account.rawValue), .blob(uidl)) { _ in found = true }
        return found
    }

    /// Records a delivered POP3 message (commit with `.full` before sending DELE).
    public func recordPOP3Message(_ account: AccountID, _ record: POP3Record) throws(StateError) {
        try db.run("INSERT INTO pop3_uidls (account_id, uidl, local_name, delivered_at, deleted_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   bindings: [.integer(account.rawValue), .blob(record.uidl), .optional(record.localName),
                              .integer(record.deliveredAt), .optional(record.deletedAt)])
    }

    /// Marks UIDLs as deleted on the server (after QUIT confirmed the DELEs).
    public func markPOP3Deleted(_ account: AccountID, uidls: [[UInt8]], at time: Int64) throws(StateError) {
        for uidl in uidls {
            try db.run("UPDATE pop3_uidls SET deleted_at = ? WHERE account_id = ? AND uidl = ?",
                       .integer(time), .integer(account.rawValue), .blob(uidl))
        }
    }

    /// Every POP3 record of an account.
    public func pop3Messages(of account: AccountID) throws(StateError) -> [POP3Record] {
        var result: [POP3Record] = []
        try db.query("SELECT uidl, local_name, delivered_at, deleted_at FROM pop3_uidls WHERE account_id = ?", .integer(account.rawValue)) { row in
            result.append(POP3Record(uidl: row.blob(0), localName: row.optionalText(1), deliveredAt: row.int(2), deletedAt: row.optionalInt(3)))
        }
        return result
    }
}
