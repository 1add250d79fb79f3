#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A fake IMAP server on 127.0.0.1 (plain text) that answers each command by its name, with
/// the client's own tag: only for behaviour no real server produces — hostile or broken
/// answers. By default it is a tiny well-behaved server with an empty INBOX; a test replaces
/// the answer to a command (`answers["UID FETCH"]`, `answers["LIST"]`, …) to break it.
public final class FakeIMAPServer: @unchecked Sendable {
    /// What to send for one command.
    public enum Answer: Sendable {
        /// These bytes (`TAG` in them is replaced by the command's tag).
        case text(String)
        /// `prefix`, then `unit` again and again until `total` bytes went out or the client
        /// hung up, then `suffix` — a flood.
        case flood(prefix: String, unit: [UInt8], total: Int, suffix: String)
        /// Nothing at all, ever: the connection hangs.
        case silence
    }

    public let port: UInt16
    private let listenFD: Int32
    private let lock = NSLockLite()
    private var answerTable: [String: Answer]
    private var seen: [String] = []
    private var flooded = 0

    /// The capabilities announced in the greeting and to CAPABILITY.
    public static let defaultCapabilities = "IMAP4rev1 LITERAL+ UIDPLUS"

    public init(capabilities: String = FakeIMAPServer.defaultCapabilities) throws {
        answerTable = [
            "CAPABILITY": .text("* CAPABILITY \(capabilities)\r\nTAG OK done\r\n"),
            "LOGIN": .text("TAG OK [CAPABILITY \(capabilities)] logged in\r\n"),
            "LIST": .text("* LIST () \"/\" INBOX\r\nTAG OK done\r\n"),
            "SELECT": .text("* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] ok\r\nTAG OK [READ-WRITE] selected\r\n"),
            "EXAMINE": .text("* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\nTAG OK [READ-ONLY] examined\r\n"),
            "UID FETCH": .text("TAG OK done\r\n"),
            "UID SEARCH": .text("* SEARCH\r\nTAG OK done\r\n"),
            "LOGOUT": .text("* BYE bye\r\nTAG OK done\r\n"),
        ]
        let (fd, port) = try listeningSocket()
        listenFD = fd
        self.port = port
        greeting = "* OK [CAPABILITY \(capabilities)] fake server ready\r\n"
        DispatchQueue(label: "fake-imap.accept").async { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { if errno == EINTR { continue }; return }
                DispatchQueue(label: "fake-imap.connection").async { [self] in serve(client) }
            }
        }
    }
    private let greeting: String

    /// Replaces the answer to commands named `verb` ("UID FETCH", "LIST", …); with
    /// `containing`, only to those whose first line contains that text (the latest rule wins).
    public func answer(_ verb: String, containing needle: String? = nil, with answer: Answer) {
        lock.lock(); defer { lock.unlock() }
        if let needle { rules.append((verb.uppercased(), needle, answer)) } else { answerTable[verb.uppercased()] = answer }
    }
    private var rules: [(verb: String, needle: String, answer: Answer)] = []

    /// The command names received so far, in order.
    public var commands: [String] { lock.lock(); defer { lock.unlock() }; return seen }
    /// Bytes sent by floods so far.
    public var floodedBytes: Int { lock.lock(); defer { lock.unlock() }; return flooded }

    public func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        guard sendAll(fd, Array(greeting.utf8)) else { return }
        var framer = IMAPFramer()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var pending: (tag: [UInt8], verb: String, line: String)?
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return }
            for segment in framer.feed(buffer[0..<n]) {
                if case .literal = segment.kind { continue }
                if case .commandStart(let tag, let verb) = segment.kind { pending = (tag, verb, String(decoding: segment.bytes, as: UTF8.self)) }
                if let _ = IMAPFramer.literalLength(endingLine: segment.bytes) {
                    // The command goes on after a literal; a synchronizing one waits for "+".
                    let end = segment.bytes.lastIndex(of: 125) ?? 0
                    if end > 0 && segment.bytes[end - 1] != 43 { guard sendAll(fd, Array("+ go on\r\n".utf8)) else { return } }
                    continue
                }
                guard let (tag, verb, line) = pending else { continue }
                pending = nil
                lock.lock()
                seen.append(verb)
                let answer = rules.last { $0.verb == verb && line.contains($0.needle) }?.answer ?? answerTable[verb] ?? .text("TAG OK done\r\n")
                lock.unlock()
                let tagText = String(decoding: tag, as: UTF8.self)
                switch answer {
                case .text(let text):
                    guard sendAll(fd, Array(text.replacing("TAG", with: tagText).utf8)) else { return }
                    if verb == "LOGOUT" { return }
                case .flood(let prefix, let unit, let total, let suffix):
                    guard sendAll(fd, Array(prefix.replacing("TAG", with: tagText).utf8)) else { return }
                    var sent = 0
                    let chunk = Array(repeating: unit, count: max(1, 65536 / max(unit.count, 1))).flatMap { $0 }
                    while sent < total {
                        guard sendAll(fd, chunk) else { return }
                        sent += chunk.count
                        lock.lock(); flooded += chunk.count; lock.unlock()
                    }
                    guard sendAll(fd, Array(suffix.replacing("TAG", with: tagText).utf8)) else { return }
                case .silence:
                    while recv(fd, &buffer, buffer.count, 0) > 0 {}
                    return
                }
            }
        }
    }
}
