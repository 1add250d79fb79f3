#if canImport(Glibc)
import Glibc
#endif

/// What the incremental parser reports as bytes come in.
public enum ParserEvent: Sendable, Equatable {
    /// A complete response (streamed bodies appear in it as `BodyData.streamed`).
    case response(Response)
    /// A message body literal starts: it follows as `streamBytes` then `streamEnd`, before
    /// the FETCH response it belongs to is reported.
    case streamBegin(StreamInfo)
    case streamBytes([UInt8])
    case streamEnd
}

/// What is known when a body literal starts.
public struct StreamInfo: Sendable, Equatable {
    /// The message sequence number of the FETCH response.
    public var sequence: Int
    /// The UID, when the server sent it before the body (Dovecot does).
    public var uid: UInt32?
    /// The section text between the brackets (`""` for `BODY[]`).
    public var section: [UInt8]
    public var size: Int64
}

/// The incremental IMAP response parser: bytes in (split anywhere), events out.
///
/// Framing is done here: lines and `{n}`/`{n+}`/`~{n}` literals are collected into the
/// segments of one response, which the grammar (`ResponseGrammar`) parses once complete —
/// nothing is parsed twice. A literal that is the value of a body section (`BODY[…]`,
/// `BINARY[…]`, `RFC822`) is streamed out in chunks instead of being kept.
public struct ResponseParser: Sendable {
    public let options: ParserOptions
    var line: [UInt8] = []
    var segments: [Segment] = []
    private var responseBytes = 0
    var literalRemaining: Int64 = 0
    private var literalStreaming = false
    private var literalBuffer: [UInt8] = []
    private var literalSize: Int64 = 0

    /// One piece of a response: text between literals, or a literal.
    enum Segment: Sendable, Equatable {
        case text([UInt8])
        case literal([UInt8])
        case streamed(Int64)
    }

    public init(options: ParserOptions = ParserOptions()) {
        self.options = options
    }

    /// Feeds bytes; returns the events they complete. After an error, the parser (and the
    /// connection) must be discarded.
    public mutating func feed(_ input: [UInt8]) throws(IMAPParserError) -> [ParserEvent] {
        var events: [ParserEvent] = []
        var i = input.startIndex
        while i < input.endIndex {
            if literalRemaining > 0 {
                let n = Int(min(literalRemaining, Int64(input.endIndex - i)))
                if literalStreaming {
                    events.append(.streamBytes(Array(input[i..<(i + n)])))
                } else {
                    literalBuffer.append(contentsOf: input[i..<(i + n)])
                }
                literalRemaining -= Int64(n)
                i += n
                if literalRemaining == 0 { finishLiteral(&events) }
                continue
            }
            // Line mode: find the end of the line in this chunk.
            let found: Int? = input.withUnsafeBufferPointer { raw in
                guard let p = memchr(raw.baseAddress! + i, 10, raw.count - i) else { return nil }
                return UnsafeRawPointer(p) - UnsafeRawPointer(raw.baseAddress!)
            }
            guard let lf = found else {
                line.append(contentsOf: input[i...])
                if line.count > options.maxLineLength { throw .lineTooLong(limit: options.maxLineLength) }
                break
            }
            line.append(contentsOf: input[i..<lf])
            i = lf + 1
            if line.count > options.maxLineLength { throw .lineTooLong(limit: options.maxLineLength) }
            if line.last == 13 { line.removeLast() }
            try endOfLine(&events)
        }
        return events
    }

    private mutating func endOfLine(_ events: inout [ParserEvent]) throws(IMAPParserError) {
        let text = line
        line = []
        responseBytes += text.count
        if responseBytes > options.maxResponseSize { throw .responseTooLarge(limit: options.maxResponseSize) }
        if let (size, markerStart) = try literalMarker(text) {
            let before = Array(text[..<markerStart])
            segments.append(.text(before))
            literalSize = size
            literalRemaining = size
            // Whole messages always stream (the fetch consumer writes them to disk); other
            // body sections stream only when too large to keep.
            if let section = Self.bodySection(before) {
                literalStreaming = section.isEmpty || size > Int64(options.maxInlineLiteralSize)
            } else {
                literalStreaming = false
            }
            if !literalStreaming && size > Int64(options.maxInlineLiteralSize) {
                throw .literalTooLarge(size: size, limit: Int64(options.maxInlineLiteralSize))
            }
            if literalStreaming {
                events.append(.streamBegin(streamInfo(size: size)))
            } else {
                responseBytes += Int(size)
                if responseBytes > options.maxResponseSize { throw .responseTooLarge(limit: options.maxResponseSize) }
                literalBuffer.reserveCapacity(Int(size))
            }
            if size == 0 { finishLiteral(&events) }
            return
        }
        segments.append(.text(text))
        let complete = segments
        segments = []
        responseBytes = 0
        var grammar = ResponseGrammar(segments: complete, options: options)
        events.append(.response(try grammar.parseResponse()))
    }

