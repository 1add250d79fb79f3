/// How folder names map to directories under an account's Maildir root
/// (DESIGN.md, "Maildir (contract)" and "Names").
///
/// A folder name is a sequence of components: the server's hierarchy delimiter is already
/// split off, and modified UTF-7 already decoded. Each component is escaped on its own
/// (see `FolderNameEscaping`), so no name can climb out of the root or collide with the
/// `cur`/`new`/`tmp` directories of a folder.
public enum MaildirLayout: String, Sendable, CaseIterable {
    /// `Archive/2024` is `<root>/Archive/2024`; INBOX is `<root>/INBOX`.
    case fs
    /// `Archive/2024` is `<root>/.Archive.2024`; INBOX is `<root>` itself.
    case maildirPlusPlus = "maildir++"

    /// The directory of `folder`, relative to the root ("" for the root itself).
    ///
    /// - Precondition: `folder` is not empty.
    public func relativePath(for folder: [String]) -> String {
        precondition(!folder.isEmpty, "a folder name has at least one component")
        switch self {
        case .fs:
            return folder.map { FolderNameEscaping.escape($0, escapeDots: false) }.joined(separator: "/")
        case .maildirPlusPlus:
            if folder == ["INBOX"] { return "" }
            return "." + folder.map { FolderNameEscaping.escape($0, escapeDots: true) }.joined(separator: ".")
        }
    }

    /// The folder name a relative directory path stands for, or nil when the path is not
    /// one this layout produces (such directories are skipped, never guessed at).
    public func folder(forRelativePath path: String) -> [String]? {
        switch self {
        case .fs:
            // Split on the byte, not the Character: "/" or "." followed by a combining mark
            // is one Character, and would hide a separator (fuzz finding, Fuzz/corpus/maildir).
            let parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            guard !parts.isEmpty else { return nil }
            var components: [String] = []
            for part in parts {
                guard let c = FolderNameEscaping.unescape(String(decoding: part, as: UTF8.self), dotsEscaped: false) else { return nil }
                components.append(c)
            }
            return components
        case .maildirPlusPlus:
            if path.isEmpty { return ["INBOX"] }
            let bytes = Array(path.utf8)
            guard bytes.first == UInt8(ascii: "."), !bytes.contains(UInt8(ascii: "/")) else { return nil }
            var components: [String] = []
            for part in bytes.dropFirst().split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
                guard let c = FolderNameEscaping.unescape(String(decoding: part, as: UTF8.self), dotsEscaped: true) else { return nil }
                components.append(c)
            }
            return components
        }
    }
}

/// The reversible escaping of one folder-name component into a safe path component.
///
/// `%` becomes `%25`; `/`, NUL, control characters (U+0000–U+001F, U+007F) become `%XX`
/// of their byte; `.` and `..` become `%2E` and `%2E%2E`, and in `fs` any leading dot is
/// `%2E` (so a folder never hides as a dot-directory such as `.notmuch`); in `maildir++`
/// every `.` is `%2E` (the dot is the hierarchy separator there); the names `cur`, `new`
/// and `tmp` become `%63ur`, `%6Eew`, `%74mp` (they are a folder's own subdirectories);
/// the empty name is a lone `%`. Everything else (UTF-8 letters, spaces, `&`) stays as is.
public enum FolderNameEscaping {
    /// Escapes one component.
    public static func escape(_ component: String, escapeDots: Bool) -> String {
        if component.isEmpty { return "%" }
        if ["cur", "new", "tmp"].contains(where: { component.utf8.elementsEqual($0.utf8) }) {
            return "%" + hex(component.utf8.first!) + component.dropFirst()
        }
        var out = ""
        var isFirst = true
        for scalar in component.unicodeScalars {
            defer { isFirst = false }
            guard scalar.isASCII else {
                out.unicodeScalars.append(scalar)
                continue
            }
            let b = UInt8(scalar.value)
            let mustEscape = b == UInt8(ascii: "%") || b == UInt8(ascii: "/") || b < 0x20 || b == 0x7F
                || (b == UInt8(ascii: ".") && (escapeDots || isFirst || component.utf8.elementsEqual("..".utf8)))
            if mustEscape { out += "%" + hex(b) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Reverses `escape`; nil for text `escape` never produces (a stray `%`, a separator,
    /// an unescaped `.`/`..`), so foreign directories are not mistaken for folders.
    public static func unescape(_ text: String, dotsEscaped: Bool) -> String? {
        // Byte tests, not Character ones: ".\u{301}" is one Character that is not ".".
        let utf8 = Array(text.utf8)
        let dot = UInt8(ascii: ".")
        if utf8 == [UInt8(ascii: "%")] { return "" }
        if utf8.isEmpty || utf8 == [dot] || utf8 == [dot, dot] || utf8.contains(UInt8(ascii: "/")) { return nil }
        if dotsEscaped && utf8.contains(dot) { return nil }
        if !dotsEscaped && utf8.first == dot { return nil }
        if utf8 == Array("cur".utf8) || utf8 == Array("new".utf8) || utf8 == Array("tmp".utf8) { return nil }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let b = iterator.popFirst() {
            if b == UInt8(ascii: "%") {
                guard iterator.count >= 2, let v = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                iterator = iterator.dropFirst(2)
            } else {
                if b < 0x20 || b == 0x7F { return nil }
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }
}
