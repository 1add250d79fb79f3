/// The schema, as forward migrations: migration i takes `user_version` from i to i + 1.
///
/// Never edit a shipped migration; append a new one. `PRAGMA user_version` records the
/// version, so an older mailmirror refuses a newer file instead of misreading it.
enum Schema {
    static let migrations: [String] = [
        // 0 -> 1
        """
        CREATE TABLE accounts (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            protocol    TEXT NOT NULL,
            last_sync   INTEGER,          -- unix seconds of the last pass that completed
            last_error  TEXT
        );
        CREATE TABLE folders (
            id             INTEGER PRIMARY KEY,
            account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            remote_name    BLOB NOT NULL,     -- the server's mailbox name, as its bytes
            local_name     TEXT NOT NULL,     -- the folder name's canonical (escaped fs) path
            uidvalidity    INTEGER,
            uidnext        INTEGER,           -- UIDNEXT seen at the last pass
            highestmodseq  INTEGER,           -- HIGHESTMODSEQ seen at the last pass
            local_marker   TEXT,              -- what the local side looked like (fast path)
            last_sync      INTEGER,
            last_error     TEXT,
            UNIQUE (account_id, remote_name)
        );
        CREATE TABLE pairs (
            id             INTEGER PRIMARY KEY,
            folder_id      INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            uid            INTEGER,           -- NULL until an upload's UID is known
            local_name     TEXT,              -- Maildir base name; NULL until downloaded
            flags          TEXT NOT NULL DEFAULT '',  -- flags both sides last agreed on (Maildir letters)
            size           INTEGER,           -- RFC822.SIZE (CRLF size)
            message_id     BLOB,
            internal_date  INTEGER
        );
        -- uid 0 / local_name '' mark a side gone but kept by policy (never unique).
        CREATE UNIQUE INDEX pairs_by_uid ON pairs (folder_id, uid) WHERE uid IS NOT NULL AND uid != 0;
        CREATE UNIQUE INDEX pairs_by_local ON pairs (folder_id, local_name) WHERE local_name IS NOT NULL AND local_name != '';
        CREATE TABLE journal (
            id                INTEGER PRIMARY KEY,
            account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            folder_id         INTEGER REFERENCES folders(id) ON DELETE CASCADE,
            kind              TEXT NOT NULL,
            uid               INTEGER,
            local_name        TEXT,
            token             TEXT,           -- recovery token: a download's Maildir unique name (before 7 also an upload's X-Mailmirror-Token)
            uidnext_before    INTEGER,        -- UIDNEXT before an APPEND: search from here
            flags             TEXT,
            target_folder_id  INTEGER REFERENCES folders(id) ON DELETE CASCADE,
            detail            BLOB,           -- kind-specific extra (e.g. a POP3 UIDL)
            created           INTEGER NOT NULL
        );
        CREATE INDEX journal_by_account ON journal (account_id, id);
        CREATE TABLE pop3_uidls (
            account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            uidl          BLOB NOT NULL,
            local_name    TEXT,
            delivered_at  INTEGER NOT NULL,
            deleted_at    INTEGER,            -- when DELE was confirmed by QUIT
            PRIMARY KEY (account_id, uidl)
        ) WITHOUT ROWID;
        """,
        // 1 -> 2: messages left on the server by max_message_size / max_age, for `status`.
        """
        CREATE TABLE skipped (
            folder_id  INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            uid        INTEGER NOT NULL,
            size       INTEGER,
            reason     TEXT NOT NULL,
            PRIMARY KEY (folder_id, uid)
        ) WITHOUT ROWID;
        """,
        // 2 -> 3: the unique indexes are partial (they skip the "kept by policy" markers), so
        // a query by folder alone could not use them and scanned every pair of every folder.
        """
        CREATE INDEX pairs_by_folder ON pairs (folder_id, uid);
        CREATE INDEX journal_by_folder ON journal (folder_id);
        """,
        // 3 -> 4: local messages the server refused (its NO, e.g. a size limit), for `status`
        // and so that they are not sent again at every pass while the file stays the same.
        """
        CREATE TABLE refused (
            folder_id   INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            local_name  TEXT NOT NULL,         -- the base name
            size        INTEGER NOT NULL,      -- of the file when refused: a changed file is tried again
            reason      TEXT NOT NULL,         -- the server's words
            refused_at  INTEGER NOT NULL,
            PRIMARY KEY (folder_id, local_name)
        ) WITHOUT ROWID;
        """,
        // 4 -> 5: server messages whose FETCH made the server give up (BYE or NO): fetched one
        // at a time after the others ("suspect"), and left on the server once one alone
        // failed ("failed"), so that one message cannot hold back a folder pass after pass.
        """
        CREATE TABLE unfetchable (
            folder_id  INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            uid        INTEGER NOT NULL,
            failed     INTEGER NOT NULL,       -- 0: suspect (in a batch that failed); 1: failed alone
            reason     TEXT NOT NULL,          -- the server's words
            PRIMARY KEY (folder_id, uid)
        ) WITHOUT ROWID;
        """,
        // 5 -> 6: which server mailbox an account's state describes ("imap://user@host"), so
        // that an account pointed at another mailbox does not take its UIDs or UIDLs for the
        // old one's. NULL: not recorded yet (the next pass records it).
        """
        ALTER TABLE accounts ADD COLUMN mailbox TEXT;
        """,
        // 6 -> 7: an upload is found again after a lost APPEND reply by what was sent — its
        // octet count, Message-ID and SHA-256 — among the UIDs from `uidnext_before` of the
        // mailbox with this UIDVALIDITY; nothing is added to the message any more (DESIGN
        // invariant 5; docs/recovery.md). Entries written before keep their `token`.
        """
        ALTER TABLE journal ADD COLUMN uidvalidity INTEGER;
        ALTER TABLE journal ADD COLUMN size INTEGER;
        ALTER TABLE journal ADD COLUMN message_id BLOB;
        ALTER TABLE journal ADD COLUMN digest BLOB;
        """,
        // 7 -> 8: local folders that cannot exist on the account's server (a name holding
        // its hierarchy delimiter, e.g. "v1.0" on Courier), as the last pass found them,
        // for `status`: nothing is done to them until they are renamed. And an upload is
        // also known by the size and digest of its bytes as Courier stores them (bare CRs
        // dropped, an open last line ended) when those differ (docs/servers.md).
        """
        ALTER TABLE journal ADD COLUMN normalized_size INTEGER;
        ALTER TABLE journal ADD COLUMN normalized_digest BLOB;
        CREATE TABLE unmirrorable (
            account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            local_name  TEXT NOT NULL,         -- the folder name's canonical (escaped fs) path
            reason      TEXT NOT NULL,
            PRIMARY KEY (account_id, local_name)
        ) WITHOUT ROWID;
        """,
        // 8 -> 9: a folder's keywords (docs/keywords.md): the name of each code the engine
        // gives them in `MessageFlags` — the letters a…z of the folder's dovecot-keywords
        // (97…122) and slots that no file name carries (128…255) — so that the agreed flags
        // of a pair ("FSa 128") keep their meaning. And the keywords the server folder
        // cannot keep (PERMANENTFLAGS without \*) that local messages carry, for `status`;
        // with keywords = "notmuch", the database revision whose changes were taken.
        """
        CREATE TABLE keywords (
            folder_id  INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            code       INTEGER NOT NULL,
            name       TEXT NOT NULL,
            PRIMARY KEY (folder_id, code)
        ) WITHOUT ROWID;
        ALTER TABLE folders ADD COLUMN unstorable_keywords TEXT;
        ALTER TABLE accounts ADD COLUMN notmuch_revision TEXT;  -- "uuid n": notmuch's database as the last pass read it
        """,
    ]

    /// The version this build writes.
    static var currentVersion: Int { migrations.count }
}
