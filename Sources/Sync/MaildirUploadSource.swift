#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir

/// A Maildir file as APPEND data: an `X-Mailmirror-Token:` header first (so an upload whose
/// answer was lost in a crash can be found on the server), then the file with LF turned
/// into CRLF (invariant 5). The size is measured before sending; a file that changes size
/// meanwhile makes the upload fail rather than send a wrong literal.
public final class MaildirUploadSource: MessageSource, @unchecked Sendable {
    public let size: Int64
    private let header: [UInt8]
    private var headerSent = false
    private var fd: Int32
    private var previousWasCR = false
    private let path: String

    /// The header line a token adds.
    public static func tokenHeader(_ token: String) -> [UInt8] { Array("X-Mailmirror-Token: \(token)\r\n".utf8) }

    public init(path: String, token: String?) throws(MaildirError) {
        header = token.map(Self.tokenHeader) ?? []
        var opened = open(path, O_RDONLY | O_CLOEXEC)
        var failure = errno   // before the search below can change it
        var used = path
        if opened < 0 && failure == ENOENT, let current = Self.renamed(path) {
            // A mail reader renamed it since the listing (a flag change): same message.
            used = current
            opened = open(current, O_RDONLY | O_CLOEXEC)
            failure = errno
        }
        guard opened >= 0 else { throw MaildirError(operation: "read message", path: used, errno: failure) }
        fd = opened
        self.path = used
        var total = Int64(header.count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var previous: UInt8 = 0
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { let e = errno; close(fd); throw MaildirError(operation: "read message", path: path, errno: e) }
            if n == 0 { break }
            for b in buffer[0..<n] {
                if b == 10 && previous != 13 { total += 1 }
                total += 1
                previous = b
            }
        }
        size = total
        lseek(fd, 0, SEEK_SET)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Where the message file at `path` (FOLDER/cur|new/NAME) is now, under any flags.
    static func renamed(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        let folder = MaildirFolder(name: [], path: parts.dropLast(2).joined(separator: "/"))
        guard let message = folder.find(baseName: MessageFileName(parsing: String(parts.last!)).baseName) else { return nil }
        return folder.filePath(of: message)
    }

    public func nextChunk() throws -> [UInt8]? {
        if !headerSent {
            headerSent = true
            if !header.isEmpty { return header }
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = read(fd, &buffer, buffer.count)
        if n < 0 { throw MaildirError(operation: "read message", path: path, errno: errno) }
        if n == 0 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n + n / 32)
        for b in buffer[0..<n] {
            if b == 10 && !previousWasCR { out.append(13) }
            out.append(b)
            previousWasCR = b == 13
        }
        return out
    }
}
