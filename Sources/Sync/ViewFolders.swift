import IMAP

/// Server folders that only show messages kept in other folders: special-use `\All`
/// (RFC 6154; Gmail's "[Gmail]/All Mail"), `\Important` (RFC 8457; Gmail's "Important") and
/// `\Flagged` (RFC 6154; Gmail's "Starred"). Mirroring them would store every message again
/// (on Gmail, All Mail holds a copy of everything in the label folders), so they are left
/// out unless a `folders` pattern without wildcards names one exactly.
/// See docs/servers.md ("Gmail and other label servers").
public enum ViewFolders {
    /// The attributes that make a folder a view, with what the view shows (for messages).
    public static let attributes: [(attribute: String, shows: String)] = [
        ("\\All", "every message of the account"),
        ("\\Important", "the messages the server judged important"),
        ("\\Flagged", "the flagged (starred) messages"),
    ]

    /// One view folder that is left out, and why.
    public struct LeftOut: Sendable, Equatable {
        public var folder: [String]
        public var attribute: String
        /// A sentence for the log and `check-config`.
        public var reason: String
    }

    /// The view folders of `entries` that `patterns` do not name exactly.
    public static func leftOut(_ entries: [ListEntry], naming: FolderNaming, patterns: [String]) -> [LeftOut] {
        var result: [LeftOut] = []
        for entry in entries {
            guard let view = attributes.first(where: { entry.has($0.attribute) }),
                  let folder = naming.folder(for: entry.name), folder != ["INBOX"] else { continue }
            let name = FolderNaming.displayName(folder)
            if namedExactly(name, in: patterns) { continue }
            result.append(LeftOut(folder: folder, attribute: view.attribute, reason:
                "not mirrored: the server marks it \(view.attribute), a view of \(view.shows) that other folders hold already; "
                + "to mirror it anyway, add \"\(name)\" to `folders`"))
        }
        return result
    }

    /// Whether a pattern without wildcards names the folder (the last such pattern decides,
    /// so `"!X"` after `"X"` still leaves it out).
    static func namedExactly(_ name: String, in patterns: [String]) -> Bool {
        var named = false
        for pattern in patterns {
            let negated = pattern.hasPrefix("!")
            let body = negated ? String(pattern.dropFirst()) : pattern
            if body == name { named = !negated }
        }
        return named
    }
}
