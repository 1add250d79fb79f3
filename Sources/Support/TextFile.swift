#if canImport(Glibc)
import Glibc
#endif

/// Small text files read whole: the configuration, `daemon.status`, `/proc/self/…`.
public enum TextFile {
    /// Why a file could not be read (an errno).
    public struct ReadError: Error { public var code: Int32 }

    /// The file's bytes as text (invalid UTF-8 repaired), at most `limit` bytes.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(ReadError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(code: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 { if errno == EINTR { continue }; throw ReadError(code: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > limit { throw ReadError(code: EFBIG) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
