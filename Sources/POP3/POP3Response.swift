/// A POP3 status line: `+OK text` or `-ERR [CODE] text` (RFC 1939, RFC 2449 §8, RFC 3206).
public struct POP3Status: Sendable, Equatable {
    public var ok: Bool
    /// The extended response code (`AUTH`, `IN-USE`, `SYS/TEMP`, `SYS/PERM`, `LOGIN-DELAY`…).
    public var code: String?
    public var text: String

    /// Parses a status line (without CRLF); nil when it is neither +OK nor -ERR.
    public init?(line: [UInt8]) {
        if line.starts(with: Array("+OK".utf8)) {
            ok = true
        } else if line.starts(with: Array("-ERR".utf8)) {
            ok = false
        } else {
            return nil
        }
        var rest = line.dropFirst(ok ? 3 : 4)
        if let first = rest.first, first != 32 { return nil }   // "+OKAY" is not "+OK"
        rest = rest.drop(while: { $0 == 32 })
        code = nil
        if rest.first == UInt8(ascii: "["), let close = rest.firstIndex(of: UInt8(ascii: "]")) {
            code = String(decoding: rest[rest.index(after: rest.startIndex)..<close], as: UTF8.self).uppercased()
            rest = rest[rest.index(after: close)...].drop(while: { $0 == 32 })
        }
        text = String(decoding: rest.map { $0 < 32 || $0 == 127 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    public init(ok: Bool, code: String?, text: String) {
        self.ok = ok
        self.code = code
        self.text = text
    }
}

/// Decodes a multi-line response body (RFC 1939 §3): removes the stuffed dot of lines that
/// start with `.`, and stops at the line that is only `.`. Bytes may arrive split anywhere;
/// output keeps the CRLF line endings as sent.
public struct POP3MultilineDecoder: Sendable {
    private enum State { case lineStart, inLine, dot, dotCR, done }
    private var state = State.lineStart
    /// Bytes of the body so far (after unstuffing).
    public private(set) var bodySize: Int64 = 0
    /// Longest line seen, to bound hostile input.
    public var maxLineLength: Int
    private var lineLength = 0

    public init(maxLineLength: Int = 1 << 20) { self.maxLineLength = maxLineLength }

    /// Whether the terminating `.` line was seen.
    public var isFinished: Bool { state == .done }

    /// A line longer than `maxLineLength` (POP3 lines are at most 512 octets; messages may
    /// have longer ones, but not unbounded).
    public struct LineTooLong: Error, Sendable {}

    /// Decodes `input`; returns the body bytes and how many input bytes were used (the rest
    /// belongs to the next response, when pipelining).
    public mutating func decode(_ input: [UInt8]) throws(LineTooLong) -> (output: [UInt8], consumed: Int) {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count && state != .done {
            let b = input[i]
            switch state {
            case .lineStart:
                if b == UInt8(ascii: ".") { state = .dot; i += 1; continue }
                state = .inLine
                lineLength = 0
                continue
            case .inLine:
                // Copy up to and including the next LF in one go.
                var j = i
                while j < input.count && input[j] != 10 { j += 1 }
                let end = j < input.count ? j + 1 : j
                out.append(contentsOf: input[i..<end])
                lineLength += end - i
                if lineLength > maxLineLength { throw LineTooLong() }
                i = end
                if j < input.count { state = .lineStart }
            case .dot:
                if b == 13 { state = .dotCR; i += 1; continue }
                if b == 10 { state = .done; i += 1; continue }   // ".\n": tolerate bare LF
                state = .inLine                                   // stuffed dot: dropped
                lineLength = 0
            case .dotCR:
                if b == 10 { state = .done; i += 1; continue }
                out.append(13)                                    // ".\rX": a line starting "\r"
                state = .inLine
                lineLength = 1
            case .done:
                break
            }
        }
        bodySize += Int64(out.count)
        return (out, i)
    }
}
