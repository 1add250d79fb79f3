#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir
import Support

/// A server mailbox as a `FolderStore`: keys are UIDs, flags the six mirrored letters.
final class IMAPFolderStore: FolderStore, @unchecked Sendable {   // used by one folder sync at a time
    let session: IMAPSession
    let mailbox: MailboxName
    let spoolDirectory: String
    let sideName = "server"
    /// The folder's keywords (the pass sets them): server keywords ⇄ codes.
    var keywords = FolderKeywords.none
    /// What SELECT reported.
    private(set) var selected: SelectedMailbox?
    /// Internal dates of messages reported by an incremental pass, and the last full listing.
    private var dates: [UID: Int64] = [:]
    private var listed = MessageListing()
    /// UIDs per UID FETCH of an export; `pipelineDepth` of them in flight.
    var exportBatch = 64
    var pipelineDepth = 4
    /// Messages per FETCH when listing a large mailbox (see `IMAPSession.fetchAll`).
    var listPage = 2000

    init(session: IMAPSession, mailbox: MailboxName, spoolDirectory: String) {
        self.session = session
        self.mailbox = mailbox
        self.spoolDirectory = spoolDirectory
    }

    /// What a CHANGEDSINCE FETCH sent along with the SELECT returned.
    struct EarlyChanges: Sendable {
        var since: ModSeq
        var messages: [FetchedMessage]
        var vanished: UIDSet
    }
    private static let metadata: [FetchItem] = [.uid, .flags, .internalDate, .rfc822Size]

    /// SELECTs the mailbox (with CONDSTORE when offered). With `changedSince` and QRESYNC
    /// enabled, the `UID FETCH … (CHANGEDSINCE … VANISHED)` of `listChanges` goes out in the
    /// same flight (one round trip for both); its answer is kept for `listChanges`, which
    /// drops it if the mailbox turns out to be another one (UIDVALIDITY).
    ///
    /// With `newFrom` (the UIDNEXT of the last pass) the new messages are fetched by a FETCH
    /// of their own in that flight.
    func open(changedSince: ModSeq? = nil, newFrom: UID? = nil) async throws -> SelectedMailbox {
        let sentAhead = ahead
        ahead = nil
        // Under MESSAGELIMIT the flight's `UID FETCH 1:*` may name too many messages: a plain
        // SELECT first, and `listChanges` pages when the mailbox is larger than the limit.
        if let since = changedSince, await session.enabled.contains("QRESYNC"), await session.messageLimit == nil {
            openedAhead = sentAhead?.since == since && sentAhead?.newFrom == newFrom
            let (selectedNow, changed, vanished) = if openedAhead, let sentAhead {
                try await sentAhead.flight.value
            } else {
                try await session.selectWithChanges(mailbox, items: Self.metadata, since: since, newFrom: newFrom)
            }
            selected = selectedNow
            early = EarlyChanges(since: since, messages: changed, vanished: vanished)
            return selectedNow
        }
        let s = try await session.select(mailbox)
        selected = s
        return s
    }
    private var early: EarlyChanges?

    /// Whether `open` took the answer of a flight `sendOpenAhead` sent.
    private(set) var openedAhead = false
    /// A SELECT flight sent ahead by `sendOpenAhead`, with what it was sent for.
    private var ahead: (since: ModSeq, newFrom: UID?, flight: Task<(SelectedMailbox, changed: [FetchedMessage], vanished: UIDSet), any Error>)?

    /// Sends the flight of `open(changedSince:newFrom:)` now (QRESYNC only): the session is
    /// idle while the previous folder's pass makes its downloads durable, and `open` with
    /// the same arguments then takes this answer instead of waiting for a round trip.
    /// Call only when nothing else will use the session until this folder's pass opens it.
    func sendOpenAhead(changedSince since: ModSeq, newFrom: UID?) async {
        guard ahead == nil, await session.enabled.contains("QRESYNC"), await session.messageLimit == nil else { return }
        let session = self.session, mailbox = self.mailbox
        ahead = (since, newFrom, Task { try await session.selectWithChanges(mailbox, items: Self.metadata, since: since, newFrom: newFrom) })
    }
    private static let identityItem = FetchItem.headerFields(["MESSAGE-ID"])
    private static let identitySection = Array("HEADER.FIELDS (MESSAGE-ID)".utf8)

