#if canImport(Glibc)
import Glibc
#endif
import CSQLite

/// A thin SQLite connection: prepared statements cached by SQL text, typed binding and
/// reading, transactions that roll back on throw. Only `StateStore` uses it; no SQL
/// leaves this target.
final class Database {
    let path: String
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var transactionDepth = 0

    init(path: String) throws(StateError) {
        self.path = path
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw StateError.cannotOpen(path: path, detail: message)
        }
        db = handle
        sqlite3_busy_timeout(handle, 10_000)
        sqlite3_extended_result_codes(handle, 1)
        if path != ":memory:" { csqlite_keep_wal_on_close(handle) }
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
    }

    /// Checkpoints the WAL into the database and truncates it when it is larger than
    /// `limit` bytes; returns whether it did. Never waits: with another connection active
    /// (a worker, another process) the WAL stays as it is for a later call.
    @discardableResult
    func truncateLog(ifLargerThan limit: off_t) -> Bool {
        var info = stat()
        guard path != ":memory:", stat(path + "-wal", &info) == 0, info.st_size > limit else { return false }
        sqlite3_busy_timeout(db, 0)
        defer { sqlite3_busy_timeout(db, 10_000) }
        guard sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil) == SQLITE_OK else { return false }
        // The first commit into an empty WAL writes its header and fsyncs it (and, a
        // connection's first fsync, the directory): done now, by rewriting the header page
        // as it is, rather than in the middle of the pass.
        var version: Int64 = 0
        try? query("PRAGMA user_version") { row in version = row.int(0) }
        try? execute("PRAGMA user_version = \(version)")
        return true
    }

    /// Runs SQL text that returns no rows (pragmas, DDL); several statements allowed.
    func execute(_ sql: String) throws(StateError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorMessage)
            throw error(rc, message: message, sql: sql)
        }
    }

    func error(_ rc: Int32, message: String? = nil, sql: String) -> StateError {
        let primary = rc & 0xff
        let text = message ?? String(cString: sqlite3_errmsg(db))
        if primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT { return .corrupt(path: path, detail: text) }
        if primary == SQLITE_BUSY || primary == SQLITE_LOCKED { return .busy(path: path) }
        return .sqlite(path: path, code: rc, message: text, statement: sql)
    }

    /// A cached prepared statement with `bindings` bound, for `step`/`query`.
    private func prepare(_ sql: String, _ bindings: [SQLValue]) throws(StateError) -> OpaquePointer {
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
        } else {
            var prepared: OpaquePointer?
            let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
            guard rc == SQLITE_OK, let prepared else { throw error(rc, sql: sql) }
            statements[sql] = prepared
            statement = prepared
        }
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (index, value) in bindings.enumerated() {
            let i = Int32(index + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, i)
            case .integer(let v): rc = sqlite3_bind_int64(statement, i, v)
            case .text(let s): rc = sqlite3_bind_text(statement, i, s, -1, csqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(statement, i, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), csqlite_transient()) }
            }
            if rc != SQLITE_OK { throw error(rc, sql: sql) }
        }
        return statement
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    func run(_ sql: String, _ bindings: SQLValue...) throws(StateError) -> Int {
        try run(sql, bindings: bindings)
    }

    @discardableResult
    func run(_ sql: String, bindings: [SQLValue]) throws(StateError) -> Int {
        let statement = try prepare(sql, bindings)
        defer { sqlite3_reset(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc, sql: sql) }
        return Int(sqlite3_changes(db))
    }

    /// Runs a query, calling `row` for each result row.
    func query(_ sql: String, _ bindings: SQLValue..., row: (Row) throws(StateError) -> Void) throws(StateError) {
        let statement = try prepare(sql, bindings)
        defer { sqlite3_reset(statement) }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, sql: sql) }
            try row(Row(statement: statement))
        }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }

    /// Replaces this (in-memory) database with a copy of the file at `source`.
    func restore(from source: String) throws(StateError) {
        var other: OpaquePointer?
        guard sqlite3_open_v2(source, &other, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let other else {
            sqlite3_close(other)
            throw StateError.cannotOpen(path: source, detail: "cannot open for a dry run")
        }
        defer { sqlite3_close(other) }
        guard let backup = sqlite3_backup_init(db, "main", other, "main") else {
            throw error(sqlite3_errcode(db), sql: "backup")
        }
        let rc = sqlite3_backup_step(backup, -1)
        sqlite3_backup_finish(backup)
        if rc != SQLITE_DONE { throw error(rc, sql: "backup") }
    }

    /// Runs `body` in a write transaction (BEGIN IMMEDIATE: the one writer takes the lock
    /// up front); commits when it returns, rolls back when it throws. Nested calls join the
    /// outer transaction.
    /// Runs `body` in one read transaction (`BEGIN` deferred: a snapshot, no write lock),
    /// so that many small reads take SQLite's WAL locks once instead of once each.
    func reading<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 { return try body() }
        try execute("BEGIN")
        transactionDepth = 1
        defer {
            transactionDepth = 0
            try? execute("COMMIT")   // nothing written: ending the snapshot cannot lose anything
        }
        return try body()
    }

    func transaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 {
            transactionDepth += 1
            defer { transactionDepth -= 1 }
            return try body()
        }
        try execute("BEGIN IMMEDIATE")
        transactionDepth = 1
        do {
            let result = try body()
            transactionDepth = 0
            try execute("COMMIT")
            return result
        } catch {
            transactionDepth = 0
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A value bound to or read from SQL.
enum SQLValue {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])

    static func optional(_ v: Int64?) -> SQLValue { v.map { .integer($0) } ?? .null }
    static func optional(_ v: String?) -> SQLValue { v.map { .text($0) } ?? .null }
    static func optional(_ v: [UInt8]?) -> SQLValue { v.map { .blob($0) } ?? .null }
}

/// One result row; columns by index.
struct Row {
    let statement: OpaquePointer

    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(statement, i) == SQLITE_NULL }
    func int(_ i: Int32) -> Int64 { sqlite3_column_int64(statement, i) }
    func optionalInt(_ i: Int32) -> Int64? { isNull(i) ? nil : int(i) }
    func text(_ i: Int32) -> String {
        guard let p = sqlite3_column_text(statement, i) else { return "" }
        return String(cString: p)
    }
    func optionalText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
    func blob(_ i: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, i))
        guard count > 0, let p = sqlite3_column_blob(statement, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }
    func optionalBlob(_ i: Int32) -> [UInt8]? { isNull(i) ? nil : blob(i) }
}
