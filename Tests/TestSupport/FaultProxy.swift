#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A TCP proxy on 127.0.0.1 in front of a real server, for faults a real server does not
/// produce on its own: cut a connection after a given number of bytes in either direction
/// (FIN or RST), stall it, slow it down, refuse connections, and — on a plain-text IMAP port,
/// where it follows the framing in both directions (lines and literals) — let a chosen
/// command through and lose its tagged reply, as a network failing at that instant would.
///
/// Faults are armed by the test (or by `faultproxy`, the command-line wrapper for scripts)
/// and each fires once. Test support only: loopback, one short-lived test at a time. Each
/// direction of a connection is pumped by blocking calls on a queue of its own (simple; the
/// proxy is not the code under test).
public final class FaultProxy: @unchecked Sendable {
    /// Which way bytes travel.
    public enum Direction: Sendable, Equatable {
        case toServer, toClient
    }

    public let port: UInt16
    private let targetPort: UInt16
    private let listenFD: Int32
    private let lock = NSLockLite()
    private var sockets: [Int32] = []
    private var counts: [String: Int] = [:]
    private var lines: [[UInt8]] = []
    private var dropRule: (verb: String, occurrence: Int)?
    private var tagsToDrop: Set<[UInt8]> = []
    private var dropped = 0
    private var stopped = false
    private var connectionCount = 0
    private var cutRule: (direction: Direction, offset: Int, reset: Bool, connection: Int?)?
    private var cuts = 0
    private var stallRule: (direction: Direction, offset: Int, seconds: Double, connection: Int?)?
    private var stalls = 0
    private var refusals = 0
    private var refused = 0
    /// Milliseconds each chunk is held before it is forwarded (both directions).
    public var latencyMilliseconds: Int {
        get { lock.lock(); defer { lock.unlock() }; return latency }
        set { lock.lock(); latency = newValue; lock.unlock() }
    }
    private var latency = 0

    /// Listens on a free port of 127.0.0.1 (or `listenPort`) and forwards every connection
    /// to `targetPort`. `imapFraming`: the stream is plain-text IMAP (needed by `dropReply`);
    /// otherwise bytes are forwarded as they come (TLS, POP3).
    public init(targetPort: UInt16, listenPort: UInt16 = 0, imapFraming: Bool = true) throws {
        self.targetPort = targetPort
        self.imapFraming = imapFraming
        (listenFD, port) = try listeningSocket(port: listenPort, backlog: 64)
        DispatchQueue(label: "fault-proxy.accept").async { [self] in acceptLoop() }
    }
    private let imapFraming: Bool

    /// Loses the tagged reply to the `occurrence`-th command (1-based, counted over every
    /// connection from now on) whose name is `verb` ("APPEND", "UID FETCH"): the command
    /// reaches the server, which carries it out; its reply and everything after it on that
    /// connection are dropped, and nothing more is forwarded in either direction, so the
    /// client waits as if the network had failed right then. Once. Needs `imapFraming`.
    public func dropReply(to verb: String, occurrence: Int) {
        lock.lock(); defer { lock.unlock() }
        counts[verb.uppercased()] = 0
        dropRule = (verb.uppercased(), occurrence)
    }

    /// Cuts a connection once exactly `offset` bytes have passed in `direction` (the
    /// `connection`-th one accepted, 1-based; nil: the first to get there): both sockets
    /// are closed, with a FIN, or with an RST when `reset`. Once.
    public func cut(_ direction: Direction, afterBytes offset: Int, reset: Bool = false, connection: Int? = nil) {
        lock.lock(); defer { lock.unlock() }
        cutRule = (direction, offset, reset, connection)
    }

    /// Holds a connection for `seconds` once `offset` bytes have passed in `direction`
    /// (nothing is forwarded that way meanwhile), then goes on. Once.
    public func stall(_ direction: Direction, afterBytes offset: Int, seconds: Double, connection: Int? = nil) {
        lock.lock(); defer { lock.unlock() }
        stallRule = (direction, offset, seconds, connection)
    }

    /// Refuses the next `count` connections: accepted, then reset at once.
    public func refuse(next count: Int) {
        lock.lock(); defer { lock.unlock() }
        refusals = count
    }