    /// The Message-ID header field (as sent) of each of `uids`: one FETCH.
    func messageIDHeaders(of uids: [UID]) async throws -> [UID: [UInt8]] {
        guard !uids.isEmpty else { return [:] }
        var result: [UID: [UInt8]] = [:]
        for m in try await session.fetch(UIDSet(uids), items: [.uid, Self.identityItem]).messages {
            if let uid = m.uid { result[uid] = m.sections[Self.identitySection] ?? [] }
        }
        return result
    }

    /// What changed since `since` (and which UIDs vanished), if that went out with the
    /// SELECT and QRESYNC reported the vanished ones; nil otherwise.
    func earlyChanges(since: ModSeq) -> (changed: [FetchedMessage], vanished: UIDSet)? {
        guard let early, early.since == since else { return nil }
        for m in early.messages { if let uid = m.uid, let d = m.internalDate { dates[uid] = d } }
        return (early.messages, early.vanished)
    }

    func list() async throws -> MessageListing {
        var result = MessageListing()
        result.reserveCapacity(uids: await session.messageCount)
        // Page by page as it arrives: only the listing is kept, not the server's answers.
        try await session.fetchAll(items: Self.metadata, pageSize: listPage) { m in
            guard let uid = m.uid else { return }
            result.insert(StoreMessage(key: .uid(uid), flags: keywords.letters(m.flags ?? []), date: m.internalDate, size: m.size))
        }
        listed = result   // the dates of what `export` will fetch
        return result
    }

