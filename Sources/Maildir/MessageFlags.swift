/// The flags of a Maildir message: the letters of its `:2,` info suffix.
///
/// Kept as a sorted set of ASCII letters, so letters mailmirror does not know (other
/// programs' flags, e.g. lowercase keywords) survive a rename untouched.
/// - SeeAlso: https://cr.yp.to/proto/maildir.html ("info semantics")
public struct MessageFlags: Sendable, Hashable, CustomStringConvertible {
    /// Bit i set = ASCII letter with code 64 + i … stored as a 128-bit set of bytes.
    private var bits: (UInt64, UInt64) = (0, 0)

    public static let draft: UInt8 = UInt8(ascii: "D")
    public static let flagged: UInt8 = UInt8(ascii: "F")
    public static let passed: UInt8 = UInt8(ascii: "P")
    public static let replied: UInt8 = UInt8(ascii: "R")
    public static let seen: UInt8 = UInt8(ascii: "S")
    public static let trashed: UInt8 = UInt8(ascii: "T")
    /// The six letters with an IMAP meaning, in ASCII order.
    public static let known: [UInt8] = [draft, flagged, passed, replied, seen, trashed]

    public init() {}

    /// Parses letters (the part after `:2,`); bytes that are not printable ASCII are ignored.
    public init<S: Sequence>(letters: S) where S.Element == UInt8 {
        for b in letters where b > 32 && b < 127 && b != UInt8(ascii: ",") { insert(b) }
    }

    /// Convenience for tests and literals: `MessageFlags("FS")`.
    public init(_ letters: String) { self.init(letters: letters.utf8) }

    public func contains(_ letter: UInt8) -> Bool {
        letter < 64 ? bits.0 & (1 << UInt64(letter)) != 0 : bits.1 & (1 << UInt64(letter - 64)) != 0
    }

    public mutating func insert(_ letter: UInt8) {
        guard letter < 128 else { return }
        if letter < 64 { bits.0 |= 1 << UInt64(letter) } else { bits.1 |= 1 << UInt64(letter - 64) }
    }

    public mutating func remove(_ letter: UInt8) {
        guard letter < 128 else { return }
        if letter < 64 { bits.0 &= ~(1 << UInt64(letter)) } else { bits.1 &= ~(1 << UInt64(letter - 64)) }
    }

    public var isEmpty: Bool { bits.0 == 0 && bits.1 == 0 }

    /// The letters in ASCII order, as the Maildir spec requires.
    public var letters: [UInt8] { (0..<128).compactMap { contains(UInt8($0)) ? UInt8($0) : nil } }

    /// The letters as text ("FRS").
    public var description: String { String(decoding: letters, as: UTF8.self) }

    public static func == (a: MessageFlags, b: MessageFlags) -> Bool { a.bits == b.bits }
    public func hash(into hasher: inout Hasher) { hasher.combine(bits.0); hasher.combine(bits.1) }
}

/// Which subdirectory of a folder a message file is in.
public enum MaildirSubdirectory: String, Sendable {
    case new, cur
}

/// A message file name split into its unique base name and its flags.
///
/// The base name (everything before `:2,`) is the message's identity: a reader that
/// changes flags renames the file but keeps it.
public struct MessageFileName: Sendable, Hashable {
    /// The unique part, including any `,S=size` field.
    public var baseName: String
    public var flags: MessageFlags
    /// Whether the name carries an info suffix (`:2,…`); files in `new/` usually do not.
    public var hasInfo: Bool

    public init(baseName: String, flags: MessageFlags, hasInfo: Bool) {
        self.baseName = baseName
        self.flags = flags
        self.hasInfo = hasInfo
    }

    /// Splits a file name found on disk.
    public init(parsing name: String) {
        let bytes = Array(name.utf8)
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")), bytes[colon...].starts(with: Array(":2,".utf8)) {
            baseName = String(decoding: bytes[..<colon], as: UTF8.self)
            flags = MessageFlags(letters: bytes[(colon + 3)...])
            hasInfo = true
        } else if let colon = name.lastIndex(of: ":") {
            // Experimental ":1," or junk info: identity is still what precedes the colon.
            baseName = String(name[..<colon])
            flags = MessageFlags()
            hasInfo = false
        } else {
            baseName = name
            flags = MessageFlags()
            hasInfo = false
        }
    }

    /// Splits a file name's bytes without copying them (the scan's hot path): the length of
    /// the base name, the flags, whether there is an info suffix, and the `,S=` size.
    static func split(_ bytes: UnsafeBufferPointer<UInt8>) -> (baseLength: Int, flags: MessageFlags, hasInfo: Bool, size: Int64?) {
        var baseLength = bytes.count
        var flags = MessageFlags()
        var hasInfo = false
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            baseLength = colon
            if bytes.count - colon >= 3, bytes[colon + 1] == UInt8(ascii: "2"), bytes[colon + 2] == UInt8(ascii: ",") {
                flags = MessageFlags(letters: UnsafeBufferPointer(rebasing: bytes[(colon + 3)...]))
                hasInfo = true
            }
        }
        var size: Int64?
        var i = 0
        while i + 3 <= baseLength {
            if bytes[i] == UInt8(ascii: ","), bytes[i + 1] == UInt8(ascii: "S"), bytes[i + 2] == UInt8(ascii: "=") {
                var value: Int64 = 0
                var j = i + 3
                while j < baseLength, bytes[j] >= 48, bytes[j] <= 57, value < Int64.max / 10 - 10 {
                    value = value * 10 + Int64(bytes[j] - 48)
                    j += 1
                }
                if j > i + 3 { size = value }
                break
            }
            i += 1
        }
        return (baseLength, flags, hasInfo, size)
    }

    /// The file name for a message with `flags` in `subdirectory`: no suffix in `new/`
    /// when there are no flags, `:2,FLAGS` otherwise. A base name with a colon of its own (a
    /// foreign file's) keeps the suffix in `new/` too: without it, the name would be read
    /// back with another base name (found by fuzzing, Fuzz/corpus/maildir/colon-in-base-name).
    public static func fileName(baseName: String, flags: MessageFlags, in subdirectory: MaildirSubdirectory) -> String {
        if subdirectory == .new && flags.isEmpty && !baseName.utf8.contains(UInt8(ascii: ":")) { return baseName }
        return baseName + ":2," + flags.description
    }

    /// The size recorded in the name (`,S=1234`), if any.
    public var recordedSize: Int64? {
        let bytes = Array(baseName.utf8)
        var i = 0
        while i + 3 <= bytes.count {
            if bytes[i] == UInt8(ascii: ","), bytes[i + 1] == UInt8(ascii: "S"), bytes[i + 2] == UInt8(ascii: "=") {
                let digits = bytes[(i + 3)...].prefix(while: { $0 >= 48 && $0 <= 57 })
                return digits.isEmpty ? nil : Int64(String(decoding: digits, as: UTF8.self))
            }
            i += 1
        }
        return nil
    }
}
