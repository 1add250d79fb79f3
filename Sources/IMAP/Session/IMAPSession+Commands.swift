import Support

/// Login mechanisms (the account's `auth`).
public enum IMAPAuthMechanism: String, Sendable, CaseIterable {
    case auto, plain, login, xoauth2, oauthbearer
}

/// What SELECT/EXAMINE reported.
public struct SelectedMailbox: Sendable, Equatable {
    public var name: MailboxName
    public var uidValidity: UIDValidity?
    public var uidNext: UID?
    public var highestModSeq: ModSeq?
    /// The server keeps no mod-sequences for this mailbox.
    public var noModSeq = false
    public var exists = 0
    public var permanentFlags: [Flag] = []
    public var readOnly = false
    /// QRESYNC: UIDs expunged since the given mod-sequence.
    public var vanished = UIDSet()
    /// QRESYNC: messages changed since the given mod-sequence.
    public var changed: [FetchedMessage] = []
}

/// The metadata of one message from a FETCH response.
public struct FetchedMessage: Sendable, Equatable {
    public var sequence: Int
    public var uid: UID?
    public var flags: [Flag]?
    public var internalDate: Int64?
    public var size: Int64?
    public var modSeq: ModSeq?
    /// Inline body sections (e.g. HEADER.FIELDS), by canonical section text
    /// (`SectionSpec.canonical`: look up `HEADER.FIELDS (MESSAGE-ID)` whatever the server's spelling).
    public var sections: [[UInt8]: [UInt8]] = [:]

    init(sequence: Int, attributes: [FetchAttribute]) {
        self.sequence = sequence
        for attribute in attributes {
            switch attribute {
            case .uid(let u): uid = u
            case .flags(let f): flags = f
            case .internalDate(let d): internalDate = d
            case .rfc822Size(let s): size = s
            case .modSeq(let m): modSeq = m
            case let .body(section, _, .inline(data)): sections[SectionSpec.canonical(section)] = data
            case .body, .other: break
            }
        }
    }
}

/// STATUS of a mailbox.
public struct MailboxStatus: Sendable, Equatable {
    public var messages: Int?
    public var uidNext: UID?
    public var uidValidity: UIDValidity?
    public var highestModSeq: ModSeq?
    public var unseen: Int?
}

/// APPENDUID / COPYUID results (RFC 4315).
public struct AssignedUIDs: Sendable, Equatable {
    public var uidValidity: UIDValidity
    public var source: UIDSet?
    public var destination: UIDSet

    /// The COPYUIDs of a command sent in pieces, as one; nil unless every piece had one
    /// (with the same UIDVALIDITY). Pieces go in ascending UID order and servers assign
    /// ascending UIDs, so the joined sets still pair in order.
    static func joined(_ pieces: [AssignedUIDs?]) -> AssignedUIDs? {
        guard let first = pieces.first ?? nil else { return nil }
        guard pieces.count > 1 else { return first }
        var joined = first
        for piece in pieces.dropFirst() {
            guard let piece, piece.uidValidity == first.uidValidity, let s = piece.source, let js = joined.source else { return nil }
            joined.source = UIDSet(ranges: js.ranges + s.ranges)
            joined.destination = UIDSet(ranges: joined.destination.ranges + piece.destination.ranges)
        }
        return joined
    }
}

extension AssignedUIDs {
    /// The COPYUID of a COPY or MOVE: in the tagged OK (COPY, and MOVE on most servers) or
    /// in an untagged OK before it (MOVE, RFC 6851 §4.3); nil when the server sent none.
    init?(reportedIn result: CommandResult) {
        var found: (UIDValidity, UIDSet, UIDSet)?
        if case let .copyUID(v, source, destination)? = result.tagged.code { found = (v, source, destination) }
        for case .condition(_, .copyUID(let v, let source, let destination)?, _) in result.untagged { found = (v, source, destination) }
        guard let (v, source, destination) = found else { return nil }
        self.init(uidValidity: v, source: source, destination: destination)
    }
}

/// Builds SASL client responses; it keeps state between challenges.
final class SASLResponder: @unchecked Sendable {
    let initial: [UInt8]
    let onError: [UInt8]
    var sentInitial: Bool

