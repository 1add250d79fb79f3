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
    /// A size and a digest: one form the bytes may be stored in.
    public struct Form: Sendable, Hashable {
        public var size: Int64
        public var digest: [UInt8]
        public init(size: Int64, digest: [UInt8]) { self.size = size; self.digest = digest }
    }

    /// Octets sent: what the server reports as RFC822.SIZE.
    public var size: Int64
    /// The first Message-ID field's value, unfolded and trimmed (nil when there is none).
    public var messageID: [UInt8]?
    /// SHA-256 of the octets sent.
    public var digest: [UInt8]
    /// The octets as a server that normalizes line ends stores them — every CR not followed
    /// by LF dropped, an open last line ended with CRLF (Courier-IMAP; docs/servers.md) —
    /// when that differs from what was sent. Such a copy is the upload too; nothing else
    /// is allowed for.
    public var normalized: Form?

    public init(size: Int64, messageID: [UInt8]?, digest: [UInt8], normalized: Form? = nil) {
        self.size = size
        self.messageID = messageID
        self.digest = digest
        self.normalized = normalized
    }

    /// The forms a server copy of this upload may have: as sent, then as normalized.
    var storedForms: [Form] { [Form(size: size, digest: digest)] + (normalized.map { [$0] } ?? []) }

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
///
/// The normalized form costs nothing while it equals the sent one (the usual case): one
/// hash runs, and only at the first bare CR is it copied into a second that sees the
/// normalized bytes from then on; an open last line is ended in a copy at the finish.
struct WireFingerprinter {
    private let hash = SHA256()
    private var size: Int64 = 0
    private var header: [UInt8] = []
    private var inHeader = true
    private var lineStart = true
    /// A CR that ended the last chunk: held back until the next byte says whether it is bare.
    private var heldCR = false
    /// The hash of the normalized form, once it differs from the sent one.
    private var normalized: SHA256?
    private var bareCRs: Int64 = 0
    /// The last two octets of the normalized form (to know whether it ends in CRLF).
    private var tail: (UInt8, UInt8) = (0, 0)
    /// A header longer than this is cut: its Message-ID, if any lies beyond, is not seen
    /// (recovery then compares digests, which settles it anyway).
    static let headerLimit = 256 * 1024

    mutating func feed(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        size += Int64(bytes.count)
        readHeader(bytes)
        var chunk = heldCR ? [13] + bytes : bytes   // one copy per chunk, only after a held CR
        heldCR = chunk.last == 13
        if heldCR { chunk.removeLast() }
        guard !chunk.isEmpty else { return }
        let bare = Self.bareCRs(in: chunk)
        if !bare.isEmpty && normalized == nil { normalized = hash.copy() }
        hash.update(chunk)
        if bare.isEmpty {
            normalized?.update(chunk)
            noteTail(chunk)
        } else {
            // The runs between bare CRs, copied once (removing one by one is quadratic).
            var kept: [UInt8] = []
            kept.reserveCapacity(chunk.count - bare.count)
            var from = 0
            for i in bare {
                kept.append(contentsOf: chunk[from..<i])
                from = i + 1
            }
            kept.append(contentsOf: chunk[from...])
            bareCRs += Int64(bare.count)
            normalized?.update(kept)
            noteTail(kept)
        }
    }

    private mutating func noteTail(_ bytes: [UInt8]) {
        if bytes.count >= 2 { tail = (bytes[bytes.count - 2], bytes[bytes.count - 1]) }
        else if let b = bytes.last { tail = (tail.1, b) }
    }

    /// Indices of the CRs not followed by LF. A CR last in the chunk is followed by the CR
    /// held back (only one is), so it is bare too.
    private static func bareCRs(in chunk: [UInt8]) -> [Int] {
        chunk.withUnsafeBufferPointer { buffer -> [Int] in
            guard let base = buffer.baseAddress else { return [] }
            var found: [Int] = []
            var offset = 0
            while offset < buffer.count, let hit = memchr(base + offset, 13, buffer.count - offset) {
                let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if i + 1 == buffer.count || buffer[i + 1] != 10 { found.append(i) }
                offset = i + 1
            }
            return found
        }
    }

    private mutating func readHeader(_ bytes: [UInt8]) {
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
        var normalized = self.normalized
        var normalizedSize = size - bareCRs
        if heldCR {
            // The message ends in a bare CR: sent, but not kept in the normalized form.
            if normalized == nil { normalized = hash.copy() }
            hash.update([13])
            normalizedSize -= 1
        }
        if normalizedSize > 0 && tail != (13, 10) || normalizedSize == 0 {
            if normalized == nil { normalized = hash.copy() }
            normalized?.update([13, 10])
            normalizedSize += 2
        }
        let form = normalized.map { WireFingerprint.Form(size: normalizedSize, digest: $0.finish()) }
        return WireFingerprint(size: size, messageID: (id?.isEmpty ?? true) ? nil : id, digest: hash.finish(), normalized: form)
    }
}

/// SHA-256 through OpenSSL's EVP interface, fed incrementally.
final class SHA256: @unchecked Sendable {   // used by one owner at a time
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    private init(copying other: OpaquePointer) {
        context = EVP_MD_CTX_new()
        EVP_MD_CTX_copy_ex(context, other)
    }

    /// A hash that goes on from what this one was fed so far.
    func copy() -> SHA256 { SHA256(copying: context) }

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
