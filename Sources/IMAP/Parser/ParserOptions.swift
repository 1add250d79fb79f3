/// Bounds that keep a hostile or broken server from making the client use unbounded
/// memory or time. Exceeding one is an `IMAPParserError`; the session then closes the
/// connection.
public struct ParserOptions: Sendable, Equatable {
    /// Longest line (between literals) in bytes.
    public var maxLineLength: Int = 512 * 1024
    /// Largest literal a server may announce (a streamed message body).
    public var maxLiteralSize: Int64 = 256 * 1024 * 1024
    /// Largest literal kept in memory; a body section above it is streamed, any other
    /// literal above it is an error.
    public var maxInlineLiteralSize: Int = 1024 * 1024
    /// Most bytes one response may keep in memory (lines plus inline literals).
    public var maxResponseSize: Int = 8 * 1024 * 1024
    /// Deepest nesting of parenthesised lists.
    public var maxNesting: Int = 100

    public init() {}
}

/// Input that the parser refuses; the connection cannot be trusted after it.
public enum IMAPParserError: Error, Sendable, Equatable, CustomStringConvertible {
    case lineTooLong(limit: Int)
    case literalTooLarge(size: Int64, limit: Int64)
    case responseTooLarge(limit: Int)
    case nestingTooDeep(limit: Int)
    /// The bytes do not follow the grammar: what was expected and a snippet of what came.
    case malformed(expected: String, found: String)

    public var description: String {
        switch self {
        case .lineTooLong(let limit): return "the server sent a line longer than \(limit) bytes"
        case let .literalTooLarge(size, limit): return "the server announced a literal of \(size) bytes (limit \(limit))"
        case .responseTooLarge(let limit): return "the server sent a response larger than \(limit) bytes"
        case .nestingTooDeep(let limit): return "the server nested lists deeper than \(limit)"
        case let .malformed(expected, found): return "unparseable server response: expected \(expected), found \"\(found)\""
        }
    }
}