    init(initial: [UInt8], onError: [UInt8], sentInitial: Bool) {
        self.initial = initial
        self.onError = onError
        self.sentInitial = sentInitial
    }

    func respond(_ challenge: [UInt8]) -> [UInt8] {
        if !sentInitial {
            sentInitial = true
            return Base64.encode(initial)
        }
        return onError   // an error challenge: answer so the server sends its tagged NO
    }
}

extension IMAPSession {
    // MARK: Authentication

    /// Logs in with the configured mechanism (`auto`: AUTH=PLAIN if offered, else LOGIN),
    /// then re-reads capabilities (they usually grow after login).
    /// - Parameter secret: the password, or for XOAUTH2/OAUTHBEARER the access token.
    public func login(username: String, secret: String, mechanism: IMAPAuthMechanism = .auto,
                      host: String = "", port: UInt16 = 0) async throws {
        let user = Array(username.utf8)
        let pass = Array(secret.utf8)
        var chosen = mechanism
        if chosen == .auto {
            if capabilities.contains("AUTH=PLAIN") { chosen = .plain }
            else if !capabilities.contains("LOGINDISABLED") { chosen = .login }
            else { throw IMAPError.loginDisabled(peer: peer) }
        }
        let offered = capabilities.filter { $0.hasPrefix("AUTH=") }.map { String($0.dropFirst(5)) }.sorted()
        let result: CommandResult
        switch chosen {
        case .login, .auto:
            if capabilities.contains("LOGINDISABLED") { throw IMAPError.loginDisabled(peer: peer) }
            result = try await execute(.login(username: user, password: pass), kind: .authenticate)
        case .plain, .xoauth2, .oauthbearer:
            let name = chosen == .plain ? "PLAIN" : chosen == .xoauth2 ? "XOAUTH2" : "OAUTHBEARER"
            guard capabilities.contains("AUTH=" + name) else {
                throw IMAPError.mechanismNotOffered(peer: peer, mechanism: name, offered: offered)
            }
            let initial: [UInt8]
            var onError: [UInt8] = []
            switch chosen {
            case .plain:
                initial = [0] + user + [0] + pass
            case .xoauth2:
                initial = Array("user=".utf8) + user + [1] + Array("auth=Bearer ".utf8) + pass + [1, 1]
            default:
                initial = Array("n,a=".utf8) + user + Array(",".utf8) + [1] + Array("host=\(host)".utf8) + [1]
                    + Array("port=\(port)".utf8) + [1] + Array("auth=Bearer ".utf8) + pass + [1, 1]
                onError = Base64.encode([1])
            }
            let saslIR = capabilities.contains("SASL-IR")
            let responder = SASLResponder(initial: initial, onError: onError, sentInitial: saslIR)
            result = try await execute(.authenticate(mechanism: name, initialResponse: saslIR ? Base64.encode(initial) : nil),
                                       kind: .authenticate, onContinuation: { responder.respond($0) })
        }
        if case .capability? = result.tagged.code {} else { try await refreshCapabilities() }
    }

    // MARK: Session setup

    /// ENABLE (RFC 5161) of the extensions offered among `extensions`; returns those enabled.
    @discardableResult
    public func enable(_ extensions: [String]) async throws -> Set<String> {
        let offered = extensions.filter { capabilities.contains($0.uppercased()) }
        guard capabilities.contains("ENABLE"), !offered.isEmpty else { return [] }
        try await execute(.enable(offered))
        if enabled.contains("UTF8=ACCEPT") { encoder.utf8Accept = true }
        return enabled
    }

    /// ID (RFC 2971): tells the server who we are; returns its answer.
    public func id(_ parameters: [(String, String)]) async throws -> [String: String]? {
        guard capabilities.contains("ID") else { return nil }
        let result = try await execute(.id(parameters))
        for case .id(let values) in result.untagged { return values }
        return nil
    }

    /// NAMESPACE (RFC 2342), or nil without the capability.
    public func namespace() async throws -> NamespaceResponse? {
        guard capabilities.contains("NAMESPACE") else { return nil }
        let result = try await execute(.namespace)
        for case .namespace(let ns) in result.untagged { return ns }
        return nil
    }

    // MARK: Mailboxes

