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
    /// What SELECT reported.
    private(set) var selected: SelectedMailbox?
    private var dates: [UID: Int64] = [:]
    /// UIDs per UID FETCH of an export; `pipelineDepth` of them in flight.
    var exportBatch = 64
    var pipelineDepth = 4

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
        if let since = changedSince, await session.enabled.contains("QRESYNC") {
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
        guard ahead == nil, await session.enabled.contains("QRESYNC") else { return }
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

    func list() async throws -> [MessageKey: StoreMessage] {
        let (messages, _) = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: Self.metadata)
        var result: [MessageKey: StoreMessage] = [:]
        for m in messages {
            guard let uid = m.uid else { continue }
            if let d = m.internalDate { dates[uid] = d }
            result[.uid(uid)] = StoreMessage(key: .uid(uid), flags: FlagMapping.letters(m.flags ?? []), date: m.internalDate, size: m.size)
        }
        return result
    }

    /// The server's messages from what changed since `modSeq` (CONDSTORE): one CHANGEDSINCE
    /// FETCH for the changed flags and new messages; with QRESYNC its VANISHED part says
    /// which known UIDs are gone, else one UID SEARCH (ESEARCH: a compact set) says which
    /// still exist. Every other known message keeps the flags in `known`; `alsoKnown`
    /// (messages left on the server on purpose, with their sizes) are kept as they were.
    /// Short answers instead of a FETCH line per message.
    func listChanges(since modSeq: ModSeq, known: [UID: MessageFlags], alsoKnown: [UID: Int64?] = [:]) async throws -> [MessageKey: StoreMessage] {
        let changed: [FetchedMessage]
        let gone: (UID) -> Bool
        if let early, early.since == modSeq {
            changed = early.messages
            let vanished = early.vanished
            gone = { vanished.contains($0) }
        } else if await session.enabled.contains("QRESYNC") {
            let fetched = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: Self.metadata, changedSince: modSeq)
            changed = fetched.messages
            gone = { fetched.vanished.contains($0) }
        } else {
            changed = try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: Self.metadata, changedSince: modSeq).messages
            let existing = try await session.search([.all])
            var unknownNew: [UID] = []
            let reported = Set(changed.compactMap(\.uid))
            for uid in existing where known[uid] == nil && alsoKnown[uid] == nil && !reported.contains(uid) { unknownNew.append(uid) }
            var extra: [FetchedMessage] = []
            if !unknownNew.isEmpty {   // not reported as changed, yet unknown: fetch them plainly
                extra = try await session.fetch(UIDSet(unknownNew), items: Self.metadata).messages
            }
            return merge(known: known, alsoKnown: alsoKnown, changed: changed + extra) { !existing.contains($0) }
        }
        early = nil
        return merge(known: known, alsoKnown: alsoKnown, changed: changed, gone: gone)
    }

    private func merge(known: [UID: MessageFlags], alsoKnown: [UID: Int64?], changed: [FetchedMessage],
                       gone: (UID) -> Bool) -> [MessageKey: StoreMessage] {
        var result: [MessageKey: StoreMessage] = [:]
        result.reserveCapacity(known.count + changed.count)
        for (uid, flags) in known where !gone(uid) {
            result[.uid(uid)] = StoreMessage(key: .uid(uid), flags: flags, date: nil, size: nil)
        }
        for (uid, size) in alsoKnown where !gone(uid) {
            result[.uid(uid)] = StoreMessage(key: .uid(uid), flags: MessageFlags(), date: nil, size: size)
        }
        for m in changed {
            guard let uid = m.uid, !gone(uid) else { continue }
            if let d = m.internalDate { dates[uid] = d }
            result[.uid(uid)] = StoreMessage(key: .uid(uid), flags: FlagMapping.letters(m.flags ?? []), date: m.internalDate, size: m.size)
        }
        return result
    }

    func apply(_ changes: [FlagChange]) async throws {
        var groups: [String: (add: MessageFlags, remove: MessageFlags, uids: [UID])] = [:]
        for change in changes {
            guard case .uid(let uid) = change.key else { continue }
            let add = FlagMapping.mirrored(change.add), remove = FlagMapping.mirrored(change.remove)
            if add.isEmpty && remove.isEmpty { continue }
            groups["+\(add)-\(remove)", default: (add, remove, [])].uids.append(uid)
        }
        for (_, group) in groups.sorted(by: { $0.key < $1.key }) {
            let set = UIDSet(group.uids)
            if !group.add.isEmpty { try await session.store(set, .add, FlagMapping.imapFlags(group.add)) }
            if !group.remove.isEmpty { try await session.store(set, .remove, FlagMapping.imapFlags(group.remove)) }
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
        let dates = self.dates
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

    func recover(token: String, since marker: UID?) async throws -> MessageKey? {
        let found = Array(try await session.search([.header("X-Mailmirror-Token", Array(token.utf8)), .uid(UIDSet.from(marker ?? UID(1)))]))
        guard let first = found.first else { return nil }
        if found.count > 1 { try await session.deleteMessages(UIDSet(found.dropFirst())) }   // never two copies
        return .uid(first)
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

/// Messages arriving onto the server: a Maildir file is sent from where it is (its size
/// in CRLF form measured at commit, `MaildirUploadSource`); anything else is spooled (with
/// its `X-Mailmirror-Token:` header first) so its exact size is known for the APPEND
/// literal. All are APPENDed (MULTIAPPEND) with their flags and dates; UIDs come from
/// APPENDUID or, without UIDPLUS, from searching each token.
final class IMAPIncomingBatch: IncomingBatch, @unchecked Sendable {   // fed by one transfer at a time
    let store: IMAPFolderStore
    /// An APPEND makes a message visible on the server: nothing local is flushed first.
    func alsoFlush(_ path: String) -> Bool { false }
    var tokens: [MessageKey: String] = [:]
    var spooled: [(key: MessageKey, path: String, flags: MessageFlags, date: Int64?)] = []
    /// Maildir files taken as they are (not spooled): sent with their token header at commit.
    private var adopted = Set<String>()
    private var fd: Int32 = -1
    private var current: (key: MessageKey, path: String, flags: MessageFlags, date: Int64?)?

    init(store: IMAPFolderStore) { self.store = store }

    func prepare(_ keys: [MessageKey]) throws -> [MessageKey: String] {
        for key in keys { tokens[key] = randomToken() }
        return tokens
    }

    func begin(_ key: MessageKey, flags: MessageFlags, date: Int64?) throws {
        guard let token = tokens[key] else { current = nil; return }
        let path = store.spoolDirectory + "/" + token
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MaildirError(operation: "spool upload", path: path, errno: errno) }
        current = (key, path, flags, date)
        try write(MaildirUploadSource.tokenHeader(token))
    }

    func write(_ wireBytes: [UInt8]) throws {
        guard let current, fd >= 0 else { return }
        var offset = 0
        while offset < wireBytes.count {
            let n = wireBytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw MaildirError(operation: "spool upload", path: current.path, errno: errno) }
            offset += n
        }
    }

    func adopt(file path: String, for key: MessageKey, flags: MessageFlags, date: Int64?) throws -> Bool {
        guard tokens[key] != nil else { return false }
        spooled.append((key, path, flags, date))
        adopted.insert(path)
        return true
    }

    func end() throws {
        guard let current else { return }
        close(fd)
        fd = -1
        spooled.append(current)
        self.current = nil
    }

    func commit() async throws -> [MessageKey: MessageKey] {
        defer { abort() }
        guard !spooled.isEmpty else { return [:] }
        var mapping: [MessageKey: MessageKey] = [:]
        let marker = store.selected?.uidNext
        for start in stride(from: 0, to: spooled.count, by: 50) {
            let part = Array(spooled[start..<min(start + 50, spooled.count)])
            do {
                try await append(part, marker: marker, into: &mapping)
            } catch let error as IMAPError where error.refusesThisMessage {
                // One message the server will not take must not hold back the others (nor
                // the folder, pass after pass): one at a time, the refused ones stay here.
                // A server without MULTIAPPEND took those before the refused one already:
                // found by their tokens, never sent twice.
                let appendedSome = await !store.session.capabilities.contains("MULTIAPPEND")
                for item in part {
                    if appendedSome, let key = try await store.recover(token: tokens[item.key]!, since: marker) {
                        mapping[item.key] = key
                        continue
                    }
                    do { try await append([item], marker: marker, into: &mapping) }
                    catch let error as IMAPError where error.refusesThisMessage { refused.append((item.key, error.serverText)) }
                }
            }
        }
        return mapping
    }

    /// Messages the server refused one by one (its NO, e.g. a size limit): not uploaded.
    private(set) var refused: [(key: MessageKey, reason: String)] = []

    /// APPENDs `items` in one command and notes where they went; a message whose file is
    /// gone since the listing (deleted by a mail reader) is left out.
    private func append(_ items: [(key: MessageKey, path: String, flags: MessageFlags, date: Int64?)], marker: UID?,
                        into mapping: inout [MessageKey: MessageKey]) async throws {
        var sent: [(key: MessageKey, path: String, flags: MessageFlags, date: Int64?)] = []
        var messages: [AppendMessage] = []
        for item in items {
            let source: MessageSource
            do {
                source = adopted.contains(item.path)
                    ? try MaildirUploadSource(path: item.path, token: tokens[item.key])
                    : try SpoolFileSource(path: item.path)
            } catch let error as MaildirError where error.errno == ENOENT {
                continue
            }
            sent.append(item)
            messages.append(AppendMessage(flags: FlagMapping.imapFlags(FlagMapping.mirrored(item.flags)), internalDate: item.date,
                                          source: source))
        }
        guard !messages.isEmpty else { return }
        let assigned = try await store.session.append(messages, to: store.mailbox)
        if let assigned, assigned.destination.count == sent.count {
            for (item, uid) in zip(sent, Array(assigned.destination)) { mapping[item.key] = .uid(uid) }
        } else {
            for item in sent {
                if let key = try await store.recover(token: tokens[item.key]!, since: marker) { mapping[item.key] = key }
            }
        }
    }

    func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        if let current { unlink(current.path) }
        for item in spooled where !adopted.contains(item.path) { unlink(item.path) }   // never a Maildir file
        spooled = []
        adopted = []
        current = nil
    }
}

/// A spooled upload, sent as it is (CRLF and token header already in place).
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
