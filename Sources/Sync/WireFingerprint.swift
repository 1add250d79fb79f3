#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import Maildir

/// What identifies an upload by the bytes sent for it (CRLF line ends): their number, the
/// Message-ID among them, and their SHA-256. Journaled before the APPEND, it is how an
/// upload whose reply was lost (a crash, a cut connection) is found on the server again —
/// nothing is added to the message to track it (invariant 5; see docs/recovery.md).
public struct WireFingerprint: Sendable, Hashable {
    /// Octets sent: what the server reports as RFC822.SIZE.
    public var size: Int64
    /// The first Message-ID field's value, unfolded and trimmed (nil when there is none).
    public var messageID: [UInt8]?
    /// SHA-256 of the octets sent.
    public var digest: [UInt8]

    public init(size: Int64, messageID: [UInt8]?, digest: [UInt8]) {
        self.size = size
        self.messageID = messageID
        self.digest = digest
    }

    /// The fingerprint of a Maildir file as an upload sends it (LF turned into CRLF), read
    /// once; follows a rename by a mail reader since the listing. Returns the path read.
    static func ofFile(_ path: String) throws(MaildirError) -> (WireFingerprint, path: String) {
        let (fd, used) = try MaildirUploadSource.openFollowingRenames(path)
        defer { close(fd) }
        var builder = WireFingerprinter()
        var converter = LFToCRLFConverter()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw MaildirError(operation: "read message", path: used, errno: errno)
            }
            if n == 0 { break }
            builder.feed(converter.convert(buffer[0..<n]))
        }
        return (builder.finish(), used)
    }
}

/// Builds a `WireFingerprint` from wire bytes fed in chunks (any split).
struct WireFingerprinter {
    private let hash = SHA256()
    private var size: Int64 = 0
    private var header: [UInt8] = []
    private var inHeader = true
    private var lineStart = true
    /// A header longer than this is cut: its Message-ID, if any lies beyond, is not seen
    /// (recovery then compares digests, which settles it anyway).
    static let headerLimit = 256 * 1024

    mutating func feed(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        hash.update(bytes)
        size += Int64(bytes.count)
        guard inHeader else { return }
        for b in bytes {
            if b == 10 {
                if lineStart { inHeader = false; return }   // the blank line: the header is over
                lineStart = true
            } else if b != 13 {
                lineStart = false
            }
            if header.count < Self.headerLimit { header.append(b) }
        }
    }

    func finish() -> WireFingerprint {
        let id = MessageIdentity.headerFields(header)["message-id"]
        return WireFingerprint(size: size, messageID: (id?.isEmpty ?? true) ? nil : id, digest: hash.finish())
    }
}

/// SHA-256 through OpenSSL's EVP interface, fed incrementally.
final class SHA256: @unchecked Sendable {   // used by one owner at a time
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
    }

    /// The digest of everything fed (call once).
    func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    /// The digest of `bytes`.
    static func digest(_ bytes: [UInt8]) -> [UInt8] {
        let h = SHA256()
        h.update(bytes)
        return h.finish()
    }
}