    /// LIST (with `RETURN (SPECIAL-USE)` when offered).
    public func list(reference: [UInt8] = [], pattern: [UInt8] = Array("*".utf8)) async throws -> [ListEntry] {
        try await listWithStatus(reference: reference, pattern: pattern).entries
    }

    /// LIST, and with LIST-STATUS (RFC 5819) the STATUS of every listed mailbox in the same
    /// command (UIDNEXT, UIDVALIDITY, MESSAGES, and HIGHESTMODSEQ under CONDSTORE).
    public func listWithStatus(reference: [UInt8] = [], pattern: [UInt8] = Array("*".utf8)) async throws -> (entries: [ListEntry], status: [MailboxName: MailboxStatus]) {
        var items: [StatusItem] = []
        if capabilities.contains("LIST-STATUS") {
            items = [.uidNext, .uidValidity, .messages]
            if capabilities.contains("CONDSTORE") { items.append(.highestModSeq) }
        }
        let result = try await execute(.list(reference: reference, pattern: pattern,
                                             returnSpecialUse: capabilities.contains("SPECIAL-USE") && capabilities.contains("LIST-EXTENDED"),
                                             returnStatus: items))
        var status: [MailboxName: MailboxStatus] = [:]
        for case .status(let name, let values) in result.untagged {
            status[name] = MailboxStatus(messages: values[.messages].map { Int($0) },
                                         uidNext: values[.uidNext].map { UID(UInt32(truncatingIfNeeded: $0)) },
                                         uidValidity: values[.uidValidity].map { UIDValidity(UInt32(truncatingIfNeeded: $0)) },
                                         highestModSeq: values[.highestModSeq].map { ModSeq($0) }, unseen: nil)
        }
        return (result.untagged.compactMap { if case .list(let e) = $0 { e } else { nil } }, status)
    }

    /// SELECT (or EXAMINE when `readOnly`), with CONDSTORE or QRESYNC parameters when enabled.
    public func select(_ mailbox: MailboxName, readOnly: Bool = false, qresync: QResyncParameters? = nil) async throws -> SelectedMailbox {
        let condstore = capabilities.contains("CONDSTORE") && qresync == nil
        let useQResync = enabled.contains("QRESYNC") ? qresync : nil
        let command: Command = readOnly ? .examine(mailbox, condstore: condstore, qresync: useQResync)
                                        : .select(mailbox, condstore: condstore, qresync: useQResync)
        return Self.selectedMailbox(mailbox, from: try await execute(command))
    }

    /// SELECT (CONDSTORE when offered) and `UID FETCH 1:* (items) (CHANGEDSINCE since
    /// [VANISHED])` in one flight: the mailbox and what changed in it since `since` (VANISHED
    /// only with QRESYNC enabled). The caller checks UIDVALIDITY before trusting the changes.
    ///
    /// With `newFrom` (the UIDNEXT of the last look), the messages from there on are fetched
    /// by their own FETCH and the CHANGEDSINCE one covers only the UIDs below: disjoint
    /// ranges, so the two answers never mix even when the server runs both at once.
    public func selectWithChanges(_ mailbox: MailboxName, items: [FetchItem], since: ModSeq,
                                  newFrom: UID? = nil) async throws
        -> (SelectedMailbox, changed: [FetchedMessage], vanished: UIDSet) {
        let condstore = capabilities.contains("CONDSTORE")
        var commands: [Command] = [.select(mailbox, condstore: condstore, qresync: nil)]
        let below = newFrom.map { $0.rawValue > 1 ? UIDSet(ranges: [1...($0.rawValue - 1)]) : UIDSet() } ?? UIDSet(ranges: [1...UInt32.max])
        if !below.isEmpty { commands.append(.uidFetch(below, items, changedSince: since, vanished: enabled.contains("QRESYNC"))) }
        if let newFrom { commands.append(.uidFetch(UIDSet.from(newFrom), items, changedSince: nil, vanished: false)) }
        let results = try await pipeline(commands)
        let selected = Self.selectedMailbox(mailbox, from: try results[0].get())
        var changed: [FetchedMessage] = []
        var vanished = UIDSet()
        for (index, result) in results.enumerated().dropFirst() {
            var (messages, gone) = Self.collectFetches(try result.get().untagged)
            // "N:*" names the last message when there is none from N on: that is no new one.
            if let newFrom, index == results.count - 1 { messages.removeAll { ($0.uid?.rawValue ?? 0) < newFrom.rawValue } }
            changed += messages
            vanished = UIDSet(ranges: vanished.ranges + gone.ranges)
        }
        return (selected, changed, vanished)
    }

