import IMAP
import Maildir

/// Maps server mailbox names to folder names (component lists) and back, relative to the
/// server's personal namespace (RFC 2342): a prefix such as `INBOX.` is stripped locally and
/// added back on the server, and the server's delimiter becomes the layout's own.
public struct FolderNaming: Sendable, Equatable {
    /// The personal namespace prefix as the server spells it ("" or "INBOX.").
    public var prefix: [UInt8]
    /// The server's hierarchy delimiter, nil for a flat server.
    public var delimiter: UInt8?
    /// UTF8=ACCEPT is enabled: names are UTF-8 on the wire instead of modified UTF-7.
    public var utf8: Bool

    public init(prefix: [UInt8] = [], delimiter: UInt8? = UInt8(ascii: "/"), utf8: Bool = false) {
        self.prefix = prefix
        self.delimiter = delimiter
        self.utf8 = utf8
    }

    /// The folder name of a server mailbox; nil for names outside the personal namespace.
    public func folder(for mailbox: MailboxName) -> [String]? {
        if mailbox.isInbox { return ["INBOX"] }
        var bytes = mailbox.bytes
        if !prefix.isEmpty {
            guard bytes.starts(with: prefix) else { return nil }
            bytes.removeFirst(prefix.count)
        }
        guard !bytes.isEmpty else { return nil }
        let parts = delimiter.map { d in bytes.split(separator: d, omittingEmptySubsequences: false).map(Array.init) } ?? [bytes]
        return parts.map { part in
            let name = MailboxName(bytes: part)
            // Undecodable names keep their raw bytes (as Latin-1-free UTF-8 replacement):
            // never guessed into another existing name.
            return name.decoded(utf8: utf8) ?? String(decoding: part, as: UTF8.self)
        }
    }

    /// The server mailbox of a folder, or nil when a component contains the server's
    /// delimiter (such a folder cannot exist on that server).
    public func mailbox(for folder: [String]) -> MailboxName? {
        if folder == ["INBOX"] { return .inbox }
        var bytes = prefix
        for (i, component) in folder.enumerated() {
            let encoded = utf8 ? Array(component.utf8) : ModifiedUTF7.encode(component)
            if let d = delimiter, encoded.contains(d) { return nil }
            if i > 0, let d = delimiter { bytes.append(d) }
            bytes += encoded
        }
        return MailboxName(bytes: bytes)
    }

    /// The personal namespace prefix and delimiter (RFC 2342), else the delimiter of INBOX.
    public static func discover(_ session: IMAPSession) async throws -> FolderNaming {
        let utf8 = await session.enabled.contains("UTF8=ACCEPT")
        if let ns = try await session.namespace(), let personal = ns.personal.first {
            return FolderNaming(prefix: personal.prefix, delimiter: personal.delimiter, utf8: utf8)
        }
        let inbox = try await session.list(pattern: Array("INBOX".utf8)).first
        return FolderNaming(prefix: [], delimiter: inbox?.delimiter, utf8: utf8)
    }

    /// How a folder is shown and matched against `folders` patterns: components joined by "/".
    public static func displayName(_ folder: [String]) -> String { folder.joined(separator: "/") }
}

/// The account's `folders` patterns: `*` matches anything, `%` anything but the hierarchy
/// separator `/`, a leading `!` excludes; the last pattern that matches decides.
public struct FolderFilter: Sendable {
    public let patterns: [String]
    /// Folders left out whatever the patterns say: the server's views of other folders
    /// that the patterns do not name (see `ViewFolders`).
    public var leftOut: Set<[String]> = []

    public init(_ patterns: [String]) { self.patterns = patterns }

    public func includes(_ folder: [String]) -> Bool {
        if leftOut.contains(folder) { return false }
        let name = Array(FolderNaming.displayName(folder).unicodeScalars)
        var included = false
        for pattern in patterns {
            let negated = pattern.hasPrefix("!")
            let body = Array((negated ? String(pattern.dropFirst()) : pattern).unicodeScalars)
            if Self.matches(body[...], name[...]) { included = !negated }
        }
        return included
    }

    static func matches(_ pattern: ArraySlice<Unicode.Scalar>, _ name: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let p = pattern.first else { return name.isEmpty }
        switch p {
        case "*":
            var rest = name
            while true {
                if matches(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        case "%":
            var rest = name
            while true {
                if matches(pattern.dropFirst(), rest) { return true }
                guard let c = rest.first, c != "/" else { return false }
                rest = rest.dropFirst()
            }
        default:
            guard let c = name.first, c == p else { return false }
            return matches(pattern.dropFirst(), name.dropFirst())
        }
    }
}

/// Maildir letters ⇄ IMAP flags: D \\Draft, F \\Flagged, P $Forwarded, R \\Answered, S \\Seen, T \\Deleted.
public enum FlagMapping {
    static let pairs: [(UInt8, Flag)] = [
        (MessageFlags.draft, .draft), (MessageFlags.flagged, .flagged), (MessageFlags.passed, .forwarded),
        (MessageFlags.replied, .answered), (MessageFlags.seen, .seen), (MessageFlags.trashed, .deleted),
    ]

    /// The six letters as a set.
    public static let six = MessageFlags(letters: MessageFlags.known)

    /// The Maildir letters of IMAP flags (keywords are `FolderKeywords`' business).
    public static func letters(_ flags: [Flag]) -> MessageFlags {
        var result = MessageFlags()
        for (letter, flag) in pairs where flags.contains(flag) { result.insert(letter) }
        return result
    }

    /// The IMAP flags of the letters that have one (other letters stay local).
    public static func imapFlags(_ letters: MessageFlags) -> [Flag] {
        pairs.filter { letters.contains($0.0) }.map(\.1)
    }

    /// The letters whose flag a folder cannot keep: its PERMANENTFLAGS (from SELECT) lists
    /// neither the flag nor `\*` (e.g. `$Forwarded` where no keywords can be made). Such a
    /// flag would be accepted for the session only and be gone at the next pass, which would
    /// then take it away from the file too. No PERMANENTFLAGS at all: every flag is kept.
    public static func unstorable(_ permanentFlags: [Flag]) -> MessageFlags {
        guard !permanentFlags.isEmpty, !permanentFlags.contains(.wildcard) else { return MessageFlags() }
        let kept = Set(permanentFlags.map { $0.rawValue.lowercased() })
        var result = MessageFlags()
        for (letter, flag) in pairs where !kept.contains(flag.rawValue.lowercased()) { result.insert(letter) }
        return result
    }

    /// Only the six mirrored letters of `flags`.
    public static func mirrored(_ flags: MessageFlags) -> MessageFlags {
        var result = MessageFlags()
        for (letter, _) in pairs where flags.contains(letter) { result.insert(letter) }
        return result
    }
}
