#if canImport(Glibc)
import Glibc
#endif

/// Small files read or replaced whole: the configuration, `daemon.status`, `/proc/self/…`,
/// a Maildir folder's `dovecot-keywords`.
public enum TextFile {
    /// Why a file could not be read or written (an errno).
    public struct FileError: Error { public var code: Int32 }

    /// The file's bytes, at most `limit` of them (more is `EFBIG`).
    public static func bytes(_ path: String, limit: Int = 16 << 20) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(code: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 { if errno == EINTR { continue }; throw FileError(code: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > limit { throw FileError(code: EFBIG) }
        }
        return bytes
    }

    /// The file's bytes as text (invalid UTF-8 repaired), at most `limit` bytes.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(FileError) -> String {
        String(decoding: try bytes(path, limit: limit), as: UTF8.self)
    }

    /// Replaces the file with `bytes`: written beside it, flushed when `durable`, renamed over
    /// it — a reader sees the old contents or the new, never half. The new file keeps the old
    /// one's mode and owner (another program reading it, a Dovecot, still can); a new file
    /// is 0600. The directory itself is not flushed.
    public static func replace(_ path: String, with bytes: [UInt8], durable: Bool) throws(FileError) {
        let temporary = path + ".tmp-\(getpid())"
        var old = stat()
        let existed = stat(path, &old) == 0
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError(code: errno) }
        if existed {
            _ = fchmod(fd, old.st_mode & 0o777)
            _ = fchown(fd, old.st_uid, old.st_gid)   // allowed only to the owner's own ids (or root): else left as is
        }
        func fail(_ code: Int32) -> FileError {
            close(fd)
            unlink(temporary)
            return FileError(code: code)
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail(errno)
            }
            written += n
        }
        if durable && fsync(fd) != 0 { throw fail(errno) }
        close(fd)
        if rename(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            throw FileError(code: code)
        }
    }
}