    static func selectedMailbox(_ mailbox: MailboxName, from result: CommandResult) -> SelectedMailbox {
        var selected = SelectedMailbox(name: mailbox)
        selected.readOnly = result.tagged.code == .readOnly
        var changed: [Int: FetchedMessage] = [:]
        var order: [Int] = []
        for u in result.untagged {
            switch u {
            case .exists(let n): selected.exists = n
            case .condition(_, let code?, _):
                switch code {
                case .uidValidity(let v): selected.uidValidity = v
                case .uidNext(let n): selected.uidNext = n
                case .highestModSeq(let m): selected.highestModSeq = m
                case .noModSeq: selected.noModSeq = true
                case .permanentFlags(let f): selected.permanentFlags = f
                default: break
                }
            case .vanished(_, let set):
                for r in set.ranges { selected.vanished = UIDSet(ranges: selected.vanished.ranges + [r]) }
            case .fetch(let seq, let atts):
                if changed[seq] == nil { order.append(seq) }
                changed[seq] = FetchedMessage(sequence: seq, attributes: atts)
            default: break
            }
        }
        selected.changed = order.compactMap { changed[$0] }
        return selected
    }

    /// STATUS of a mailbox that is not selected.
    public func status(_ mailbox: MailboxName, items: [StatusItem]? = nil) async throws -> MailboxStatus {
        var wanted = items ?? [.messages, .uidNext, .uidValidity, .unseen]
        if items == nil && capabilities.contains("CONDSTORE") { wanted.append(.highestModSeq) }
        let result = try await execute(.status(mailbox, wanted))
        var status = MailboxStatus()
        for case .status(_, let values) in result.untagged {
            status.messages = values[.messages].map { Int($0) }
            status.uidNext = values[.uidNext].map { UID(UInt32(truncatingIfNeeded: $0)) }
            status.uidValidity = values[.uidValidity].map { UIDValidity(UInt32(truncatingIfNeeded: $0)) }
            status.highestModSeq = values[.highestModSeq].map { ModSeq($0) }
            status.unseen = values[.unseen].map { Int($0) }
        }
        return status
    }

    public func create(_ mailbox: MailboxName) async throws { try await execute(.create(mailbox)) }
    public func delete(_ mailbox: MailboxName) async throws { try await execute(.delete(mailbox)) }
    public func rename(_ from: MailboxName, to: MailboxName) async throws { try await execute(.rename(from, to)) }
    public func subscribe(_ mailbox: MailboxName) async throws { try await execute(.subscribe(mailbox)) }
    public func noop() async throws { try await execute(.noop) }

    /// UNSELECT (RFC 3691) when offered, else CLOSE (which would expunge: only use when the
    /// mailbox was opened read-only, or nothing carries \Deleted by our doing).
    public func unselect() async throws {
        try await execute(capabilities.contains("UNSELECT") ? .unselect : .close)
    }

    // MARK: Messages

    /// UID FETCH of metadata; with `changedSince` (CONDSTORE) only what changed, and with
    /// QRESYNC enabled also the UIDs that vanished.
    /// An explicit set is split to keep command lines short and within MESSAGELIMIT; a
    /// set ending in `*` is sent whole (page those with `fetchAll`).
    public func fetch(_ uids: UIDSet, items: [FetchItem], changedSince: ModSeq? = nil) async throws -> (messages: [FetchedMessage], vanished: UIDSet) {
        let vanished = changedSince != nil && enabled.contains("QRESYNC")
        let chunks = uids.chunked(maxCount: messageLimit)
        guard chunks.count > 1 else {
            let result = try await execute(.uidFetch(uids, items, changedSince: changedSince, vanished: vanished))
            return Self.collectFetches(result.untagged)
        }
        var untagged: [UntaggedResponse] = []
        for result in try await pipeline(chunks.map { .uidFetch($0, items, changedSince: changedSince, vanished: vanished) }) {
            untagged += try result.get().untagged
        }
        return Self.collectFetches(untagged)
    }

