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

    func run(record: inout FolderRecord, session: IMAPSession, folder: MaildirFolder, validity: UIDValidity,
             keywords: FolderKeywords = .none) async throws -> Outcome {
        // The server side: one FETCH of sizes and the identifying header fields. A copy that
        // an earlier mailmirror uploaded carries a token header, which
        // the file it came from lacks (uploads are exact now), and mbsync adds an X-TUID line
        // to the files it writes (and to what it uploads): such a message is also known by
        // its size without that line, on either side.
        let added = ["X-MAILMIRROR-TOKEN", "X-TUID"]
        let fields = MessageIdentity.fields + added
        let section = Array("HEADER.FIELDS (\(fields.joined(separator: " ")))".utf8)
        var server: [(uid: UID, flags: MessageFlags)] = []
        var byKey: [[UInt8]: [Int]] = [:]
        let messages = try await session.fetchAll(items: [.uid, .flags, .rfc822Size, .headerFields(fields)])
        for m in messages.sorted(by: { ($0.uid ?? UID(0)) < ($1.uid ?? UID(0)) }) {
            guard let uid = m.uid, let size = m.size else { continue }
            let header = m.sections[section] ?? []
            server.append((uid, keywords.letters(m.flags ?? [])))
            byKey[MessageIdentity.identity(header: header, size: size), default: []].append(server.count - 1)
            for name in added {
                if let line = MessageIdentity.lineSize(of: name, in: header) {
                    byKey[MessageIdentity.identity(header: header, size: size - line), default: []].append(server.count - 1)
                }
            }
        }
        var taken = Set<Int>()

        // The local side: every message file, read once (this is a rare, one-time event).
        let files = folder.exists ? try folder.scan().messages : []
        var pairs: [MessagePair] = []
        for file in files.sorted(by: { $0.baseName < $1.baseName }) {
            guard let (header, size, normalized) = MessageIdentity.headerWireSizeAndEnding(folder.filePath(of: file)) else { continue }
            var sizes = [size]
            if let line = MessageIdentity.lineSize(of: "X-TUID", in: header) { sizes.append(size - line) }
            // A server that normalizes line ends (Courier) stores another size.
            if let normalized, normalized != size { sizes.append(normalized) }
            guard let match = sizes.lazy.compactMap({ size in
                byKey[MessageIdentity.identity(header: header, size: size)]?.first(where: { !taken.contains($0) })
            }).first else { continue }
            taken.insert(match)
            // The server's flags as the agreed state: where the local file differs, the
            // local flags win in the pass that follows (they are the more recent ones after
            // a server-side restore).
            pairs.append(MessagePair(folder: record.id, uid: server[match].uid, localName: file.baseName, flags: server[match].flags.stored))
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
        return Outcome(matched: pairs.count, serverOnly: server.count - pairs.count, localOnly: files.count - pairs.count)
    }
}
