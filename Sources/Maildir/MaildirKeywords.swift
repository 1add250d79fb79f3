#if canImport(Glibc)
import Glibc
#endif

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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return MaildirKeywords() }
            throw MaildirError(operation: "read keywords", path: path, errno: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 { if errno == EINTR { continue }; throw MaildirError(operation: "read keywords", path: path, errno: errno) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 64 * 1024 { break }   // 26 lines: anything longer is not this file
        }
        return MaildirKeywords(parsing: bytes)
    }

    /// Replaces the folder's file with this table: written beside it, flushed, renamed over
    /// it (a reader sees the old table or the new one, never half of one). The new file keeps
    /// the old one's mode and owner, so a Dovecot serving the folder can still read it.
    public func write(to folder: MaildirFolder) throws(MaildirError) {
        let path = folder.path + "/" + Self.fileName
        let temporary = path + ".mailmirror-\(getpid())"
        var old = stat()
        let existed = stat(path, &old) == 0
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MaildirError(operation: "write keywords", path: temporary, errno: errno) }
        if existed {
            _ = fchmod(fd, old.st_mode & 0o777)
            _ = fchown(fd, old.st_uid, old.st_gid)   // allowed only to its owner's own ids (or root): else left as is
        }
        let bytes = serialized
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(temporary)
                throw MaildirError(operation: "write keywords", path: temporary, errno: e)
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd)
            unlink(temporary)
            throw MaildirError(operation: "write keywords", path: temporary, errno: e)
        }
        close(fd)
        if rename(temporary, path) != 0 {
            let e = errno
            unlink(temporary)
            throw MaildirError(operation: "write keywords", path: path, errno: e)
        }
        try FS.syncDirectory(folder.path, operation: "write keywords")
    }
}