    /// `items` of every message of the selected mailbox. Up to `pageSize` messages (and
    /// never more than MESSAGELIMIT) it is one `UID FETCH 1:*`; a larger mailbox is read in
    /// pages by sequence number, pipelined (the server may not expunge during FETCH, RFC
    /// 3501 §7.4.1, so the numbers hold), then `UID FETCH` above the last UID seen picks up
    /// what arrived meanwhile. Servers such as Exchange or Yahoo answer a huge single FETCH
    /// slowly or not at all.
    public func fetchAll(items: [FetchItem], pageSize: Int = 5000) async throws -> [FetchedMessage] {
        var messages: [FetchedMessage] = []
        var seen = Set<UID>()
        try await fetchAll(items: items, pageSize: pageSize) { m in
            if m.uid.map({ seen.insert($0).inserted }) ?? true { messages.append(m) }
        }
        return messages
    }

    /// `fetchAll`, handing each message to `each` as its page arrives: what is held is a few
    /// pages (`window` in flight), not the mailbox. A message may be handed over twice.
    public func fetchAll(items: [FetchItem], pageSize: Int = 5000, window: Int = 4,
                         each: (FetchedMessage) throws -> Void) async throws {
        let page = min(max(1, pageSize), messageLimit ?? Int.max)
        let total = messageCount
        guard total > page else {
            for m in try await fetch(UIDSet(ranges: [1...UInt32.max]), items: items).messages { try each(m) }
            return
        }
        let pages = stride(from: 1, through: total, by: page).map { UInt32($0)...UInt32(min($0 + page - 1, total)) }
        let withUID = items.contains(.uid) ? items : [.uid] + items
        var top: UInt32 = 0
        try await pipeline(pages.map { .fetch(UIDSet(ranges: [$0]), withUID) }, window: window) { result in
            for m in Self.collectFetches(try result.get().untagged).messages {
                if let uid = m.uid { top = max(top, uid.rawValue) }
                try each(m)
            }
        }
        if top > 0, top < UInt32.max {
            // `top+1:*` names the last message when nothing is above `top`: only those above count.
            for m in try await fetch(UIDSet.from(UID(top + 1)), items: items).messages where (m.uid?.rawValue ?? 0) > top { try each(m) }
        }
    }

    /// The FETCH data and VANISHED UIDs among a command's untagged responses.
    public static func collectFetches(_ untagged: [UntaggedResponse]) -> (messages: [FetchedMessage], vanished: UIDSet) {
        var messages: [FetchedMessage] = []
        var gone = UIDSet()
        for u in untagged {
            switch u {
            case .fetch(let seq, let atts): messages.append(FetchedMessage(sequence: seq, attributes: atts))
            case .vanished(_, let set): gone = UIDSet(ranges: gone.ranges + set.ranges)
            default: break
            }
        }
        return (messages, gone)
    }

    /// UID FETCH of whole messages (`BODY.PEEK[]`, plus UID FLAGS INTERNALDATE RFC822.SIZE),
    /// each body streamed to `sink` as it arrives. Issue several at once to pipeline.
    public func fetchMessages(_ uids: UIDSet, sink: FetchBodySink, extraItems: [FetchItem] = []) async throws -> [FetchedMessage] {
        let items: [FetchItem] = [.uid, .flags, .internalDate, .rfc822Size] + extraItems + [.bodyPeek(section: "")]
        let result = try await execute(.uidFetch(uids, items, changedSince: nil, vanished: false), sink: sink)
        return Self.collectFetches(result.untagged).messages
    }

    /// UID SEARCH; uses ESEARCH `RETURN (ALL)` when offered. Returns matching UIDs.
    public func search(_ criteria: [SearchKey]) async throws -> UIDSet {
        let esearch = capabilities.contains("ESEARCH")
        let result = try await execute(.uidSearch(criteria: criteria, returnAll: esearch))
        var found = UIDSet()
        for u in result.untagged {
            switch u {
            case .search(let numbers, _): found = UIDSet(ranges: found.ranges + numbers.map { $0...$0 })
            case .esearch(let e): if let all = e.all { found = UIDSet(ranges: found.ranges + all.ranges) }
            default: break
            }
        }
        return found
    }

