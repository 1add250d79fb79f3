#if canImport(Glibc)
import Glibc
#endif
import Support

/// A folder's IMAP keywords the way Dovecot keeps them in a Maildir, so that a Dovecot
/// serving the same Maildir (and tools that read its scheme) see them: the file
/// `dovecot-keywords` in the folder, one line `N name` per keyword, and in a message file's
/// info part the lowercase letter `a` + N (`:2,Sa` = seen, keyword 0). At most 26 a folder
/// (docs/keywords.md). Read the way Dovecot reads it (`maildir-keywords.c`): a line without a
/// space, with an index outside 0…25, an empty name or a name seen already is skipped.
public struct MaildirKeywords: Sendable, Equatable {
    /// The file's name inside the folder.
    public static let fileName = "dovecot-keywords"
    /// Letters `a`…`z`.
    public static let capacity = 26

    /// The keyword of each letter, by index (nil: free).
    public private(set) var names: [String?] = Array(repeating: nil, count: capacity)

    public init() {}

    /// The table a `dovecot-keywords` file's bytes describe.
    public init(parsing bytes: [UInt8]) {
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { continue }
            let digits = line[line.startIndex..<space]
            let name = line[line.index(after: space)...]
            guard !digits.isEmpty, digits.count <= 2, digits.allSatisfy({ (0x30...0x39).contains($0) }), !name.isEmpty else { continue }
            let index = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            // Keywords are atoms: no control characters, spaces or NUL (a damaged line is skipped).
            guard index < Self.capacity, names[index] == nil, name.allSatisfy({ $0 > 0x20 && $0 != 0x7F }),
                  let text = String(validating: name, as: UTF8.self), letter(for: text) == nil else { continue }
            names[index] = text
        }
    }

    /// The letter that stands for `keyword` in this folder, if it has one.
    public func letter(for keyword: String) -> UInt8? {
        names.firstIndex { $0 == keyword }.map { UInt8(ascii: "a") + UInt8($0) }
    }

    /// The keyword a letter stands for (`a`…`z`), if any.
    public func keyword(for letter: UInt8) -> String? {
        guard letter >= UInt8(ascii: "a"), letter <= UInt8(ascii: "z") else { return nil }
        return names[Int(letter - UInt8(ascii: "a"))]
    }

    /// The letter for `keyword`, given the first free one if it has none yet; nil when all
    /// 26 are taken (the keyword then lives in the state only).
    public mutating func assign(_ keyword: String) -> UInt8? {
        if let letter = letter(for: keyword) { return letter }
        guard let free = names.firstIndex(where: { $0 == nil }) else { return nil }
        names[free] = keyword
        return UInt8(ascii: "a") + UInt8(free)
    }

    /// Gives `letter` (`a`…`z`) the keyword `name` (what the state already gave it).
    public mutating func set(letter: UInt8, to name: String) {
        guard letter >= UInt8(ascii: "a"), letter <= UInt8(ascii: "z") else { return }
        for i in names.indices where names[i] == name { names[i] = nil }
        names[Int(letter - UInt8(ascii: "a"))] = name
    }

    /// The keywords a message's letters name (letters without an entry are left out).
    public func keywords(of flags: MessageFlags) -> [String] {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).compactMap { flags.contains($0) ? keyword(for: $0) : nil }
    }

    /// The file's contents, as Dovecot writes it.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        for (i, name) in names.enumerated() { if let name { out += Array("\(i) \(name)\n".utf8) } }
        return out
    }

    /// The folder's table (empty when it has no file yet).
    public static func read(in folder: MaildirFolder) throws(MaildirError) -> MaildirKeywords {
        let path = folder.path + "/" + fileName
        do {
            return MaildirKeywords(parsing: try TextFile.bytes(path, limit: 64 * 1024))   // 26 short lines
        } catch {
            if error.code == ENOENT { return MaildirKeywords() }
            throw MaildirError(operation: "read keywords", path: path, errno: error.code)
        }
    }

    /// Replaces the folder's file with this table (`TextFile.replace`: atomic, flushed, the
    /// old file's mode and owner kept so a Dovecot serving the folder can still read it).
    public func write(to folder: MaildirFolder) throws(MaildirError) {
        let path = folder.path + "/" + Self.fileName
        do { try TextFile.replace(path, with: serialized, durable: true) } catch {
            throw MaildirError(operation: "write keywords", path: path, errno: error.code)
        }
        try FS.syncDirectory(folder.path, operation: "write keywords")
    }
}