    /// How many replies were dropped so far.
    public var droppedReplies: Int { lock.lock(); defer { lock.unlock() }; return dropped }
    /// How many connections were cut, stalled, refused so far.
    public var cutConnections: Int { lock.lock(); defer { lock.unlock() }; return cuts }
    public var stalledConnections: Int { lock.lock(); defer { lock.unlock() }; return stalls }
    public var refusedConnections: Int { lock.lock(); defer { lock.unlock() }; return refused }
    /// Bytes forwarded so far, over every connection.
    public var bytesForwarded: (toServer: Int, toClient: Int) { lock.lock(); defer { lock.unlock() }; return (forwarded[true]!, forwarded[false]!) }
    private var forwarded: [Bool: Int] = [true: 0, false: 0]
    /// Connections accepted so far (refused ones included).
    public var connections: Int { lock.lock(); defer { lock.unlock() }; return connectionCount }

    /// Commands named `verb` seen since the last `dropReply` for that verb (or the start).
    /// The first line of every command the client sent (up to 100,000), CRLF included.
    public var commandLines: [[UInt8]] { lock.lock(); defer { lock.unlock() }; return lines }

    public func commandCount(_ verb: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[verb.uppercased()] ?? 0 }

    /// Closes the listening socket and every connection.
    public func stop() {
        lock.lock()
        stopped = true
        let open = sockets
        sockets = []
        lock.unlock()
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return   // stopped
            }
            lock.lock()
            connectionCount += 1
            let number = connectionCount
            let refuse = refusals > 0
            if refuse { refusals -= 1; refused += 1 }
            lock.unlock()
            if refuse { lingerZero(client); close(client); continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = loopback(port: targetPort)
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if server < 0 || rc != 0 { close(client); if server >= 0 { close(server) }; continue }
            lock.lock()
            if stopped { lock.unlock(); close(client); close(server); return }
            sockets += [client, server]
            lock.unlock()
            let link = Link(number: number, client: client, server: server)
            let done = DispatchGroup()
            for upstream in [true, false] {
                done.enter()
                DispatchQueue(label: "fault-proxy.pump").async { [self] in
                    pump(from: upstream ? client : server, to: upstream ? server : client, upstream: upstream, link: link)
                    // After an RST cut only the reading side is shut (no FIN goes out); the
                    // close below then resets the connection.
                    let how = link.wasReset ? Int32(SHUT_RD) : Int32(SHUT_RDWR)
                    shutdown(client, how)
                    shutdown(server, how)
                    done.leave()
                }
            }
            done.notify(queue: DispatchQueue(label: "fault-proxy.close")) { [self] in
                lock.lock()
                sockets.removeAll { $0 == client || $0 == server }
                lock.unlock()
                close(client)
                close(server)
            }
        }
    }

    /// One connection's shared fate.
    private final class Link: @unchecked Sendable {
        let number: Int
        let client: Int32
        let server: Int32
        /// A reply was dropped: both directions go silent.
        var silent = false
        /// Cut with an RST: its sockets linger 0, so closing them resets the connection.
        var wasReset = false
        var passed: [Bool: Int] = [true: 0, false: 0]
        init(number: Int, client: Int32, server: Int32) { self.number = number; self.client = client; self.server = server }
    }

    private func pump(from source: Int32, to destination: Int32, upstream: Bool, link: Link) {
        var framer = IMAPFramer()
        var buffer = [UInt8](repeating: 0, count: 65536)
        let direction: Direction = upstream ? .toServer : .toClient
        while true {
            let n = recv(source, &buffer, buffer.count, 0)
            if n <= 0 { return }
            var out: [UInt8] = []
            if imapFraming {
                for segment in framer.feed(buffer[0..<n]) {
                    lock.lock()
                    if link.silent { lock.unlock(); continue }
                    if upstream, case .commandStart(let tag, let verb) = segment.kind {
                        counts[verb, default: 0] += 1
                        if lines.count < 100_000 { lines.append(segment.bytes) }
                        if let rule = dropRule, rule.verb == verb, counts[verb] == rule.occurrence {
                            tagsToDrop.insert(tag)
                            dropRule = nil
                        }
                    }
                    if !upstream, case .commandStart(let tag, _) = segment.kind, tagsToDrop.contains(tag) {
                        tagsToDrop.remove(tag)
                        dropped += 1
                        link.silent = true
                        lock.unlock()
                        continue
                    }
                    lock.unlock()
                    out += segment.bytes
                }
            } else {
                out = Array(buffer[0..<n])
            }
            if !forward(out, to: destination, direction: direction, link: link) { return }
        }
    }

    /// Sends `bytes` on, applying latency, a stall or a cut whose offset falls inside them.
    /// False when the connection is over.
    private func forward(_ bytes: [UInt8], to destination: Int32, direction: Direction, link: Link) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            lock.lock()
            let before = link.passed[direction == .toServer]!
            let delay = latency
            var take = rest.count
            var action: (cut: Bool, reset: Bool, stall: Double)?
            if let rule = cutRule, rule.direction == direction, rule.connection.map({ $0 == link.number }) ?? true,
               before + rest.count >= rule.offset {
                take = max(0, rule.offset - before)
                action = (true, rule.reset, 0)
                cutRule = nil
                cuts += 1
            } else if let rule = stallRule, rule.direction == direction, rule.connection.map({ $0 == link.number }) ?? true,
                      before + rest.count >= rule.offset {
                take = max(0, rule.offset - before)
                action = (false, false, rule.seconds)
                stallRule = nil
                stalls += 1
            }
            link.passed[direction == .toServer] = before + take
            forwarded[direction == .toServer]! += take
            lock.unlock()
            if delay > 0 { usleep(UInt32(delay) * 1000) }
            if take > 0 && !sendAll(destination, Array(rest.prefix(take))) { return false }
            rest = rest.dropFirst(take)
            guard let action else { continue }
            if action.cut {
                if action.reset {
                    lock.lock()
                    link.wasReset = true
                    lock.unlock()
                    for fd in [link.client, link.server] { lingerZero(fd); shutdown(fd, Int32(SHUT_RD)) }
                } else {
                    shutdown(link.client, Int32(SHUT_RDWR))
                    shutdown(link.server, Int32(SHUT_RDWR))
                }
                return false
            }
            usleep(UInt32(action.stall * 1_000_000))
        }
        return true
    }
}