    private mutating func finishLiteral(_ events: inout [ParserEvent]) {
        if literalStreaming {
            events.append(.streamEnd)
            segments.append(.streamed(literalSize))
        } else {
            segments.append(.literal(literalBuffer))
            literalBuffer = []
        }
        literalStreaming = false
    }

    /// `{123}`, `{123+}` or `~{123}` at the end of a line: (size, index where it starts).
    private func literalMarker(_ text: [UInt8]) throws(IMAPParserError) -> (Int64, Int)? {
        guard text.last == UInt8(ascii: "}") else { return nil }
        var i = text.count - 2
        if i >= 0 && text[i] == UInt8(ascii: "+") { i -= 1 }
        let digitsEnd = i + 1
        while i >= 0 && text[i] >= 48 && text[i] <= 57 { i -= 1 }
        guard i >= 0, text[i] == UInt8(ascii: "{"), digitsEnd > i + 1 else { return nil }
        let digits = text[(i + 1)..<digitsEnd]
        guard digits.count <= 18, let size = Int64(String(decoding: digits, as: UTF8.self)) else {
            throw .literalTooLarge(size: Int64.max, limit: options.maxLiteralSize)
        }
        if size > options.maxLiteralSize { throw .literalTooLarge(size: size, limit: options.maxLiteralSize) }
        var start = i
        if start > 0 && text[start - 1] == UInt8(ascii: "~") { start -= 1 }
        return (size, start)
    }

    /// When the text before a literal ends with a body-section fetch item (`BODY[…]<n> `,
    /// `BINARY[…] `, `RFC822 `, `RFC822.TEXT `), the section text; nil otherwise.
    static func bodySection(_ text: [UInt8]) -> [UInt8]? {
        var end = text.count
        guard end > 0, text[end - 1] == 32 else { return nil }
        end -= 1
        if end > 0 && text[end - 1] == UInt8(ascii: ">") {
            guard let lt = text[..<end].lastIndex(of: UInt8(ascii: "<")) else { return nil }
            end = lt
        }
        func endsWith(_ word: String, at end: Int) -> Bool {
            let w = Array(word.utf8)
            guard end >= w.count else { return false }
            for (k, c) in w.enumerated() where asciiUpper(text[end - w.count + k]) != c { return false }
            return end == w.count || text[end - w.count - 1] == 32 || text[end - w.count - 1] == UInt8(ascii: "(")
        }
        if end > 0 && text[end - 1] == UInt8(ascii: "]") {
            guard let open = text[..<end].lastIndex(of: UInt8(ascii: "[")) else { return nil }
            guard endsWith("BODY", at: open) || endsWith("BINARY", at: open) else { return nil }
            return Array(text[(open + 1)..<(end - 1)])
        }
        if endsWith("RFC822", at: end) { return [] }
        if endsWith("RFC822.TEXT", at: end) { return Array("TEXT".utf8) }
        return nil
    }

    private func streamInfo(size: Int64) -> StreamInfo {
        // "* 12 FETCH (UID 345 … BODY[] {n}": the sequence number, UID if it came first,
        // and the section text of the last body item.
        guard case .text(let first)? = segments.first else { return StreamInfo(sequence: 0, uid: nil, section: [], size: size) }
        let words = first.split(separator: 32, maxSplits: 3)
        let sequence = words.count > 1 ? Int(String(decoding: words[1], as: UTF8.self)) ?? 0 : 0
        var uid: UInt32?
        var section: [UInt8] = []
        if case .text(let last)? = segments.last {
            if let close = last.lastIndex(of: UInt8(ascii: "]")), let open = last[..<close].lastIndex(of: UInt8(ascii: "[")) {
                section = Array(last[(open + 1)..<close])
            }
        }
        for case .text(let t) in segments {
            let upper = t.map(asciiUpper)
            var k = 0
            while k + 4 < upper.count {
                if upper[k] == UInt8(ascii: "U"), upper[k + 1] == UInt8(ascii: "I"), upper[k + 2] == UInt8(ascii: "D"), upper[k + 3] == 32,
                   k == 0 || upper[k - 1] == 32 || upper[k - 1] == UInt8(ascii: "(") {
                    let digits = upper[(k + 4)...].prefix(while: { $0 >= 48 && $0 <= 57 })
                    uid = UInt32(String(decoding: digits, as: UTF8.self))
                    break
                }
                k += 1
            }
        }
        return StreamInfo(sequence: sequence, uid: uid, section: section, size: size)
    }
}

@inline(__always) func asciiUpper(_ b: UInt8) -> UInt8 { b >= 97 && b <= 122 ? b - 32 : b }
