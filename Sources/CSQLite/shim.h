#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast macro Swift cannot import.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

/// Keeps the WAL when the last connection closes, without checkpointing it (sqlite3_db_config
/// is variadic, which Swift cannot call): a short-lived process then pays no checkpoint, no
/// fsyncs and no re-creation of the WAL at each run; checkpoints still happen as it grows.
static inline void csqlite_keep_wal_on_close(sqlite3 *db) {
    int one = 1;
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
}
