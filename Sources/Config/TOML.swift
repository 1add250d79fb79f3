/// A value read from a TOML document, with the line it was written on.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The TOML type name, for "expected a string, found an integer" messages.
    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A TOML table: keys in the order they were written, each with its value and line.
public struct TOMLTable: Sendable, Equatable {
    /// One `key = value` of the table.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: TOMLValue
        public var line: Int
    }
    /// The entries in document order.
    public internal(set) var entries: [Entry] = []
    /// The line of the `[header]` (or of the first key for the root and inline tables).
    public internal(set) var line: Int
    /// Whether an explicit `[header]` defined it (a second one is an error).
    var explicitlyDefined = false
    /// Whether it is a `[[header]]` element or an inline table (closed to dotted extension).
    var sealed = false

    init(line: Int) { self.line = line }

    /// The entry for `key`, if present.
    public subscript(key: String) -> Entry? {
        entries.first(where: { $0.key == key })
    }

    fileprivate func index(of key: String) -> Int? { entries.firstIndex(where: { $0.key == key }) }
}

/// A syntax error in a TOML document, at a line (1-based).
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// A reader for TOML 1.0 as configuration files use it: tables, arrays of tables, dotted
/// keys, basic/literal/multi-line strings with escapes, integers (with `_`, hex, octal,
/// binary), floats, booleans, arrays, inline tables and comments. Date-times are rejected
/// with a clear message since no mailmirror setting takes one.
public enum TOMLParser {
    /// Parses a whole document into its root table.
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = Parser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }
}

