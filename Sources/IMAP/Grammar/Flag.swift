/// A message flag or keyword (RFC 3501 §2.3.2): `\Seen`, `$Forwarded`, `Junk`.
///
/// System flags (with a backslash) compare case-insensitively, so they are stored in their
/// canonical spelling; keywords are kept exactly as the server sent them.
public struct Flag: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ raw: String) {
        if raw.hasPrefix("\\"), let canonical = Flag.system.first(where: { $0.lowercased() == raw.lowercased() }) {
            rawValue = canonical
        } else {
            rawValue = raw
        }
    }

    public var description: String { rawValue }

    private static let system = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent", "\\*"]

    public static let seen = Flag("\\Seen")
    public static let answered = Flag("\\Answered")
    public static let flagged = Flag("\\Flagged")
    public static let deleted = Flag("\\Deleted")
    public static let draft = Flag("\\Draft")
    public static let recent = Flag("\\Recent")
    /// `$Forwarded` (RFC 5550), Maildir's `P`.
    public static let forwarded = Flag("$Forwarded")
    /// `\*` in PERMANENTFLAGS: new keywords may be created.
    public static let wildcard = Flag("\\*")
}
