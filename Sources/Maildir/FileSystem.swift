#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import CSupport

/// A file-system operation on a Maildir failed; says which path and what to do.
public struct MaildirError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done ("create folder", "deliver message", …).
    public var operation: String
    public var path: String
    public var errno: Int32
    /// Extra words, when errno alone does not say it.
    public var detail: String?

    public init(operation: String, path: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let reason = detail ?? String(cString: strerror(errno))
        let hint: String
        switch errno {
        case ENOSPC, EDQUOT: hint = "; free some disk space and run again"
        case EACCES, EPERM: hint = "; check the permissions of the Maildir"
        case EROFS: hint = "; the file system is read-only"
        default: hint = ""
        }
        return "\(operation) \(path): \(reason)\(hint)"
    }

    /// Whether trying again later may help (a full disk can be emptied; a missing file cannot reappear).
    public var isRetryable: Bool { errno == ENOSPC || errno == EDQUOT || errno == EINTR || errno == EAGAIN || errno == EIO }
}

/// The name of a directory entry, read in place: the kernel's record can be shorter than
/// `MemoryLayout<dirent>.size`, so copying `pointee.d_name` may read past the buffer.
func direntName(_ entry: UnsafeMutablePointer<dirent>) -> UnsafeBufferPointer<UInt8> {
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    let start = (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: UInt8.self)
    return UnsafeBufferPointer(start: start, count: strlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)))
}

/// Thin, throwing wrappers over the POSIX calls the Maildir layer uses.
enum FS {
    static func mkdirIfMissing(_ path: String, mode: mode_t = 0o700, operation: String) throws(MaildirError) {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw MaildirError(operation: operation, path: path, errno: errno)
        }
    }

    /// Creates every missing directory of `path` below `root` (which must exist).
    static func mkdirs(_ path: String, below root: String, operation: String) throws(MaildirError) {
        guard let rest = relative(path, below: root) else {
            throw MaildirError(operation: operation, path: path, errno: EINVAL, detail: "outside the Maildir root")
        }
        var current = root
        for part in rest.utf8.split(separator: UInt8(ascii: "/")) {
            current += "/" + String(decoding: part, as: UTF8.self)
            try mkdirIfMissing(current, operation: operation)
        }
    }

    // Paths are taken apart on bytes, never on Characters: a "/" followed by a combining
    // mark is one Character that is not "/", and would hide a separator (a folder name
    // comes from the server and may begin with one; fuzz finding in Fuzz/corpus/maildir).

    /// The part of `path` after `root` and its "/" ("" for `root` itself), or nil when
    /// `path` is not `root` or below it.
    static func relative(_ path: String, below root: String) -> String? {
        let p = Array(path.utf8), r = Array(root.utf8)
        guard p.starts(with: r) else { return nil }
        if p.count == r.count { return "" }
        guard p[r.count] == UInt8(ascii: "/") || r.last == UInt8(ascii: "/") else { return nil }
        return String(decoding: p[(p[r.count] == UInt8(ascii: "/") ? r.count + 1 : r.count)...], as: UTF8.self)
    }

    /// The directory holding `path`: everything before its last "/" ("/" for a top-level path).
    static func parent(of path: String) -> String {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")), slash != 0 else { return "/" }
        return String(decoding: bytes[..<slash], as: UTF8.self)
    }

    /// Whether `name` begins with a "." byte (a hidden directory or a maildir++ folder).
    static func startsWithDot(_ name: String) -> Bool { name.utf8.first == UInt8(ascii: ".") }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// fsync of a directory, so renames and creations in it are durable.
    static func syncDirectory(_ path: String, operation: String) throws(MaildirError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw MaildirError(operation: operation, path: path, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw MaildirError(operation: operation, path: path, errno: errno) }
    }

    /// Whether two paths are on one file system.
    static func sameFileSystem(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev
    }

    /// fdatasync of each file, all at once (the file system folds concurrent flushes into
    /// one journal commit); the first failure is thrown once all are done.
    static func syncFiles(_ paths: [String]) throws(MaildirError) {
        guard !paths.isEmpty else { return }
        let failure = Mutex<(path: String, errno: Int32)?>(nil)
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let fd = open(paths[i], O_RDONLY | O_CLOEXEC)
            var code: Int32 = 0
            if fd < 0 { code = errno } else {
                if fdatasync(fd) != 0 { code = errno }
                close(fd)
            }
            if code != 0 { failure.withLock { if $0 == nil { $0 = (paths[i], code) } } }
        }
        if let (path, code) = failure.withLock({ $0 }) {
            throw MaildirError(operation: "fsync", path: path, errno: code)
        }
    }

    /// syncfs(2) of the file system holding `path`: one flush for a whole batch.
    static func syncFileSystem(containing path: String, operation: String) throws(MaildirError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw MaildirError(operation: operation, path: path, errno: errno) }
        defer { close(fd) }
        if csupport_syncfs(fd) != 0 { throw MaildirError(operation: operation, path: path, errno: errno) }
    }

    /// Names in a directory (without . and ..), as raw bytes; nil when it cannot be opened.
    static func entries(_ path: String) -> [(name: [UInt8], isDirectory: Bool?)]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var result: [(name: [UInt8], isDirectory: Bool?)] = []
        while let entry = readdir(dir) {
            let name = Array(direntName(entry))
            if name == [46] || name == [46, 46] { continue }
            let type = entry.pointee.d_type
            let isDir: Bool? = type == UInt8(DT_DIR) ? true : (type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) ? nil : false)
            result.append((name, isDir))
        }
        return result
    }
}