    /// The server's messages from what changed since `modSeq` (CONDSTORE): one CHANGEDSINCE
    /// FETCH for the changed flags and new messages; with QRESYNC its VANISHED part says
    /// which known UIDs are gone, else one UID SEARCH (ESEARCH: a compact set) says which
    /// still exist. Every other known message keeps the flags in `known`; `alsoKnown`
    /// (messages left on the server on purpose, with their sizes) are kept as they were.
    /// Short answers instead of a FETCH line per message.
    /// What changed on the server since `modSeq` (CONDSTORE; QRESYNC names what vanished),
    /// with `alsoKnown` (messages left there on purpose, with their sizes) listed as well:
    /// every other message a pair names holds what the pair agreed on. `paired` (the UIDs of
    /// the folder's pairs, sorted) is read only without QRESYNC, to tell new messages from
    /// old ones in a `UID SEARCH ALL`. A mailbox over the server's MESSAGELIMIT is listed whole.
    func listChanges(since modSeq: ModSeq, paired: () throws -> [UInt32], alsoKnown: [UID: Int64?] = [:],
                     exists: Int) async throws -> ServerChanges {
        if let limit = await session.messageLimit, await session.messageCount > limit {
            // `1:* (CHANGEDSINCE …)` would name more messages than the server takes at once.
            early = nil
            return ServerChanges(complete: try await list())
        }
        if let early, early.since == modSeq {
            self.early = nil
            let vanished = early.vanished
            return merge(alsoKnown: alsoKnown, changed: early.messages, exists: exists) { vanished.contains($0) }
        } else if await session.enabled.contains("QRESYNC") {
            early = nil
            let fetched = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: Self.metadata, changedSince: modSeq)
            return merge(alsoKnown: alsoKnown, changed: fetched.messages, exists: exists) { fetched.vanished.contains($0) }
        }
        early = nil
        let changed = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: Self.metadata, changedSince: modSeq).messages
        let existing = try await session.search([.all])
        let known = try paired()
        var unknownNew: [UID] = []
        let reported = Set(changed.compactMap(\.uid))
        for uid in existing where !FolderPlanner.contains(known, uid.rawValue) && alsoKnown[uid] == nil && !reported.contains(uid) {
            unknownNew.append(uid)
        }
        var extra: [FetchedMessage] = []
        if !unknownNew.isEmpty {   // not reported as changed, yet unknown: fetch them plainly
            extra = try await session.fetch(UIDSet(unknownNew), items: Self.metadata).messages
        }
        return merge(alsoKnown: alsoKnown, changed: changed + extra, exists: exists) { !existing.contains($0) }
    }

    private func merge(alsoKnown: [UID: Int64?], changed: [FetchedMessage], exists: Int,
                       gone: @escaping (UID) -> Bool) -> ServerChanges {
        var result = MessageListing()
        for uid in alsoKnown.keys.sorted() where !gone(uid) {
            result.insert(StoreMessage(key: .uid(uid), flags: MessageFlags(), date: nil, size: alsoKnown[uid] ?? nil))
        }
        for m in changed {
            guard let uid = m.uid, !gone(uid) else { continue }
            if let d = m.internalDate { dates[uid] = d }
            result.insert(StoreMessage(key: .uid(uid), flags: keywords.letters(m.flags ?? []), date: m.internalDate, size: m.size))
        }
        return ServerChanges(listed: result, vanished: gone, count: exists)
    }

    func apply(_ changes: [FlagChange]) async throws {
        var groups: [String: (add: MessageFlags, remove: MessageFlags, uids: [UID])] = [:]
        for change in changes {
            guard case .uid(let uid) = change.key else { continue }
            let add = keywords.mirroredPart(change.add), remove = keywords.mirroredPart(change.remove)
            if add.isEmpty && remove.isEmpty { continue }
            groups["+\(add.stored)-\(remove.stored)", default: (add, remove, [])].uids.append(uid)
        }
        for (_, group) in groups.sorted(by: { $0.key < $1.key }) {
            let set = UIDSet(group.uids)
            if !group.add.isEmpty { try await session.store(set, .add, keywords.imapFlags(group.add)) }
            if !group.remove.isEmpty { try await session.store(set, .remove, keywords.imapFlags(group.remove)) }
        }
    }

    func delete(_ keys: [MessageKey]) async throws {
        let uids = keys.compactMap { if case .uid(let u) = $0 { u } else { nil } }
        try await session.deleteMessages(UIDSet(uids))
    }

    func export(_ keys: [MessageKey], flags: [MessageKey: MessageFlags], into batch: IncomingBatch) async throws {
        let uids = keys.compactMap { if case .uid(let u) = $0 { u } else { nil } }.sorted()
        let chunks = stride(from: 0, to: uids.count, by: exportBatch).map { Array(uids[$0..<min($0 + exportBatch, uids.count)]) }
        let session = self.session
        var known: [UID: Int64] = [:]
        for uid in uids { if let d = self.dates[uid] ?? listed[.uid(uid)]?.date { known[uid] = d } }
        let dates = known
        // The fetches run concurrently but their bodies arrive one after the other on the
        // session's queue, so the batch is only ever fed by one of them at a time.
        let shared = UncheckedSendable(batch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            for _ in 0..<min(pipelineDepth, chunks.count) {
                let chunk = chunks[next]
                next += 1
                group.addTask {
                    _ = try await session.fetchMessages(UIDSet(chunk), sink: ExportSink(batch: shared.value, order: chunk, flags: flags, dates: dates))
                }
            }
            while try await group.next() != nil {
                if next < chunks.count {
                    let chunk = chunks[next]
                    next += 1
                    group.addTask {
                        _ = try await session.fetchMessages(UIDSet(chunk), sink: ExportSink(batch: shared.value, order: chunk, flags: flags, dates: dates))
                    }
                }
            }
        }
    }

    func incoming() throws -> IncomingBatch {
        IMAPIncomingBatch(store: self)
    }

    /// UIDs this store's own APPENDs were given in this session: never someone else's upload.
    var assigned = Set<UID>()

    /// Finds uploads whose APPEND reply was lost (DESIGN invariants 2 and 5; docs/recovery.md):
    /// among the UIDs from the journaled UIDNEXT on, one `UID FETCH n:* (RFC822.SIZE
    /// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`, paired by size and Message-ID; where those do
    /// not settle it, the equal-size candidates' bodies are fetched and their SHA-256
    /// compared. One to one: a UID is given to one upload at most. Uploads of versions
    /// before 7 are found by their `X-Mailmirror-Token:` header.
    func locate(_ marks: [ArrivalMark], excluding: Set<MessageKey>) async throws -> [MessageKey?] {
        var result = [MessageKey?](repeating: nil, count: marks.count)
        var taken = Set(excluding.compactMap(\.uid)).union(assigned)
        for (i, mark) in marks.enumerated() {
            guard let token = mark.legacyToken, mark.sent == nil else { continue }
            if let uid = try await locate(legacyToken: token, from: mark.uidNext, excluding: taken) {
                result[i] = .uid(uid)
                taken.insert(uid)
            }
        }
        // A mark of another incarnation of the mailbox (UIDVALIDITY changed) names UIDs that
        // mean nothing here: the re-match by Message-ID settles those messages instead.
        let current = selected?.uidValidity
        let indices = marks.indices.filter { i in
            marks[i].sent != nil && (marks[i].uidValidity == nil || current == nil || marks[i].uidValidity == current)
        }
        guard !indices.isEmpty else { return result }
        let wanted = indices.map { ArrivalMatching.Wanted(sent: marks[$0].sent!, from: marks[$0].uidNext ?? UID(1)) }
        let from = wanted.map(\.from).min()!
        var candidates: [ArrivalMatching.Candidate] = []
        // `n:*` names the last message even when its UID is below n: hence the filter.
        for m in try await session.fetch(UIDSet.from(from), items: [.uid, .rfc822Size, Self.identityItem]).messages {
            guard let uid = m.uid, uid >= from, !taken.contains(uid), let size = m.size else { continue }
            let id = MessageIdentity.headerFields(m.sections[Self.identitySection] ?? [])["message-id"]
            candidates.append(.init(uid: uid, size: size, messageID: (id?.isEmpty ?? true) ? nil : id))
        }
        guard !candidates.isEmpty else { return result }
        let first = ArrivalMatching.settle(wanted, among: candidates)
        var digests: [UID: [UInt8]] = [:]
        if !first.toHash.isEmpty {
            let sink = DigestSink()
            _ = try await session.fetchMessages(UIDSet(first.toHash), sink: sink)
            digests = sink.digests
        }
        for (w, uid) in ArrivalMatching.finish(wanted, among: candidates, settled: first.settled, digests: digests) {
            result[indices[w]] = .uid(uid)
        }
        return result
    }

    /// An upload of a version before 7, by the token header its copy carries; extra copies
    /// (that version's recovery could leave one) are removed.
    private func locate(legacyToken token: String, from: UID?, excluding: Set<UID>) async throws -> UID? {
        let found = Array(try await session.search([.header("X-Mailmirror-Token", Array(token.utf8)), .uid(UIDSet.from(from ?? UID(1)))]))
            .filter { !excluding.contains($0) }
        guard let first = found.first else { return nil }
        if found.count > 1 { try await session.deleteMessages(UIDSet(found.dropFirst())) }
        return first
    }
}

