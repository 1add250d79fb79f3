// swift-tools-version:6.0
// mailmirror: Maildir <-> IMAP mirror and POP3 drain. No package dependencies by design:
// system libraries come in through system-library targets (see DESIGN.md, "Hard constraints").
import PackageDescription

let package = Package(
    name: "mailmirror",
    products: [
        .executable(name: "mailmirror", targets: ["mailmirror"]),
        .executable(name: "StoreBenchmark", targets: ["StoreBenchmark"]),
        .executable(name: "IMAPFetch", targets: ["IMAPFetch"]),
        .executable(name: "PushLatency", targets: ["PushLatency"]),
        .executable(name: "FuzzIMAP", targets: ["FuzzIMAP"]),
        .executable(name: "FuzzPOP3", targets: ["FuzzPOP3"]),
        .executable(name: "FuzzTOML", targets: ["FuzzTOML"]),
        .executable(name: "FuzzMaildirNames", targets: ["FuzzMaildirNames"]),
        .executable(name: "FuzzAutoconfig", targets: ["FuzzAutoconfig"]),
    ],
    dependencies: [],
    targets: [
        // C module maps and the few macros Swift cannot import.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CResolv"),
        .target(name: "CSupport"),

        // Process-wide plumbing: Dispatch executor, subprocesses, logging.
        .target(name: "Support", dependencies: ["CSupport"]),
        // Non-blocking TCP + TLS on Dispatch sources; knows no mail protocol.
        .target(name: "Transport", dependencies: ["Support", "COpenSSL"]),
        // TOML subset, the configuration model and its validation.
        .target(name: "Config", dependencies: ["Support", "Maildir"]),
        // Where mail lives on disk: layouts, delivery, flags, scans, inotify watching.
        .target(name: "Maildir", dependencies: ["Support", "CSupport"]),
        // What mailmirror remembers between runs: SQLite schema, journal, typed queries.
        .target(name: "State", dependencies: ["Support", "CSQLite"]),
        // IMAP protocol client.
        .target(name: "IMAP", dependencies: ["Transport", "Support", "CZlib"]),
        // POP3 protocol client.
        .target(name: "POP3", dependencies: ["Transport", "Support", "COpenSSL"]),
        // The sync engine and the POP3 drain: plans and applies changes with a journal.
        .target(name: "Sync", dependencies: ["Config", "IMAP", "POP3", "Maildir", "State", "Support", "Transport", "COpenSSL"]),
        // The daemon: account runners, push (NOTIFY/IDLE), local watching, signals, sd_notify.
        .target(name: "Daemon", dependencies: ["Config", "IMAP", "POP3", "Maildir", "State", "Support", "Sync", "Transport"]),
        // `mailmirror init`: account settings from an address (providers, autoconfig, DNS, probes).
        .target(name: "Autoconfig", dependencies: ["Config", "IMAP", "POP3", "Transport", "Support", "CResolv"]),
        // The command-line tool: argument parsing, commands, exit codes.
        .executableTarget(name: "mailmirror", dependencies: ["Config", "Transport", "IMAP", "POP3", "Support", "Sync", "State", "Maildir", "Autoconfig", "Daemon"]),

        // Benchmarks (run by the scripts in Benchmarks/; they print tables, assert nothing).
        .executableTarget(name: "StoreBenchmark", dependencies: ["Maildir", "State", "Support"], path: "Benchmarks/StoreBenchmark"),
        .executableTarget(name: "PushLatency", dependencies: ["IMAP", "Maildir", "Support", "Transport"], path: "Benchmarks/PushLatency"),
        .executableTarget(name: "IMAPFetch", dependencies: ["IMAP", "Maildir", "Support", "Transport"], path: "Benchmarks/IMAPFetch"),

        // Fuzz targets (scripts/fuzz-imap builds them with libFuzzer; a plain build replays files).
        .target(name: "CFuzz", path: "Fuzz/CFuzz"),
        .executableTarget(name: "FuzzIMAP", dependencies: ["IMAP", "Support", "CFuzz"], path: "Fuzz/FuzzIMAP"),
        .executableTarget(name: "FuzzPOP3", dependencies: ["POP3", "CFuzz"], path: "Fuzz/FuzzPOP3"),
        .executableTarget(name: "FuzzTOML", dependencies: ["Config", "CFuzz"], path: "Fuzz/FuzzTOML"),
        .executableTarget(name: "FuzzMaildirNames", dependencies: ["Maildir", "CFuzz"], path: "Fuzz/FuzzMaildirNames"),
        .executableTarget(name: "FuzzAutoconfig", dependencies: ["Autoconfig", "CFuzz"], path: "Fuzz/FuzzAutoconfig"),

        // Test helpers: the real Dovecot fixture, subprocess running, temp dirs.
        .target(name: "TestSupport", dependencies: ["Support", "CSupport"], path: "Tests/TestSupport"),
        // The fault-injecting proxy of TestSupport as a command, for scripts (scripts/torture).
        .executableTarget(name: "faultproxy", dependencies: ["TestSupport"], path: "Tests/FaultProxyTool"),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "IMAP", "POP3", "TestSupport"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "mailmirror"]),
        .testTarget(name: "IMAPTests", dependencies: ["IMAP", "Support", "TestSupport", "Transport", "IMAPFetch"]),
        .testTarget(name: "SyncTests", dependencies: ["Sync", "Config", "IMAP", "POP3", "Maildir", "State", "Support", "Transport", "TestSupport", "mailmirror"]),
        .testTarget(name: "AutoconfigTests", dependencies: ["Autoconfig", "Config", "TestSupport", "mailmirror"],
                    exclude: ["https-server.py", "Samples"]),
        .testTarget(name: "DaemonTests", dependencies: ["IMAP", "Maildir", "Support", "Transport", "TestSupport", "mailmirror"]),
        .testTarget(name: "MaildirTests", dependencies: ["Maildir", "TestSupport"]),
        .testTarget(name: "StateTests", dependencies: ["State", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