private struct Parser {
    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var root = TOMLTable(line: 1)
    /// Path of the table that `key = value` lines currently go into.
    var currentPath: [String] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { pos >= bytes.count }
    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }
    func peek(_ offset: Int) -> UInt8? { pos + offset < bytes.count ? bytes[pos + offset] : nil }

    func fail(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3 }
        while true {
            skipWhitespace()
            guard let c = peek else { break }
            switch c {
            case UInt8(ascii: "#"), 10, 13:
                try expectEndOfLine()   // blank or comment-only line
            case UInt8(ascii: "["):
                try parseHeader()
                try expectEndOfLine()
            default:
                try parseKeyValue(into: currentPath)
                try expectEndOfLine()
            }
        }
        return root
    }

    mutating func skipWhitespace() {
        while let c = peek, c == 32 || c == 9 { pos += 1 }
    }

    mutating func skipComment() {
        while let c = peek, c != 10 { pos += 1 }
    }

    mutating func expectEndOfLine() throws(TOMLError) {
        skipWhitespace()
        if peek == UInt8(ascii: "#") { skipComment() }
        guard let c = peek else { return }
        if c == 10 { pos += 1; line += 1; return }
        if c == 13 && peek(1) == 10 { pos += 2; line += 1; return }
        throw fail("unexpected \(describe(c)) after the value; put each setting on its own line")
    }

    // MARK: headers

    mutating func parseHeader() throws(TOMLError) {
        let isArray = peek(1) == UInt8(ascii: "[")
        pos += isArray ? 2 : 1
        skipWhitespace()
        let path = try parseKey()
        skipWhitespace()
        let close: [UInt8] = isArray ? [93, 93] : [93]
        guard bytes[pos...].starts(with: close) else {
            throw fail(isArray ? "expected ]] to close the [[\(path.joined(separator: "."))]] header"
                               : "expected ] to close the [\(path.joined(separator: "."))] header")
        }
        pos += close.count
        let headerLine = line
        if isArray {
            try withTable(path.dropLast(), create: true) { (parent: inout TOMLTable) throws(TOMLError) in
                let key = path.last!
                var element = TOMLTable(line: headerLine)
                element.explicitlyDefined = true
                if let i = parent.index(of: key) {
                    guard case .array(var items) = parent.entries[i].value,
                          items.allSatisfy({ if case .table(let t) = $0 { t.sealed } else { false } }) else {
                        throw TOMLError(line: headerLine, message: "[[\(path.joined(separator: "."))]] redefines \"\(key)\", which is not an array of tables")
                    }
                    element.sealed = true
                    items.append(.table(element))
                    parent.entries[i].value = .array(items)
                } else {
                    element.sealed = true
                    parent.entries.append(.init(key: key, value: .array([.table(element)]), line: headerLine))
                }
            }
            currentPath = path
        } else {
            try withTable(path[...], create: true) { (table: inout TOMLTable) throws(TOMLError) in
                if table.explicitlyDefined {
                    throw TOMLError(line: headerLine, message: "table [\(path.joined(separator: "."))] is defined twice (first on line \(table.line))")
                }
                table.explicitlyDefined = true
                table.line = headerLine
            }
            currentPath = path
        }
    }

    /// Runs `body` on the table at `path` (descending into the last element of arrays of
    /// tables), creating implicit tables on the way when `create` is set.
    mutating func withTable(_ path: ArraySlice<String>, create: Bool,
                            _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        let lineNow = line
        func descend(_ table: inout TOMLTable, _ rest: ArraySlice<String>) throws(TOMLError) {
            guard let key = rest.first else { try body(&table); return }
            if let i = table.index(of: key) {
                switch table.entries[i].value {
                case .table(var child):
                    try descend(&child, rest.dropFirst())
                    table.entries[i].value = .table(child)
                case .array(var items):
                    guard let last = items.indices.last, case .table(var child) = items[last], child.sealed else {
                        throw TOMLError(line: lineNow, message: "\"\(key)\" is already a value (line \(table.entries[i].line)), not a table")
                    }
                    try descend(&child, rest.dropFirst())
                    items[last] = .table(child)
                    table.entries[i].value = .array(items)
                default:
                    throw TOMLError(line: lineNow, message: "\"\(key)\" is already a value (line \(table.entries[i].line)), not a table")
                }
            } else {
                var child = TOMLTable(line: lineNow)
                try descend(&child, rest.dropFirst())
                table.entries.append(.init(key: key, value: .table(child), line: lineNow))
            }
        }
        try descend(&root, path)
    }

    // MARK: key = value

    mutating func parseKeyValue(into tablePath: [String]) throws(TOMLError) {
        let keyLine = line
        let key = try parseKey()
        skipWhitespace()
        guard peek == UInt8(ascii: "=") else {
            throw fail("expected = after the key \"\(key.joined(separator: "."))\"")
        }
        pos += 1
        skipWhitespace()
        let value = try parseValue(depth: 0)
        try withTable((tablePath + key.dropLast())[...], create: true) { (table: inout TOMLTable) throws(TOMLError) in
            let last = key.last!
            if let existing = table[last] {
                throw TOMLError(line: keyLine, message: "\"\(key.joined(separator: "."))\" is set twice (first on line \(existing.line))")
            }
            table.entries.append(.init(key: last, value: value, line: keyLine))
        }
    }

    mutating func parseKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            guard let c = peek else { throw fail("expected a key") }
            if c == UInt8(ascii: "\"") {
                parts.append(try parseBasicString())
            } else if c == UInt8(ascii: "'") {
                parts.append(try parseLiteralString())
            } else {
                let start = pos
                while let b = peek, isBareKeyByte(b) { pos += 1 }
                guard pos > start else {
                    throw fail("expected a key (letters, digits, _ and -), found \(describe(c))")
                }
                parts.append(String(decoding: bytes[start..<pos], as: UTF8.self))
            }
            skipWhitespace()
            if peek == UInt8(ascii: ".") { pos += 1; continue }
            return parts
        }
    }

    func isBareKeyByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 45
    }

    // MARK: values

    mutating func parseValue(depth: Int) throws(TOMLError) -> TOMLValue {
        guard depth < 64 else { throw fail("values nested more than 64 deep") }
        guard let c = peek, c != 10, c != 13, c != UInt8(ascii: "#") else { throw fail("expected a value after =") }
        switch c {
        case UInt8(ascii: "\""): return .string(try parseBasicString())
        case UInt8(ascii: "'"): return .string(try parseLiteralString())
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "{"): return try parseInlineTable(depth: depth)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if bytes[pos...].starts(with: Array("true".utf8)) { pos += 4; return .boolean(true) }
            if bytes[pos...].starts(with: Array("false".utf8)) { pos += 5; return .boolean(false) }
            throw badBareValue()
        default:
            return try parseNumber()
        }
    }

    mutating func badBareValue() -> TOMLError {
        let start = pos
        while let b = peek, b != 10, b != 13, b != UInt8(ascii: "#"), b != UInt8(ascii: ","), b != UInt8(ascii: "]") { pos += 1 }
        let word = String(decoding: bytes[start..<pos], as: UTF8.self).trimmingTrailingSpaces()
        return fail("\(word) is not a value; strings need quotes: \"\(word)\"")
    }

    mutating func parseNumber() throws(TOMLError) -> TOMLValue {
        let start = pos
        while let b = peek, isBareKeyByte(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") { pos += 1 }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard !text.isEmpty else { return try { () throws(TOMLError) -> TOMLValue in throw badBareValue() }() }
        if text.contains(":") || (text.count >= 10 && text.dropFirst(4).first == "-" && text.first!.isNumber) {
            throw fail("\(text): dates and times are not used by any mailmirror setting")
        }
        let cleaned = text.replacingUnderscores()
        if cleaned == nil { throw fail("\(text): an underscore in a number must sit between two digits") }
        let digits = cleaned!
        var sign: Int64 = 1
        var body = Substring(digits)
        if body.first == "+" || body.first == "-" {
            if body.first == "-" { sign = -1 }
            body = body.dropFirst()
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            guard sign == 1, digits.first != "+", let v = Int64(body.dropFirst(2), radix: radix) else {
                throw fail("\(text) is not a valid number")
            }
            return .integer(v)
        }
        if body == "inf" { return .float(Double(sign) * .infinity) }
        if body == "nan" { return .float(.nan) }
        if body.allSatisfy({ $0.isASCII && $0.isNumber }) {
            if body.count > 1 && body.first == "0" { throw fail("\(text): leading zeros are not allowed in a number") }
            guard let v = Int64(body) else { throw fail("\(text) is too large for an integer") }
            return .integer(sign * v)
        }
        if let v = Double(body), body.first?.isNumber == true, body.last?.isNumber == true {
            return .float(Double(sign) * v)
        }
        pos = start
        throw badBareValue()
    }

    mutating func parseArray(depth: Int) throws(TOMLError) -> TOMLValue {
        let openLine = line
        pos += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlankAndComments(closing: "]", openLine: openLine)
            if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
            items.append(try parseValue(depth: depth + 1))
            try skipBlankAndComments(closing: "]", openLine: openLine)
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected , or ] in the array opened on line \(openLine)")
        }
    }

    mutating func skipBlankAndComments(closing: Character, openLine: Int) throws(TOMLError) {
        while let c = peek {
            if c == 32 || c == 9 { pos += 1 }
            else if c == 10 { pos += 1; line += 1 }
            else if c == 13 && peek(1) == 10 { pos += 2; line += 1 }
            else if c == UInt8(ascii: "#") { skipComment() }
            else { return }
        }
        throw TOMLError(line: openLine, message: "the array opened on this line is not closed with \(closing)")
    }

    mutating func parseInlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
        let openLine = line
        pos += 1
        var table = TOMLTable(line: openLine)
        table.sealed = true
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .table(table) }
        while true {
            skipWhitespace()
            let keyLine = line
            let key = try parseKey()
            guard peek == UInt8(ascii: "=") else { throw fail("expected = after \"\(key.joined(separator: "."))\" in the inline table") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            if key.count != 1 { throw fail("dotted keys inside an inline table are not supported; write a [table] instead") }
            if table[key[0]] != nil { throw fail("\"\(key[0])\" is set twice in the inline table") }
            table.entries.append(.init(key: key[0], value: value, line: keyLine))
            skipWhitespace()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            if peek == UInt8(ascii: "}") { pos += 1; return .table(table) }
            throw fail("expected , or } in the inline table (inline tables must stay on one line)")
        }
    }

    // MARK: strings

    mutating func parseLiteralString() throws(TOMLError) -> String {
        if bytes[pos...].starts(with: [39, 39, 39]) { return try parseMultilineLiteral() }
        pos += 1
        let start = pos
        while let c = peek, c != 39 {
            if c == 10 || c == 13 { throw fail("a '…' string must close on the same line") }
            pos += 1
        }
        guard peek == 39 else { throw fail("unterminated '…' string") }
        let s = String(decoding: bytes[start..<pos], as: UTF8.self)
        pos += 1
        return s
    }

    mutating func parseMultilineLiteral() throws(TOMLError) -> String {
        let openLine = line
        pos += 3
        skipNewlineAfterOpening()
        let start = pos
        while pos < bytes.count {
            if bytes[pos...].starts(with: [39, 39, 39]) {
                var end = pos
                while peek(3) == 39 && pos + 3 - start < bytes.count { pos += 1; end = pos }  // up to two quotes may end the content
                let s = String(decoding: bytes[start..<end], as: UTF8.self)
                pos += 3
                return s
            }
            if bytes[pos] == 10 { line += 1 }
            pos += 1
        }
        throw TOMLError(line: openLine, message: "the ''' string opened here is never closed")
    }

    mutating func skipNewlineAfterOpening() {
        if peek == 10 { pos += 1; line += 1 }
        else if peek == 13 && peek(1) == 10 { pos += 2; line += 1 }
    }

    mutating func parseBasicString() throws(TOMLError) -> String {
        let multiline = bytes[pos...].starts(with: [34, 34, 34])
        let openLine = line
        pos += multiline ? 3 : 1
        if multiline { skipNewlineAfterOpening() }
        var out: [UInt8] = []
        while true {
            guard let c = peek else {
                throw TOMLError(line: openLine, message: multiline ? "the \"\"\" string opened here is never closed" : "unterminated string: add the closing \"")
            }
            if c == 34 {
                if !multiline { pos += 1; break }
                if bytes[pos...].starts(with: [34, 34, 34]) {
                    var extra = 0
                    while peek(3 + extra) == 34 && extra < 2 { extra += 1 }
                    out.append(contentsOf: repeatElement(34, count: extra))
                    pos += 3 + extra
                    break
                }
                out.append(c); pos += 1
                continue
            }
            if c == 10 || c == 13 {
                if !multiline { throw fail("unterminated string: add the closing \" before the end of the line") }
                if c == 10 { line += 1 }
                out.append(c); pos += 1
                continue
            }
            if c == 92 {
                pos += 1
                guard let e = peek else { continue }
                pos += 1
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "e"): out.append(27)
                case 34: out.append(34)
                case 92: out.append(92)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "u") ? 4 : 8
                    guard pos + n <= bytes.count,
                          let code = UInt32(String(decoding: bytes[pos..<pos + n], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(code) else {
                        throw fail("\\\(Character(Unicode.Scalar(e))) must be followed by \(n) hex digits of a Unicode scalar")
                    }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    pos += n
                case let w where multiline && (w == 32 || w == 9 || w == 10 || w == 13):
                    // line-ending backslash: trim the newline and following whitespace
                    pos -= 1
                    while let w = peek, w == 32 || w == 9 || w == 10 || w == 13 {
                        if w == 10 { line += 1 }
                        pos += 1
                    }
                default:
                    throw fail("unknown escape \\\(describeRaw(e)) in a string; write \\\\ for a backslash, or use a 'literal string'")
                }
                continue
            }
            if c < 32 && c != 9 { throw fail("control character \(describe(c)) in a string; write it as an escape") }
            out.append(c)
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    func describe(_ b: UInt8) -> String {
        if b >= 33 && b < 127 { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16)
    }
    func describeRaw(_ b: UInt8) -> String { b >= 33 && b < 127 ? String(Character(Unicode.Scalar(b))) : "0x" + String(b, radix: 16) }
}

extension String {
    /// Removes `_` separators, or nil when one is not between two digits.
    fileprivate func replacingUnderscores() -> String? {
        guard contains("_") else { return self }
        let chars = Array(self)
        for (i, ch) in chars.enumerated() where ch == "_" {
            guard i > 0, i + 1 < chars.count, chars[i - 1].isHexDigit, chars[i + 1].isHexDigit else { return nil }
        }
        return String(chars.filter { $0 != "_" })
    }

    fileprivate func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