/// Hashes streamed FETCH bodies: UID → SHA-256 of `BODY[]` (as sent, CRLF).
final class DigestSink: FetchBodySink, @unchecked Sendable {   // fed on the session's queue
    private(set) var digests: [UID: [UInt8]] = [:]
    private var hash: SHA256?
    private var uid: UID?
    func begin(_ info: StreamInfo) throws { hash = SHA256(); uid = info.uid.map { UID($0) } }
    func write(_ bytes: [UInt8]) throws { hash?.update(bytes) }
    func end() throws {
        if let uid, let hash { digests[uid] = hash.finish() }
        hash = nil
    }
}

/// Adapts streamed FETCH bodies to an `IncomingBatch` (called on the session's queue, one
/// message at a time, so batches fed by several fetches never interleave).
final class ExportSink: FetchBodySink, @unchecked Sendable {
    let batch: IncomingBatch
    let order: [UID]
    let flags: [MessageKey: MessageFlags]
    let dates: [UID: Int64]
    var arrivals = 0

    init(batch: IncomingBatch, order: [UID], flags: [MessageKey: MessageFlags], dates: [UID: Int64]) {
        self.batch = batch
        self.order = order
        self.flags = flags
        self.dates = dates
    }

    func begin(_ info: StreamInfo) throws {
        // Dovecot sends the UID before the body; otherwise bodies come in UID order.
        let uid = info.uid.map { UID($0) } ?? (arrivals < order.count ? order[arrivals] : UID(0))
        arrivals += 1
        try batch.begin(.uid(uid), flags: flags[.uid(uid)] ?? MessageFlags(), date: dates[uid])
    }
    func write(_ bytes: [UInt8]) throws { try batch.write(bytes) }
    func end() throws { try batch.end() }
}

