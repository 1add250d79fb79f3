/// The flags of a Maildir message: the letters of its `:2,` info suffix — and, in the
/// engine, a folder's keywords that no file name can carry.
///
/// Kept as a set of byte codes, so letters mailmirror does not know (other programs'
/// flags) survive a rename untouched. Codes 33…126 are the printable ASCII letters of file
/// names (`a`…`z` stand for a folder's keywords in Dovecot's scheme: `FolderKeywords`);
/// codes 128…255 are keyword slots that live in the state only (a folder's 27th keyword and
/// on, or every keyword when they are notmuch tags; docs/keywords.md). `description` — what
/// a file name holds — never shows them; `stored` (the state's form) does.
/// - SeeAlso: https://cr.yp.to/proto/maildir.html ("info semantics")
public struct MessageFlags: Sendable, Hashable, CustomStringConvertible {
    /// Bit i of word i / 64 set = code i is in the set.
    private var bits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public static let draft: UInt8 = UInt8(ascii: "D")
    public static let flagged: UInt8 = UInt8(ascii: "F")
    public static let passed: UInt8 = UInt8(ascii: "P")
    public static let replied: UInt8 = UInt8(ascii: "R")
    public static let seen: UInt8 = UInt8(ascii: "S")
    public static let trashed: UInt8 = UInt8(ascii: "T")
    /// The six letters with an IMAP meaning, in ASCII order.
    public static let known: [UInt8] = [draft, flagged, passed, replied, seen, trashed]
    /// The first code of a keyword slot that lives in the state only (never in a file name).
    public static let firstStateSlot: UInt8 = 128

    public init() {}

    /// Parses letters (the part after `:2,`); bytes that are not printable ASCII are ignored.
    public init<S: Sequence>(letters: S) where S.Element == UInt8 {
        for b in letters where b > 32 && b < 127 && b != UInt8(ascii: ",") { insert(b) }
    }

    /// Parses the state's form (`stored`): letters, then the state-only slots as numbers
    /// after a space (`"FSa 128 131"`). Also reads plain letters: `MessageFlags("FS")`.
    public init(_ text: String) {
        let bytes = Array(text.utf8)
        let space = bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
        self.init(letters: bytes[..<space])
        for part in bytes[space...].split(separator: UInt8(ascii: " ")) {
            if let n = Int(String(decoding: part, as: UTF8.self)), n >= Int(Self.firstStateSlot), n <= 255 { insert(UInt8(n)) }
        }
    }

    public func contains(_ code: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(code & 63)
        switch code >> 6 {
        case 0: return bits.0 & bit != 0
        case 1: return bits.1 & bit != 0
        case 2: return bits.2 & bit != 0
        default: return bits.3 & bit != 0
        }
    }

    public mutating func insert(_ code: UInt8) {
        let bit = UInt64(1) << UInt64(code & 63)
        switch code >> 6 {
        case 0: bits.0 |= bit
        case 1: bits.1 |= bit
        case 2: bits.2 |= bit
        default: bits.3 |= bit
        }
    }

    public mutating func remove(_ code: UInt8) {
        let bit = ~(UInt64(1) << UInt64(code & 63))
        switch code >> 6 {
        case 0: bits.0 &= bit
        case 1: bits.1 &= bit
        case 2: bits.2 &= bit
        default: bits.3 &= bit
        }
    }

    public var isEmpty: Bool { bits.0 == 0 && bits.1 == 0 && bits.2 == 0 && bits.3 == 0 }

    /// Every code, letters in ASCII order (as the Maildir spec requires) then state-only slots.
    public var letters: [UInt8] { (0..<256).compactMap { contains(UInt8($0)) ? UInt8($0) : nil } }

    /// The state-only slots (codes 128…255) of this set.
    public var stateSlots: [UInt8] { (128..<256).compactMap { contains(UInt8($0)) ? UInt8($0) : nil } }

    /// The set without its state-only slots: what a file name can carry.
    public var fileLetters: MessageFlags {
        var copy = self
        copy.bits.2 = 0
        copy.bits.3 = 0
        return copy
    }

    /// The letters as a file name holds them ("FRS"); state-only slots are not shown.
    public var description: String { String(decoding: (0..<128).compactMap { contains(UInt8($0)) ? UInt8($0) : nil }, as: UTF8.self) }

    /// The state's form: the letters, then any state-only slots as numbers after a space.
    public var stored: String {
        let slots = stateSlots
        return slots.isEmpty ? description : description + " " + slots.map(String.init).joined(separator: " ")
    }

    /// The codes in both sets.
    public func intersection(_ other: MessageFlags) -> MessageFlags {
        var r = self
        r.bits = (bits.0 & other.bits.0, bits.1 & other.bits.1, bits.2 & other.bits.2, bits.3 & other.bits.3)
        return r
    }

    /// The codes in either set.
    public func union(_ other: MessageFlags) -> MessageFlags {
        var r = self
        r.bits = (bits.0 | other.bits.0, bits.1 | other.bits.1, bits.2 | other.bits.2, bits.3 | other.bits.3)
        return r
    }

    public static func == (a: MessageFlags, b: MessageFlags) -> Bool { a.bits == b.bits }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(bits.0); hasher.combine(bits.1); hasher.combine(bits.2); hasher.combine(bits.3)
    }
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
        if subdirectory == .new && flags.fileLetters.isEmpty && !baseName.utf8.contains(UInt8(ascii: ":")) { return baseName }
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
