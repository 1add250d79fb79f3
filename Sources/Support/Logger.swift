#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// How much a `Logger` says, from least to most.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case error = 0, warn, info, debug

    /// The name used in the configuration file (`log_level`).
    public var name: String {
        switch self {
        case .error: "error"
        case .warn: "warn"
        case .info: "info"
        case .debug: "debug"
        }
    }

    /// The syslog priority journald reads from a `<N>` prefix.
    var syslogPriority: Int {
        switch self {
        case .error: 3
        case .warn: 4
        case .info: 6
        case .debug: 7
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    /// Parses a configuration value; nil when it is not a level name.
    public init?(name: String) {
        guard let level = LogLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = level
    }
}

/// Writes one line per event to standard error.
///
/// Under systemd (`JOURNAL_STREAM` set) each line starts with a `<N>` syslog priority so the
/// journal files it at the right level; otherwise lines read `mailmirror: warning: …`.
/// A logger is a value handed to whoever logs; there is no global one.
public struct Logger: Sendable {
    /// Events above this level are dropped.
    public var level: LogLevel
    /// Whether lines carry `<N>` priority prefixes for journald.
    public var journalPrefixes: Bool
    /// Prepended to every message, e.g. `work/INBOX: `.
    public var context: String

    /// Creates a logger; `journalPrefixes` defaults to whether `JOURNAL_STREAM` is set.
    public init(level: LogLevel = .info, journalPrefixes: Bool? = nil, context: String = "") {
        self.level = level
        self.journalPrefixes = journalPrefixes ?? (getenv("JOURNAL_STREAM") != nil)
        self.context = context
    }

    /// A copy whose messages start with `context: `.
    public func with(context: String) -> Logger {
        var copy = self
        copy.context = self.context.isEmpty ? context + ": " : self.context + context + ": "
        return copy
    }

    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
    public func warn(_ message: @autoclosure () -> String) { log(.warn, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }

    /// A milestone every level shows (syslog priority 5, "notice"): the daemon's "ready".
    public func notice(_ message: String) {
        let line = journalPrefixes ? "<5>\(context)\(message)\n" : "mailmirror: \(context)\(message)\n"
        StandardStream.error.write(line)
    }

    /// Writes `message` at `messageLevel` the first time this process says it (with this
    /// context), at debug level after that: for facts a daemon would otherwise repeat every pass.
    public func once(_ messageLevel: LogLevel, _ message: String) {
        let key = context + message
        let first = saidLines.withLock { $0.insert(key).inserted }
        log(first ? messageLevel : .debug, message)
    }

    /// Writes `message` at `messageLevel` if the logger's level lets it through.
    public func log(_ messageLevel: LogLevel, _ message: @autoclosure () -> String) {
        guard messageLevel <= level else { return }
        let text = message().replacingNewlines()
        let line: String
        if journalPrefixes {
            line = "<\(messageLevel.syslogPriority)>\(context)\(text)\n"
        } else {
            let tag: String
            switch messageLevel {
            case .error: tag = "error: "
            case .warn: tag = "warning: "
            case .info, .debug: tag = ""
            }
            line = "mailmirror: \(tag)\(context)\(text)\n"
        }
        StandardStream.error.write(line)
    }
}

/// What `Logger.once` has said in this process.
private let saidLines = Mutex(Set<String>())

extension String {
    /// One event is one line: embedded line breaks become ` | `.
    fileprivate func replacingNewlines() -> String {
        guard contains(where: { $0 == "\n" || $0 == "\r" }) else { return self }
        return split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " | ")
    }
}

/// Unbuffered, whole-line writes to standard output or standard error.
public enum StandardStream: Sendable {
    case output, error

    /// Writes all of `text` with write(2), retrying on EINTR and short writes.
    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        let fd: Int32 = self == .output ? 1 : 2
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