/// Messages arriving onto the server, byte for byte (invariant 5): a Maildir file is sent
/// from where it is (fingerprinted when adopted, then sent as that fingerprint says:
/// `MaildirUploadSource`); anything else is spooled (its fingerprint taken as it is
/// written) so its exact size is known for the APPEND literal. All are APPENDed
/// (MULTIAPPEND) with their flags and dates; UIDs come from APPENDUID or, without UIDPLUS,
/// from `IMAPFolderStore.locate` by their fingerprints.
final class IMAPIncomingBatch: IncomingBatch, @unchecked Sendable {   // fed by one transfer at a time
    let store: IMAPFolderStore
    /// An APPEND makes a message visible on the server: nothing local is flushed first.
    func alsoFlush(_ path: String) -> Bool { false }
    struct Item {
        var key: MessageKey
        var path: String
        var flags: MessageFlags
        var date: Int64?
        var sent: WireFingerprint
        /// A Maildir file taken as it is (never unlinked here), or a spool file of this batch.
        var adopted: Bool
    }
    private var expected = Set<MessageKey>()
    private(set) var items: [Item] = []
    private var fd: Int32 = -1
    private var current: (key: MessageKey, path: String, flags: MessageFlags, date: Int64?)?
    private var fingerprinter = WireFingerprinter()

    init(store: IMAPFolderStore) { self.store = store }

    func prepare(_ keys: [MessageKey]) throws { expected.formUnion(keys) }

    var marks: [MessageKey: ArrivalMark] {
        var result: [MessageKey: ArrivalMark] = [:]
        for item in items { result[item.key] = mark(item) }
        return result
    }

    private func mark(_ item: Item) -> ArrivalMark {
        ArrivalMark(sent: item.sent, uidValidity: store.selected?.uidValidity, uidNext: store.selected?.uidNext)
    }

