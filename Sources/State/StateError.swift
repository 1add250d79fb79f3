/// The state database cannot be used; says which file and what to do.
public enum StateError: Error, Sendable, CustomStringConvertible {
    /// The file is not an SQLite database, or is damaged.
    case corrupt(path: String, detail: String)
    /// A newer mailmirror wrote it.
    case newerSchema(path: String, found: Int, known: Int)
    /// The file or its folder could not be created or opened.
    case cannotOpen(path: String, detail: String)
    /// Another process holds the write lock for longer than the busy timeout.
    case busy(path: String)
    /// Any other SQLite failure, with the statement that failed.
    case sqlite(path: String, code: Int32, message: String, statement: String)

    public var description: String {
        switch self {
        case let .corrupt(path, detail):
            return "state file \(path) is damaged or not a mailmirror database (\(detail)); restore it from a backup, or move it aside (mv \(path) \(path).broken) to start over — mailmirror then re-matches existing mail instead of copying it again"
        case let .newerSchema(path, found, known):
            return "state file \(path) was written by a newer mailmirror (schema \(found); this one knows up to \(known)); upgrade mailmirror"
        case let .cannotOpen(path, detail):
            return "cannot open state file \(path): \(detail); check state_dir and its permissions"
        case let .busy(path):
            return "state file \(path) is locked by another mailmirror process; stop the other one (is the daemon running?) or wait"
        case let .sqlite(path, code, message, statement):
            return "state file \(path): SQLite error \(code) (\(message)) in `\(statement.prefix(80))`"
        }
    }
}
