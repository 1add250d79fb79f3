#if canImport(Glibc)
import Glibc
#endif

/// What identifies a message across folders and UIDVALIDITY changes, from its header bytes:
/// the Message-ID with the size in CRLF form (what RFC822.SIZE reports), or without a
/// Message-ID a hash of Date, From and Subject with that size. Used by the UIDVALIDITY
/// re-match and by move detection on either side.
enum MessageIdentity {
    /// The header fields an identity is built from (for a HEADER.FIELDS fetch).
    static let fields = ["MESSAGE-ID", "DATE", "FROM", "SUBJECT"]

    /// Whether an identity rests on a Message-ID (moves trust only those).
    static func hasMessageID(_ identity: [UInt8]) -> Bool { identity.starts(with: Array("id:".utf8)) }

    /// The unfolded header fields, by lower-cased name (the first of each), values trimmed.
    static func headerFields(_ header: [UInt8]) -> [String: [UInt8]] {
        var fields: [String: [UInt8]] = [:]
        var name = ""
        var value: [UInt8] = []
        func flush() {
            if !name.isEmpty && fields[name] == nil { fields[name] = trim(value) }
            name = ""; value = []
        }
        for line in header.split(separator: 10, omittingEmptySubsequences: false) {
            var l = Array(line)
            if l.last == 13 { l.removeLast() }
            if l.isEmpty { flush(); continue }
            if l[0] == 32 || l[0] == 9 { value += [32] + trim(l); continue }   // folded
            flush()
            guard let colon = l.firstIndex(of: 58) else { continue }
            name = String(decoding: l[..<colon], as: UTF8.self).lowercased()
            value = Array(l[(colon + 1)...])
        }
        flush()
        return fields
    }

    /// "id:" Message-ID or "h:" a hash of Date, From and Subject, then "|" and the size.
    static func identity(header: [UInt8], size: Int64) -> [UInt8] {
        let fields = headerFields(header)
        let sizeBytes = Array("|\(size)".utf8)
        if let id = fields["message-id"], !id.isEmpty { return Array("id:".utf8) + id + sizeBytes }
        var h = FNV1a()
        for f in ["date", "from", "subject"] { h.add(fields[f] ?? []); h.add([0]) }
        return Array("h:\(h.value)".utf8) + sizeBytes
    }

    /// The wire size (CRLF) of the header line `name: …` in `header` (unfolded lines only), nil
    /// when it has none. Sync tools add such lines to their own copies: mbsync `X-TUID` to the
    /// files it writes, mailmirror `X-Mailmirror-Token` to the copies it uploads.
    static func lineSize(of name: String, in header: [UInt8]) -> Int64? {
        let prefix = Array((name + ":").lowercased().utf8)
        for line in header.split(separator: 10, omittingEmptySubsequences: false) {
            guard line.count >= prefix.count,
                  zip(line.prefix(prefix.count), prefix).allSatisfy({ $0 | 0x20 == $1 }) else { continue }   // ASCII, any case
            let bytes = line.last == 13 ? line.count - 1 : line.count
            return Int64(bytes + 2)
        }
        return nil
    }

    /// The Message-ID of a message file, without the angle brackets (for a SEARCH HEADER).
    static func messageID(ofFile path: String) -> [UInt8]? {
        guard let (header, _) = headerAndWireSize(path, headerOnly: true), let id = headerFields(header)["message-id"] else { return nil }
        guard let open = id.firstIndex(of: 60), let close = id.lastIndex(of: 62), open < close else { return id.isEmpty ? nil : id }
        return Array(id[(open + 1)..<close])
    }

    static func trim(_ bytes: [UInt8]) -> [UInt8] {
        var s = bytes[...]
        while let f = s.first, f == 32 || f == 9 { s.removeFirst() }
        while let l = s.last, l == 32 || l == 9 || l == 13 { s.removeLast() }
        return Array(s)
    }

    /// A file's header (up to the blank line, at most 64 KiB) and its size with every bare
    /// LF counted as CRLF, streamed in blocks; `headerOnly` stops reading after the header.
    static func headerAndWireSize(_ path: String, headerOnly: Bool = false) -> ([UInt8], Int64)? {
        headerWireSizeAndEnding(path, headerOnly: headerOnly).map { ($0.header, $0.size) }
    }

    /// `headerAndWireSize`, and the size of the message as a server that normalizes line
    /// ends stores it (Courier: bare CRs dropped, an open last line ended; see
    /// `WireFingerprint.normalized`) — nil when only the header was read.
    static func headerWireSizeAndEnding(_ path: String, headerOnly: Bool = false) -> (header: [UInt8], size: Int64, normalizedSize: Int64?)? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var header: [UInt8] = []
        var inHeader = true
        var size: Int64 = 0
        var previous: UInt8 = 0
        var bareCRs: Int64 = 0
        var lastKept: UInt8 = 0
        var lineStart = true
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            for i in 0..<n {
                let b = buffer[i]
                size += (b == 10 && previous != 13) ? 2 : 1
                if previous == 13 && b != 10 { bareCRs += 1 }
                if b != 13 { lastKept = b }
                if inHeader {
                    if b == 10 && lineStart { inHeader = false }
                    else if header.count < 65536 { header.append(b) }
                    if b == 10 { lineStart = true } else if b != 13 { lineStart = false }
                }
                previous = b
            }
            if headerOnly && !inHeader { return (header, size, nil) }   // the size is then only what was read
        }
        if previous == 13 { bareCRs += 1 }
        let normalized = size - bareCRs + (lastKept == 10 ? 0 : 2)
        return (header, size, normalized)
    }
}

/// 64-bit FNV-1a: a stable hash for identities (Swift's Hasher is seeded per process).
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: [UInt8]) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
}