/// Makes a later close of the socket send an RST instead of a FIN (SO_LINGER 0).
private func lingerZero(_ fd: Int32) {
    var l = linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
}

/// Splits an IMAP byte stream (either direction) into lines and literal data, naming the
/// tag and command of each line that starts a command or a response.
struct IMAPFramer {
    enum Kind: Equatable {
        /// The first line of a command (client) or response (server): its tag and, for a
        /// command, its name ("UID FETCH"); a server's first word after the tag is its status.
        case commandStart(tag: [UInt8], verb: String)
        /// Any other line or part of one (continuations after a literal, untagged data).
        case other
        /// Literal data.
        case literal
    }
    struct Segment {
        var kind: Kind
        var bytes: [UInt8]
    }

    private var line: [UInt8] = []
    private var literalLeft = 0
    private var atStart = true

    mutating func feed(_ chunk: ArraySlice<UInt8>) -> [Segment] {
        var segments: [Segment] = []
        var i = chunk.startIndex
        while i < chunk.endIndex {
            if literalLeft > 0 {
                let take = min(literalLeft, chunk.endIndex - i)
                segments.append(Segment(kind: .literal, bytes: Array(chunk[i..<i + take])))
                literalLeft -= take
                i += take
                continue
            }
            let b = chunk[i]
            line.append(b)
            i += 1
            guard b == 10 else { continue }
            let complete = line
            line = []
            let kind: Kind = atStart ? Self.start(of: complete) : .other
            segments.append(Segment(kind: kind, bytes: complete))
            if let n = Self.literalLength(endingLine: complete) {
                literalLeft = n
                atStart = false
            } else {
                atStart = true
            }
        }
        return segments
    }

    static func start(of line: [UInt8]) -> Kind {
        let words = line.split(separator: 32, maxSplits: 3, omittingEmptySubsequences: false).map { Array($0) }
        guard words.count >= 2, let tag = words.first, tag != [42], tag != [43] else { return .other }   // not "*" or "+"
        func word(_ w: [UInt8]) -> String {
            String(decoding: w.filter { $0 != 13 && $0 != 10 }, as: UTF8.self).uppercased()
        }
        var verb = word(words[1])
        if verb == "UID", words.count >= 3 { verb += " " + word(words[2]) }
        return .commandStart(tag: tag, verb: verb)
    }

    /// N when the line ends with a literal's announcement `{N}`, `{N+}` or `~{N}`.
    static func literalLength(endingLine line: [UInt8]) -> Int? {
        var end = line.count
        while end > 0 && (line[end - 1] == 10 || line[end - 1] == 13) { end -= 1 }
        guard end >= 3, line[end - 1] == 125 else { return nil }   // "}"
        var j = end - 2
        if line[j] == 43 || line[j] == 45 { j -= 1 }              // "+" / "-" (LITERAL+/-)
        var value = 0, digits = 0
        while j >= 0, line[j] >= 48 && line[j] <= 57 { j -= 1; digits += 1 }
        guard digits > 0, j >= 0, line[j] == 123 else { return nil }   // "{"
        for d in line[(j + 1)..<(j + 1 + digits)] { value = value * 10 + Int(d - 48) }
        return value
    }
}