    func begin(_ key: MessageKey, flags: MessageFlags, date: Int64?) throws {
        guard expected.contains(key) else { current = nil; return }
        let path = store.spoolDirectory + "/" + randomToken()
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MaildirError(operation: "spool upload", path: path, errno: errno) }
        current = (key, path, flags, date)
        fingerprinter = WireFingerprinter()
    }

    func write(_ wireBytes: [UInt8]) throws {
        guard let current, fd >= 0 else { return }
        fingerprinter.feed(wireBytes)
        var offset = 0
        while offset < wireBytes.count {
            let n = wireBytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw MaildirError(operation: "spool upload", path: current.path, errno: errno) }
            offset += n
        }
    }

    func adopt(file path: String, for key: MessageKey, flags: MessageFlags, date: Int64?) throws -> Bool {
        guard expected.contains(key) else { return false }
        let sent: WireFingerprint, used: String
        do {
            (sent, used) = try WireFingerprint.ofFile(path)
        } catch {
            // (One catch: several `catch where` clauses on a typed throw crash the 6.x compiler.)
            switch error.errno {
            case ENOENT: return true                                         // deleted by a mail reader since the listing
            case EACCES, EPERM: unreadable.append((key, "\(error)")); return true   // one file must not hold back the folder
            default: throw error
            }
        }
        items.append(Item(key: key, path: used, flags: flags, date: date, sent: sent, adopted: true))
        return true
    }

    func end() throws {
        guard let current else { return }
        close(fd)
        fd = -1
        items.append(Item(key: current.key, path: current.path, flags: current.flags, date: current.date,
                          sent: fingerprinter.finish(), adopted: false))
        self.current = nil
    }

    func commit() async throws -> [MessageKey: MessageKey] {
        defer { abort() }
        guard !items.isEmpty else { return [:] }
        var mapping: [MessageKey: MessageKey] = [:]
        for start in stride(from: 0, to: items.count, by: 50) {
            let part = Array(items[start..<min(start + 50, items.count)])
            do {
                try await append(part, into: &mapping)
            } catch let error where !mapping.isEmpty && !((error as? IMAPError)?.refusesThisMessage ?? false) {
                // Stopped part-way (OVERQUOTA, a lost connection): what went is recorded,
                // the rest stays journaled (a lost reply is found by recovery).
                failure = error
                return mapping
            } catch let error as IMAPError where error.refusesThisMessage {
                // One message the server will not take must not hold back the others (nor
                // the folder, pass after pass): one at a time, the refused ones stay here.
                // A server without MULTIAPPEND took those before the refused one already:
                // found by what was sent, never sent twice.
                var found = [MessageKey?](repeating: nil, count: part.count)
                if await !store.session.capabilities.contains("MULTIAPPEND") {
                    found = try await store.locate(part.map(mark), excluding: Set(mapping.values))
                }
                for (item, key) in zip(part, found) {
                    if let key {
                        note(item, key, into: &mapping)
                        continue
                    }
                    do { try await append([item], into: &mapping) }
                    catch let error as IMAPError where error.refusesThisMessage { refused.append((item.key, error.serverText)) }
                }
            }
        }
        return mapping
    }

    /// Messages the server refused one by one (its NO, e.g. a size limit): not uploaded.
    private(set) var refused: [(key: MessageKey, reason: String)] = []
    private(set) var failure: (any Error)?
    private(set) var unreadable: [(key: MessageKey, reason: String)] = []

    private func note(_ item: Item, _ key: MessageKey, into mapping: inout [MessageKey: MessageKey]) {
        mapping[item.key] = key
        if let uid = key.uid { store.assigned.insert(uid) }
    }

    /// APPENDs `items` in one command and notes where they went; a message whose file is
    /// gone since the listing (deleted by a mail reader) is left out.
    private func append(_ items: [Item], into mapping: inout [MessageKey: MessageKey]) async throws {
        var sent: [Item] = []
        var messages: [AppendMessage] = []
        for item in items {
            let source: MessageSource
            do {
                source = item.adopted
                    ? try MaildirUploadSource(path: item.path, expecting: item.sent)
                    : try SpoolFileSource(path: item.path)
            } catch let error as MaildirError where error.errno == ENOENT {
                continue
            }
            sent.append(item)
            messages.append(AppendMessage(flags: store.keywords.imapFlags(store.keywords.mirroredPart(item.flags)), internalDate: item.date,
                                          source: source))
        }
        guard !messages.isEmpty else { return }
        let assigned = try await store.session.append(messages, to: store.mailbox)
        // APPENDUID is trusted only from a server that announces UIDPLUS.
        if let assigned, assigned.destination.count == sent.count, await store.session.capabilities.contains("UIDPLUS") {
            for (item, uid) in zip(sent, Array(assigned.destination)) { note(item, .uid(uid), into: &mapping) }
        } else {
            let found = try await store.locate(sent.map(mark), excluding: Set(mapping.values))
            for (item, key) in zip(sent, found) { if let key { note(item, key, into: &mapping) } }
        }
    }

    func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        if let current { unlink(current.path) }
        for item in items where !item.adopted { unlink(item.path) }   // never a Maildir file
        items = []
        current = nil
    }
}

/// A spooled upload, sent as it is (already in wire form: CRLF).
final class SpoolFileSource: MessageSource, @unchecked Sendable {
    let size: Int64
    private let fd: Int32
    private let path: String

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MaildirError(operation: "read spooled upload", path: path, errno: errno) }
        var st = stat()
        fstat(fd, &st)
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    func nextChunk() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = read(fd, &buffer, buffer.count)
        if n < 0 { throw MaildirError(operation: "read spooled upload", path: path, errno: errno) }
        return n == 0 ? nil : Array(buffer[0..<n])
    }
}

/// Hands a non-Sendable value to concurrent code that is known to use it serially.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
