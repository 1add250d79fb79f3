import Support
import Transport

/// The result of a completed command: its tagged OK and the untagged data routed to it.
public struct CommandResult: Sendable {
    public var tagged: TaggedResponse
    public var untagged: [UntaggedResponse]
}

/// A pipelined IMAP client session over one `Connection`.
///
/// Commands may be issued concurrently: each is written in order (the write side is a FIFO
/// lock) and gets its own tagged result; untagged data is routed to the oldest pending
/// command that asked for that kind of data, and anything else is kept as unsolicited
/// (`takeUnsolicited()`). Message bodies stream to a `FetchBodySink`, so memory does not
/// depend on message size. The actor runs on the connection's Dispatch queue: no hop
/// between them. A protocol violation or transport error closes the session and fails
/// every pending command.
public actor IMAPSession {
    public nonisolated let connection: Connection
    public nonisolated var unownedExecutor: UnownedSerialExecutor { connection.unownedExecutor }
    /// "host:port", for messages.
    public nonisolated var peer: String { connection.peer }

    /// Capabilities, uppercased, as last announced.
    public private(set) var capabilities: Set<String> = []
    /// Extensions turned on with ENABLE.
    public private(set) var enabled: Set<String> = []
    /// Whether COMPRESS=DEFLATE is active.
    public private(set) var isCompressed = false
    /// Commands sent, by name (the first word: "UID FETCH" counts as "UID"), for tests and diagnostics.
    public private(set) var commandCounts: [String: Int] = [:]
    /// FETCH responses received (for tests: how much a pass really fetched).
    public private(set) var fetchResponseCount = 0
    /// Bare `* OK text` lines received while idling (Dovecot's "Still here" every 2 minutes):
    /// keepalives, which do not end IDLE.
    public private(set) var keepalivesSeen = 0
    /// Messages in the selected mailbox as the server last said (EXISTS, less each EXPUNGE
    /// and VANISHED since): the top sequence number for paging.
    public private(set) var messageCount = 0
    /// The most messages one command may name (MESSAGELIMIT=n, RFC 9738), if announced.
    public var messageLimit: Int? {
        capabilities.lazy.compactMap { c in c.hasPrefix("MESSAGELIMIT=") ? Int(c.dropFirst(13)) : nil }.first.map { max(1, $0) }
    }
    /// Set once the session can no longer be used.
    public private(set) var closedReason: IMAPError?

    var encoder = CommandEncoder()
    var parser: ResponseParser
    private var tagCounter = 0
    private var pending: [PendingCommand] = []
    private var unsolicited: [UntaggedResponse] = []
    private var readerRunning = false
    private var deflate: DeflateStream?
    private var currentSink: (sink: FetchBodySink, command: PendingCommand)?
    private var writeBusy = false
    private var writeWaiters: [CheckedContinuation<Void, Never>] = []
    private var currentWriter: PendingCommand?
    private var idleState: IdleState?
    private var byeText: String?
    /// Set while handling the read that carried the OK to STARTTLS.
    private var startTLSAccepted = false

    /// What kinds of untagged data a command collects.
    enum Kind: Equatable {
        case general, capability, enable, select, fetch, store, list, status, search, expunge, copyMove, id, namespace, idle, startTLS, authenticate, append
    }

    final class PendingCommand {
        let tag: String
        let name: String
        let kind: Kind
        let sink: FetchBodySink?
        /// The UIDs a UID FETCH/STORE/COPY/MOVE names: FETCH data is routed by UID, since a
        /// server may run pipelined commands on different messages in parallel.
        var uids: UIDSet?
        /// UIDs this command already got FETCH data for (commands naming up to 1,024 UIDs):
        /// two pending FETCHes of one UID each get one answer, not the first both.
        var answered: Set<UID>?
        var untagged: [UntaggedResponse] = []
        var outcome: Result<CommandResult, IMAPError>?
        var waiter: CheckedContinuation<CommandResult, Error>?
        var continuationWaiter: CheckedContinuation<[UInt8], Error>?
        var sinkError: String?

        init(tag: String, name: String, kind: Kind, sink: FetchBodySink?) {
            self.tag = tag
            self.name = name
            self.kind = kind
            self.sink = sink
        }

        func complete(_ result: Result<CommandResult, IMAPError>) {
            guard outcome == nil else { return }
            outcome = result
            if let w = continuationWaiter {
                continuationWaiter = nil
                w.resume(throwing: result.failureValue ?? IMAPError.closed(peer: ""))
            }
            if let waiter {
                self.waiter = nil
                waiter.resume(with: result.mapError { $0 as Error })
            }
        }
    }

    private final class IdleState {
        let command: PendingCommand
        var events: [UntaggedResponse] = []
        var stopRequested = false
        var wake: CheckedContinuation<Void, Never>?
        init(command: PendingCommand) { self.command = command }
    }

    init(connection: Connection, options: ParserOptions) {
        self.connection = connection
        self.parser = ResponseParser(options: options)
    }

    // MARK: - Connecting

    /// Connects, reads the greeting, performs STARTTLS when `security` asks for it and
    /// learns the capabilities. The session is then ready for `login`.
    public static func connect(host: String, port: UInt16, security: ConnectionSecurity,
                               connectTimeout: Double = 15, ioTimeout: Double = 60,
                               options: ParserOptions = ParserOptions()) async throws -> IMAPSession {
        let implicitTLS: TLSClientConfiguration? = if case .implicitTLS(let c) = security { c } else { nil }
        let connection: Connection
        do {
            connection = try await Connection.connect(host: host, port: port, tls: implicitTLS,
                                                      connectTimeout: connectTimeout, ioTimeout: ioTimeout)
        } catch let error as TransportError {
            throw IMAPError.transport(error)
        }
        let session = IMAPSession(connection: connection, options: options)
        do {
            try await session.start(security: security)
        } catch {
            await session.close()
            throw error
        }
        return session
    }

    private func start(security: ConnectionSecurity) async throws {
        let greeting = try await readGreeting()
        guard case .untagged(.condition(let status, let code, let text)) = greeting, status == .ok || status == .preauth else {
            if case .untagged(.condition(.bye, _, let text)) = greeting {
                throw IMAPError.bye(peer: peer, text: String(decoding: text, as: UTF8.self))
            }
            throw IMAPError.protocolViolation(peer: peer, .malformed(expected: "an IMAP greeting", found: "\(greeting)"))
        }
        _ = text
        if case .capability(let caps)? = code { setCapabilities(caps) } else { try await refreshCapabilities() }
        if case .startTLS(let tls) = security {
            guard capabilities.contains("STARTTLS") else {
                throw IMAPError.transport(.tlsHandshakeFailed(peer: peer, reason: "the server does not offer STARTTLS; refusing to continue without TLS (try tls = \"implicit\" with port 993)"))
            }
            _ = try await execute(.startTLS, kind: .startTLS)
            if let closedReason { throw closedReason }   // e.g. data injected behind the OK
            do { try await connection.startTLS(tls) } catch let error as TransportError { throw IMAPError.transport(error) }
            try await refreshCapabilities()
        }
    }

    /// Reads until the first complete response (the greeting).
    private func readGreeting() async throws -> Response {
        for _ in 0..<1000 {
            let chunk = try await readChunk()
            let events: [ParserEvent]
            do { events = try parser.feed(chunk) } catch { throw fatal(.protocolViolation(peer: peer, error)) }
            if case .response(let r)? = events.first {
                if events.count > 1 || parser.hasBufferedInput {
                    // Data right behind the greeting: handle it like any unsolicited data.
                    for e in events.dropFirst() { handle(e) }
                }
                return r
            }
        }
        throw fatal(.protocolViolation(peer: peer, .malformed(expected: "a greeting", found: "")))
    }

    private func readChunk() async throws -> [UInt8] {
        do {
            let raw = try await connection.readAvailable(maxCount: 256 * 1024)
            guard let deflate else { return raw }
            guard let plain = deflate.decompress(raw) else {
                throw fatal(.protocolViolation(peer: peer, .malformed(expected: "valid DEFLATE data", found: "corrupt stream")))
            }
            return plain
        } catch let error as TransportError {
            if case .closedByPeer = error, let byeText { throw fatal(.bye(peer: peer, text: byeText)) }
            throw fatal(.transport(error))
        }
    }

    func setCapabilities(_ caps: [String]) {
        capabilities = Set(caps.map { $0.uppercased() })
        encoder.literalPlus = capabilities.contains("LITERAL+")
        encoder.literalMinus = capabilities.contains("LITERAL-")
    }

    /// Sends CAPABILITY and stores the answer.
    public func refreshCapabilities() async throws {
        _ = try await execute(.capability, kind: .capability)
    }

    // MARK: - Executing commands

    /// Sends `command` and waits for its completion; NO/BAD throw `IMAPError.commandFailed`.
    /// - Parameter sink: receives streamed message bodies of this command (UID FETCH BODY.PEEK[]).
    @discardableResult
    public func execute(_ command: Command, sink: FetchBodySink? = nil) async throws -> CommandResult {
        try await execute(command, kind: Self.kind(of: command), sink: sink)
    }

    static func countKey(_ command: Command) -> String {
        switch command {
        case .uidFetch: "UID FETCH"
        case .uidStore: "UID STORE"
        case .uidSearch: "UID SEARCH"
        default: String(command.name.split(separator: " ").first ?? "")
        }
    }

    static func kind(of command: Command) -> Kind {
        switch command {
        case .capability: .capability
        case .enable: .enable
        case .select, .examine: .select
        case .uidFetch, .fetch: .fetch
        case .uidStore: .store
        case .list: .list
        case .status: .status
        case .uidSearch: .search
        case .uidExpunge, .expunge, .close: .expunge
        case .uidCopy, .uidMove: .copyMove
        case .id: .id
        case .namespace: .namespace
        case .idle: .idle
        case .startTLS: .startTLS
        case .authenticate, .login: .authenticate
        case .append: .append
        default: .general
        }
    }

    /// Sends `commands` back to back, each written before the next (so the server sees them
    /// in this order, in one round trip), and returns their results in the same order.
    public func pipeline(_ commands: [Command]) async throws -> [Result<CommandResult, any Error>] {
        var submitted: [Result<PendingCommand, any Error>] = []
        for command in commands {
            do { submitted.append(.success(try await submit(command, kind: Self.kind(of: command)))) }
            catch { submitted.append(.failure(error)) }
        }
        var results: [Result<CommandResult, any Error>] = []
        for s in submitted {
            switch s {
            case .success(let cmd):
                do { results.append(.success(try await result(of: cmd))) } catch { results.append(.failure(error)) }
            case .failure(let error):
                results.append(.failure(error))
            }
        }
        return results
    }

    /// Sends `commands` with at most `window` of them in flight and hands each result to
    /// `each`, in order, as it completes: the answers waiting to be read are bounded by the
    /// window, not by the number of commands. A failing `each` stops the rest being sent
    /// (those in flight are awaited, so the session stays in step).
    public func pipeline(_ commands: [Command], window: Int,
                         each: (Result<CommandResult, any Error>) throws -> Void) async throws {
        var inFlight: [Result<PendingCommand, any Error>] = []
        var next = 0
        var stop: (any Error)?
        while true {
            while stop == nil, next < commands.count, inFlight.count < max(1, window) {
                do { inFlight.append(.success(try await submit(commands[next], kind: Self.kind(of: commands[next])))) }
                catch { inFlight.append(.failure(error)) }
                next += 1
            }
            if inFlight.isEmpty { break }
            let answer: Result<CommandResult, any Error>
            switch inFlight.removeFirst() {
            case .success(let cmd):
                do { answer = .success(try await result(of: cmd)) } catch { answer = .failure(error) }
            case .failure(let error):
                answer = .failure(error)
            }
            if stop == nil {
                do { try each(answer) } catch { stop = error }
            }
        }
        if let stop { throw stop }
    }

    func execute(_ command: Command, kind: Kind, sink: FetchBodySink? = nil,
                 onContinuation: (@Sendable ([UInt8]) -> [UInt8])? = nil) async throws -> CommandResult {
        try await result(of: submit(command, kind: kind, sink: sink, onContinuation: onContinuation))
    }

    /// Writes a command and returns it pending (its result is awaited with `result(of:)`).
    private func submit(_ command: Command, kind: Kind, sink: FetchBodySink? = nil,
                        onContinuation: (@Sendable ([UInt8]) -> [UInt8])? = nil) async throws -> PendingCommand {
        if let closedReason { throw closedReason }
        if idleState != nil { await stopIdle() }
        await acquireWrite()
        if let closedReason { releaseWrite(); throw closedReason }
        tagCounter += 1
        let tag = "M\(tagCounter)"
        let cmd = PendingCommand(tag: tag, name: command.name, kind: kind, sink: sink)
        commandCounts[Self.countKey(command), default: 0] += 1
        switch command {
        case .uidFetch(let set, _, _, _), .uidStore(let set, _, _, _, _):
            cmd.uids = set
            if set.count <= 1024 { cmd.answered = [] }
        case .fetch:
            cmd.uids = UIDSet(ranges: [1...UInt32.max])   // by sequence numbers: any UID may come back
        default: break
        }
        pending.append(cmd)
        ensureReader()
        do {
            try await write(encoder.encode(command, tag: tag), for: cmd, onContinuation: onContinuation)
        } catch {
            releaseWrite()
            if cmd.outcome == nil { _ = fatal(error as? IMAPError ?? .closed(peer: peer)) }
            return cmd
        }
        releaseWrite()
        return cmd
    }

    private func result(of cmd: PendingCommand) async throws -> CommandResult {
        if let outcome = cmd.outcome { return try outcome.get() }
        return try await withCheckedThrowingContinuation { cmd.waiter = $0 }
    }

    private func acquireWrite() async {
        if !writeBusy { writeBusy = true; return }
        await withCheckedContinuation { writeWaiters.append($0) }
    }

    private func releaseWrite() {
        if writeWaiters.isEmpty { writeBusy = false } else { writeWaiters.removeFirst().resume() }
    }

    private func send(_ bytes: [UInt8]) async throws {
        do {
            try await connection.write(deflate.map { $0.compress(bytes) } ?? bytes)
        } catch let error as TransportError {
            throw fatal(.transport(error))
        }
    }

    private func write(_ parts: [CommandPart], for cmd: PendingCommand,
                       onContinuation: (@Sendable ([UInt8]) -> [UInt8])?) async throws {
        currentWriter = cmd
        defer { currentWriter = nil }
        var buffer: [UInt8] = []
        for part in parts {
            switch part {
            case .bytes(let b):
                buffer += b
            case .literalData(let data, let synchronizing):
                if synchronizing {
                    try await send(buffer)
                    buffer = []
                    guard try await awaitContinuation(cmd) else { return }
                }
                buffer += data
            case .messageData(let source, let synchronizing):
                if synchronizing {
                    try await send(buffer)
                    buffer = []
                    guard try await awaitContinuation(cmd) else { return }
                }
                var sent = Int64(0)
                while true {
                    let chunk: [UInt8]?
                    do { chunk = try source.nextChunk() } catch {
                        // The literal's size is promised: the connection cannot recover.
                        throw fatal(.bodySinkFailed("reading the message to upload failed: \(error)"))
                    }
                    guard let chunk else { break }
                    sent += Int64(chunk.count)
                    buffer += chunk
                    if buffer.count >= 256 * 1024 {
                        try await send(buffer)
                        buffer = []
                    }
                }
                if sent != source.size {
                    throw fatal(.bodySinkFailed("the message to upload changed size while it was sent (\(sent) of \(source.size) bytes)"))
                }
            }
        }
        if !buffer.isEmpty { try await send(buffer) }
        if let onContinuation {
            // AUTHENTICATE: answer each challenge until the command completes.
            while cmd.outcome == nil {
                let challenge: [UInt8]
                do { challenge = try await nextContinuation(cmd) } catch { return }
                try await sendLine(onContinuation(challenge))
            }
        }
    }

    /// Waits for the server's `+` before literal data; false when the command ended instead.
    private func awaitContinuation(_ cmd: PendingCommand) async throws -> Bool {
        do { _ = try await nextContinuation(cmd) } catch { return false }
        return true
    }

    private func nextContinuation(_ cmd: PendingCommand) async throws -> [UInt8] {
        if let outcome = cmd.outcome { throw outcome.failureValue ?? IMAPError.closed(peer: peer) }
        return try await withCheckedThrowingContinuation { cmd.continuationWaiter = $0 }
    }

    /// Sends a raw line (a SASL response, DONE) for the command being written.
    func sendLine(_ bytes: [UInt8]) async throws {
        try await send(bytes + [13, 10])
    }

    // MARK: - Reading

    private func ensureReader() {
        guard !readerRunning else { return }
        readerRunning = true
        Task { await self.readLoop() }
    }

    private func readLoop() async {
        while closedReason == nil && (!pending.isEmpty || idleState != nil) {
            do {
                let chunk = try await readChunk()
                let events: [ParserEvent]
                do { events = try parser.feed(chunk) } catch {
                    _ = fatal(.protocolViolation(peer: peer, error))
                    break
                }
                for (index, event) in events.enumerated() {
                    handle(event)
                    // After the OK to STARTTLS nothing may follow before the handshake: more
                    // responses in the same read would be plaintext posing as protected data.
                    if startTLSAccepted && (index < events.count - 1 || parser.hasBufferedInput) {
                        _ = fatal(.startTLSInjection(peer: peer))
                        break
                    }
                }
                startTLSAccepted = false
            } catch {
                _ = fatal(error as? IMAPError ?? .closed(peer: peer))
                break
            }
        }
        readerRunning = false
        // A command queued while the last read was finishing needs a reader again.
        if closedReason == nil && (!pending.isEmpty || idleState != nil) { ensureReader() }
    }

    private func handle(_ event: ParserEvent) {
        switch event {
        case .streamBegin(let info):
            let withSink = pending.filter { $0.sink != nil && $0.outcome == nil }
            let byUID = info.uid.flatMap { uid in withSink.first { $0.uids?.contains(UID(uid)) == true } }
            guard let cmd = byUID ?? withSink.first, let sink = cmd.sink else {
                currentSink = nil
                return
            }
            currentSink = (sink, cmd)
            do { try sink.begin(info) } catch { cmd.sinkError = cmd.sinkError ?? "\(error)" }
        case .streamBytes(let bytes):
            guard let (sink, cmd) = currentSink, cmd.sinkError == nil else { return }
            do { try sink.write(bytes) } catch { cmd.sinkError = "\(error)" }
        case .streamEnd:
            guard let (sink, cmd) = currentSink else { return }
            currentSink = nil
            if cmd.sinkError == nil {
                do { try sink.end() } catch { cmd.sinkError = "\(error)" }
            }
        case .response(.tagged(let tagged)):
            guard let index = pending.firstIndex(where: { $0.tag == tagged.tag }) else { return }
            let cmd = pending.remove(at: index)
            if case .capability(let caps)? = tagged.code { setCapabilities(caps) }
            if cmd.kind == .startTLS && tagged.status == .ok { startTLSAccepted = true }
            if tagged.status == .ok {
                if let sinkError = cmd.sinkError {
                    cmd.complete(.failure(.bodySinkFailed(sinkError)))
                } else {
                    cmd.complete(.success(CommandResult(tagged: tagged, untagged: cmd.untagged)))
                }
            } else {
                let text = String(decoding: tagged.text, as: UTF8.self)
                if cmd.kind == .authenticate {
                    cmd.complete(.failure(IMAPError.loginRefusal(peer: peer, code: tagged.code, text: text)))
                } else {
                    cmd.complete(.failure(.commandFailed(command: cmd.name, tag: tagged.tag, status: tagged.status, code: tagged.code, text: text)))
                }
            }
        case .response(.continuation(let data)):
            let target = currentWriter ?? pending.first(where: { $0.continuationWaiter != nil })
            if let target, let waiter = target.continuationWaiter {
                target.continuationWaiter = nil
                waiter.resume(returning: data)
            }
        case .response(.untagged(let untagged)):
            route(untagged)
        }
    }

    private func firstPending(_ kinds: Kind...) -> PendingCommand? {
        pending.first { kinds.contains($0.kind) && $0.outcome == nil }
    }

    private func route(_ u: UntaggedResponse) {
        var target: PendingCommand?
        var alsoUnsolicited = false
        switch u {
        case .exists(let n): messageCount = n
        case .expunge: messageCount = max(0, messageCount - 1)
        case .vanished(false, let set) where set.ranges.last?.upperBound != UInt32.max: messageCount = max(0, messageCount - set.count)
        default: break
        }
        switch u {
        case .capability(let caps):
            setCapabilities(caps)
            target = firstPending(.capability)
        case .enabled(let list):
            enabled.formUnion(list.map { $0.uppercased() })
            target = firstPending(.enable)
        case .condition(.bye, _, let text):
            byeText = String(decoding: text, as: UTF8.self)
            alsoUnsolicited = true
        case .condition(_, let code, _):
            if case .capability(let caps)? = code { setCapabilities(caps) }
            if case .copyUID? = code { target = firstPending(.copyMove) } else { target = firstPending(.select) }
            if target == nil { alsoUnsolicited = true }
        case .list, .lsub: target = firstPending(.list)
        case .status: target = firstPending(.status) ?? firstPending(.list)   // LIST-STATUS
        case .search, .esearch: target = firstPending(.search)
        case .id: target = firstPending(.id)
        case .namespace: target = firstPending(.namespace)
        case .fetch(_, let attributes):
            fetchResponseCount += 1
            let uid = attributes.lazy.compactMap { if case .uid(let u) = $0 { u } else { nil } }.first
            if let uid {
                // A FETCH and a STORE naming the same UID can be in flight together, and the
                // data cannot say which it answers (a STORE that changed nothing sends none).
                // The FETCH needs it; a STORE's echo is only informational.
                func claims(_ kind: Kind) -> PendingCommand? {
                    pending.first { $0.kind == kind && $0.outcome == nil && $0.uids?.contains(uid) == true && $0.answered?.contains(uid) != true }
                        ?? pending.first { $0.kind == kind && $0.outcome == nil && $0.uids?.contains(uid) == true }
                }
                target = claims(.fetch) ?? claims(.store) ?? firstPending(.select)
                target?.answered?.insert(uid)
            } else {
                target = firstPending(.fetch, .store, .select)
            }
            if target == nil { alsoUnsolicited = true }
        case .vanished(let earlier, _):
            if earlier { target = firstPending(.select, .fetch) } else {
                target = firstPending(.expunge, .copyMove)
                alsoUnsolicited = true
            }
        case .expunge:
            target = firstPending(.expunge, .copyMove)
            alsoUnsolicited = true
        case .exists, .recent, .flags:
            target = firstPending(.select)
            if target == nil { alsoUnsolicited = true }
        case .other:
            alsoUnsolicited = true
        }
        target?.untagged.append(u)
        if target == nil, idleState != nil, case .condition(.ok, nil, _) = u {
            // A keepalive says nothing changed: waking IDLE for it cost a DONE and a new IDLE
            // on every connection every 2 minutes (docs/scale.md).
            keepalivesSeen += 1
            return
        }
        if alsoUnsolicited || target == nil {
            if let idle = idleState {
                idle.events.append(u)
                idle.wake?.resume()
                idle.wake = nil
            } else if unsolicited.count < 100_000 {
                unsolicited.append(u)
            }
        }
    }

    /// Untagged data no command asked for (new mail, expunges, flag changes by others),
    /// in arrival order; the buffer is emptied.
    public func takeUnsolicited() -> [UntaggedResponse] {
        defer { unsolicited = [] }
        return unsolicited
    }

    /// Closes the session after an unrecoverable error; returns the error to throw.
    @discardableResult
    private func fatal(_ error: IMAPError) -> IMAPError {
        if closedReason == nil {
            closedReason = error
            for cmd in pending { cmd.complete(.failure(error)) }
            pending = []
            if let idle = idleState { idle.wake?.resume(); idle.wake = nil }
            for waiter in writeWaiters { waiter.resume() }
            writeWaiters = []
            Task { await connection.close() }
        }
        return closedReason ?? error
    }

    // MARK: - IDLE

    /// IDLE (RFC 2177): waits until the server reports something, `timeout` seconds pass,
    /// or `stopIdle()` is called; then ends IDLE with DONE and returns what was reported.
    /// Callers re-issue it (before 29 minutes: servers may drop idle clients after 30).
    public func idle(timeout: Double) async throws -> [UntaggedResponse] {
        guard capabilities.contains("IDLE") else { throw IMAPError.missingCapability(peer: peer, "IDLE") }
        if let closedReason { throw closedReason }
        await acquireWrite()
        if let closedReason { releaseWrite(); throw closedReason }
        tagCounter += 1
        let cmd = PendingCommand(tag: "M\(tagCounter)", name: "IDLE", kind: .idle, sink: nil)
        pending.append(cmd)
        let state = IdleState(command: cmd)
        idleState = state
        let previousTimeout = await connection.ioTimeout
        await connection.setIOTimeout(timeout + 60)
        ensureReader()
        defer { idleState = nil }
        do {
            try await send(Array("\(cmd.tag) IDLE\r\n".utf8))
            _ = try await nextContinuation(cmd)
        } catch {
            releaseWrite()
            await connection.setIOTimeout(previousTimeout)
            _ = try await result(of: cmd)
            throw error
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
            await self?.stopIdle()
        }
        if state.events.isEmpty && !state.stopRequested && closedReason == nil {
            await withCheckedContinuation { state.wake = $0 }
        }
        timer.cancel()
        if closedReason == nil { try? await send(Array("DONE\r\n".utf8)) }
        releaseWrite()
        await connection.setIOTimeout(previousTimeout)
        _ = try await result(of: cmd)
        return state.events
    }

    /// Ends a running IDLE early (e.g. a local change needs the connection).
    public func stopIdle() async {
        guard let state = idleState else { return }
        state.stopRequested = true
        state.wake?.resume()
        state.wake = nil
    }

    // MARK: - Closing

    /// LOGOUT, then close; errors are ignored (the connection is going away anyway). With
    /// `waiting: false` the connection closes as soon as LOGOUT is written, without waiting
    /// for the server's BYE (a process about to exit has nothing to learn from it).
    public func logout(waiting: Bool = true) async {
        if closedReason == nil {
            if waiting {
                _ = try? await execute(.logout, kind: .general)
            } else {
                _ = try? await submit(.logout, kind: .general)
            }
        }
        await close()
    }

    /// Closes the connection at once; pending commands fail with `IMAPError.closed`.
    public func close() async {
        _ = fatal(.closed(peer: peer))
        await connection.close()
    }

    // MARK: - COMPRESS

    /// Turns on COMPRESS=DEFLATE (RFC 4978) when the server offers it; returns whether it did.
    @discardableResult
    public func enableCompression() async throws -> Bool {
        guard capabilities.contains("COMPRESS=DEFLATE"), !isCompressed else { return false }
        _ = try await execute(.compressDeflate, kind: .general)
        guard let stream = DeflateStream() else { return false }
        deflate = stream
        isCompressed = true
        return true
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

extension ResponseParser {
    /// Whether bytes of an incomplete response are held (used to refuse STARTTLS injection).
    public var hasBufferedInput: Bool { !line.isEmpty || !segments.isEmpty || literalRemaining > 0 }
}
