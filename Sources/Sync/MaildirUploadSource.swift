#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir

/// A Maildir file as APPEND data: its bytes with LF turned into CRLF, and nothing else
/// (invariant 5). It is sent as the fingerprint journaled before the APPEND says: the
/// literal's size is the fingerprint's, and what is read is hashed on the way; a file that
/// changed since (other size or other bytes) fails the upload before the command can end,
/// so the server never stores a message under a fingerprint that is not its own.
public final class MaildirUploadSource: MessageSource, @unchecked Sendable {
    public let size: Int64
    private let expected: WireFingerprint
    private var fd: Int32
    private let path: String
    private var converter = LFToCRLFConverter()
    private let hash = SHA256()
    private var sent: Int64 = 0

    /// Opens the file at `path` (or where a mail reader renamed it) to send it as `expected`.
    public init(path: String, expecting expected: WireFingerprint) throws(MaildirError) {
        (fd, self.path) = try Self.openFollowingRenames(path)
        self.expected = expected
        size = expected.size
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Opens a message file read-only; when it is gone, looks for it under other flags (a
    /// mail reader renamed it since the listing: same message). Returns the path opened.
    static func openFollowingRenames(_ path: String) throws(MaildirError) -> (Int32, String) {
        var opened = open(path, O_RDONLY | O_CLOEXEC)
        var failure = errno   // before the search below can change it
        var used = path
        if opened < 0 && failure == ENOENT, let current = renamed(path) {
            used = current
            opened = open(current, O_RDONLY | O_CLOEXEC)
            failure = errno
        }
        guard opened >= 0 else { throw MaildirError(operation: "read message", path: used, errno: failure) }
        return (opened, used)
    }

    /// Where the message file at `path` (FOLDER/cur|new/NAME) is now, under any flags.
    static func renamed(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        let folder = MaildirFolder(name: [], path: parts.dropLast(2).joined(separator: "/"))
        guard let message = folder.find(baseName: MessageFileName(parsing: String(parts.last!)).baseName) else { return nil }
        return folder.filePath(of: message)
    }

    /// The file changed after its fingerprint was journaled.
    struct Changed: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) changed while it was being uploaded; the next pass sends it as it is then" }
    }

    public func nextChunk() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var n: Int
        repeat { n = read(fd, &buffer, buffer.count) } while n < 0 && errno == EINTR
        if n < 0 { throw MaildirError(operation: "read message", path: path, errno: errno) }
        if n == 0 {
            guard sent == expected.size, hash.finish() == expected.digest else { throw Changed(path: path) }
            return nil
        }
        let out = converter.convert(buffer[0..<n])
        sent += Int64(out.count)
        guard sent <= expected.size else { throw Changed(path: path) }
        hash.update(out)
        return out
    }
}