    /// UID STORE, split so command lines stay short; returns the FETCH data the server sent
    /// back (none with `silent`) and, with `unchangedSince`, the UIDs it refused (MODIFIED).
    @discardableResult
    public func store(_ uids: UIDSet, _ operation: StoreOperation, _ flags: [Flag], silent: Bool = true,
                      unchangedSince: ModSeq? = nil) async throws -> (messages: [FetchedMessage], modified: UIDSet) {
        var messages: [FetchedMessage] = []
        var modified = UIDSet()
        for chunk in uids.chunked(maxCount: messageLimit) {
            let result = try await execute(.uidStore(chunk, operation, flags, silent: silent, unchangedSince: unchangedSince))
            messages += Self.collectFetches(result.untagged).messages
            if case .modified(let set)? = result.tagged.code { modified = UIDSet(ranges: modified.ranges + set.ranges) }
        }
        return (messages, modified)
    }

    /// Expunges exactly `uids` (UIDPLUS UID EXPUNGE): never a bare EXPUNGE, which would also
    /// remove messages other clients marked \Deleted.
    public func expunge(_ uids: UIDSet) async throws {
        guard capabilities.contains("UIDPLUS") else { throw IMAPError.missingCapability(peer: peer, "UIDPLUS (needed to expunge only mailmirror's deletions)") }
        for chunk in uids.chunked(maxCount: messageLimit) { try await execute(.uidExpunge(chunk)) }
    }

    /// Deletes `uids` on the server: STORE +FLAGS.SILENT (\Deleted), then UID EXPUNGE of
    /// exactly those UIDs.
    public func deleteMessages(_ uids: UIDSet) async throws {
        guard !uids.isEmpty else { return }
        guard capabilities.contains("UIDPLUS") else { throw IMAPError.missingCapability(peer: peer, "UIDPLUS (needed to expunge only mailmirror's deletions)") }
        try await store(uids, .add, [.deleted])
        try await expunge(uids)
    }

    /// UID COPY; returns COPYUID when the server sends it.
    public func copy(_ uids: UIDSet, to mailbox: MailboxName) async throws -> AssignedUIDs? {
        var assigned: [AssignedUIDs?] = []
        for chunk in uids.chunked(maxCount: messageLimit) {
            assigned.append(AssignedUIDs(reportedIn: try await execute(.uidCopy(chunk, mailbox))))
        }
        return AssignedUIDs.joined(assigned)
    }

    /// UID MOVE (RFC 6851), or COPY + STORE \Deleted + UID EXPUNGE without it; returns
    /// the new UIDs when the server reports them.
    public func move(_ uids: UIDSet, to mailbox: MailboxName) async throws -> AssignedUIDs? {
        if capabilities.contains("MOVE") {
            var assigned: [AssignedUIDs?] = []
            for chunk in uids.chunked(maxCount: messageLimit) {
                assigned.append(AssignedUIDs(reportedIn: try await execute(.uidMove(chunk, mailbox))))
            }
            return AssignedUIDs.joined(assigned)
        }
        let assigned = try await copy(uids, to: mailbox)
        try await deleteMessages(uids)
        return assigned
    }

    /// APPEND of one message (or several in one command with MULTIAPPEND); returns the
    /// APPENDUID when the server has UIDPLUS.
    public func append(_ messages: [AppendMessage], to mailbox: MailboxName) async throws -> AssignedUIDs? {
        precondition(!messages.isEmpty)
        var assigned: AssignedUIDs?
        let batches: [[AppendMessage]] = capabilities.contains("MULTIAPPEND") ? [messages] : messages.map { [$0] }
        for batch in batches {
            let result = try await execute(.append(mailbox, batch))
            if case let .appendUID(v, set)? = result.tagged.code {
                let all = (assigned?.destination.ranges ?? []) + set.ranges
                assigned = AssignedUIDs(uidValidity: v, source: nil, destination: UIDSet(ranges: all))
            }
        }
        return assigned
    }
}

/// A message held in memory, for small uploads and tests.
public final class BytesMessageSource: MessageSource, @unchecked Sendable {
    private var bytes: [UInt8]?
    public let size: Int64
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        size = Int64(bytes.count)
    }
    public func nextChunk() throws -> [UInt8]? {
        defer { bytes = nil }
        return bytes
    }
}
