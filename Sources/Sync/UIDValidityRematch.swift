#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir
import State
import Support

/// Recovers a folder whose UIDVALIDITY changed (the server folder was recreated, restored
/// from a backup, or the server was migrated): every old UID is meaningless, so the pairs
/// are rebuilt by matching messages on content identity — Message-ID plus size, or a hash
/// of Date, From and Subject plus size where a message has no Message-ID.
///
/// Matched messages keep their local files; whatever is left unmatched stays unpaired, so
/// the pass that follows downloads the server's extras and uploads the local ones. Nothing
/// can be deleted in that pass: deletions come only from pairs with a side gone, and every
/// rebuilt pair has both sides.
struct UIDValidityRematch {
    let state: StateStore
    let accountID: AccountID

    /// What the re-match found.
    struct Outcome {
        var matched = 0
        var serverOnly = 0
        var localOnly = 0
    }

    /// The header fields that identify a message without a Message-ID.
    static let fields = ["MESSAGE-ID", "DATE", "FROM", "SUBJECT"]

    func run(record: inout FolderRecord, session: IMAPSession, folder: MaildirFolder, validity: UIDValidity) async throws -> Outcome {
        // The server side: one FETCH of sizes and the identifying header fields.
        let section = Array("HEADER.FIELDS (\(Self.fields.joined(separator: " ")))".utf8)
        var serverByKey: [[UInt8]: [(uid: UID, flags: MessageFlags)]] = [:]
        var serverCount = 0
        let (messages, _) = try await session.fetch(UIDSet(ranges: [1...UInt32.max]),
                                                     items: [.uid, .flags, .rfc822Size, .headerFields(Self.fields)])
        for m in messages {
            guard let uid = m.uid, let size = m.size else { continue }
            serverCount += 1
            let key = Self.identity(header: m.sections[section] ?? [], size: size)
            serverByKey[key, default: []].append((uid, FlagMapping.letters(m.flags ?? [])))
        }
        for k in serverByKey.keys { serverByKey[k]!.sort { $0.uid < $1.uid } }

        // The local side: every message file, read once (this is a rare, one-time event).
        let files = folder.exists ? try folder.scan().messages : []
        var pairs: [MessagePair] = []
        for file in files.sorted(by: { $0.baseName < $1.baseName }) {
            guard let (header, size) = Self.headerAndWireSize(folder.filePath(of: file)) else { continue }
            let key = Self.identity(header: header, size: size)
            guard var candidates = serverByKey[key], !candidates.isEmpty else { continue }
            let match = candidates.removeFirst()
            serverByKey[key] = candidates
            // The server's flags as the agreed state: where the local file differs, the
            // local flags win in the pass that follows (they are the more recent ones after
            // a server-side restore).
            pairs.append(MessagePair(folder: record.id, uid: match.uid, localName: file.baseName, flags: match.flags.description))
        }
        var updated = record
        updated.uidValidity = validity
        updated.uidNext = nil
        updated.highestModSeq = nil
        updated.localMarker = nil
        let final = updated
        try state.transaction(durability: .full) {
            // Journal entries name old UIDs: their outcome is found again by the matching.
            for entry in try state.pendingJournalEntries(of: accountID) where entry.folder == record.id || entry.targetFolder == record.id {
                try state.resolveJournalEntry(entry.id!)
            }
            try state.deleteAllPairs(in: record.id)
            _ = try state.insertPairs(pairs)
            try state.updateFolder(final)
        }
        record = final
        return Outcome(matched: pairs.count, serverOnly: serverCount - pairs.count, localOnly: files.count - pairs.count)
    }

    /// The identity of a message: "id:" Message-ID or "h:" a hash of Date, From and Subject,
    /// each with the size in CRLF form (what RFC822.SIZE reports).
    static func identity(header: [UInt8], size: Int64) -> [UInt8] {
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
        let sizeBytes = Array("|\(size)".utf8)
        if let id = fields["message-id"], !id.isEmpty { return Array("id:".utf8) + id + sizeBytes }
        var h = FNV1a()
        for f in ["date", "from", "subject"] { h.add(fields[f] ?? []); h.add([0]) }
        return Array("h:\(h.value)".utf8) + sizeBytes
    }

    static func trim(_ bytes: [UInt8]) -> [UInt8] {
        var s = bytes[...]
        while let f = s.first, f == 32 || f == 9 { s.removeFirst() }
        while let l = s.last, l == 32 || l == 9 || l == 13 { s.removeLast() }
        return Array(s)
    }

    /// A file's header (up to the blank line, at most 64 KiB) and its size with every bare
    /// LF counted as CRLF, streamed in blocks.
    static func headerAndWireSize(_ path: String) -> ([UInt8], Int64)? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var header: [UInt8] = []
        var inHeader = true
        var size: Int64 = 0
        var previous: UInt8 = 0
        var lineStart = true
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            for i in 0..<n {
                let b = buffer[i]
                size += (b == 10 && previous != 13) ? 2 : 1
                if inHeader {
                    if b == 10 && lineStart { inHeader = false }
                    else if header.count < 65536 { header.append(b) }
                    if b == 10 { lineStart = true } else if b != 13 { lineStart = false }
                }
                previous = b
            }
        }
        return (header, size)
    }
}

/// 64-bit FNV-1a: a stable hash for identities (Swift's Hasher is seeded per process).
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: [UInt8]) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
}
