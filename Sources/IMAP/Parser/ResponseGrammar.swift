import Support

/// Recursive descent over one complete response (its text segments and literals).
/// Rules follow RFC 3501 §9 / RFC 9051 §9; each function names the rule it parses.
struct ResponseGrammar {
    let segments: [ResponseParser.Segment]
    let options: ParserOptions
    var si = 0
    var pi = 0

    init(segments: [ResponseParser.Segment], options: ParserOptions) {
        self.segments = segments
        self.options = options
    }

    // MARK: cursor

    var text: [UInt8] {
        if case .text(let t) = segments[si] { return t }
        return []
    }

    var peek: UInt8? {
        guard si < segments.count, case .text(let t) = segments[si], pi < t.count else { return nil }
        return t[pi]
    }

    /// Whether the cursor sits where a literal was (the end of a text segment followed by
    /// a literal segment).
    var atLiteral: Bool {
        guard si + 1 < segments.count, case .text(let t) = segments[si], pi >= t.count else { return false }
        switch segments[si + 1] {
        case .literal, .streamed: return true
        case .text: return false
        }
    }

    func fail(_ expected: String) -> IMAPParserError {
        var snippet: [UInt8] = []
        if si < segments.count, case .text(let t) = segments[si] { snippet = Array(t[min(pi, t.count)...].prefix(40)) }
        return .malformed(expected: expected, found: String(decoding: snippet.map { $0 < 32 || $0 > 126 ? UInt8(ascii: "?") : $0 }, as: UTF8.self))
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(IMAPParserError) {
        guard peek == byte else { throw fail(what) }
        pi += 1
    }

    mutating func skipSpaces() { while peek == 32 { pi += 1 } }

    mutating func expectSpace() throws(IMAPParserError) {
        guard peek == 32 else { throw fail("a space") }
        skipSpaces()
    }

    /// The rest of the current text segment (resp-text).
    mutating func restOfLine() -> [UInt8] {
        guard si < segments.count, case .text(let t) = segments[si], pi < t.count else { return [] }
        defer { pi = t.count }
        return Array(t[pi...])
    }

    static func isAtomChar(_ b: UInt8) -> Bool {
        // ATOM-CHAR = any CHAR except atom-specials: ( ) { SP CTL % * " \ ]
        !(b <= 32 || b >= 127 || b == 40 || b == 41 || b == 123 || b == 37 || b == 42 || b == 34 || b == 92 || b == 93)
    }

    /// atom (bytes of ATOM-CHAR; `]` allowed when `astring`).
    mutating func atom(allowBracket: Bool = false) throws(IMAPParserError) -> [UInt8] {
        let t = text
        let start = pi
        while pi < t.count, Self.isAtomChar(t[pi]) || (allowBracket && t[pi] == 93) { pi += 1 }
        guard pi > start else { throw fail("an atom") }
        return Array(t[start..<pi])
    }

    mutating func keyword() throws(IMAPParserError) -> String {
        String(decoding: try atom().map(asciiUpper), as: UTF8.self)
    }

    /// number = 1*DIGIT (up to 63 bits).
    mutating func number() throws(IMAPParserError) -> UInt64 {
        let t = text
        let start = pi
        while pi < t.count, t[pi] >= 48, t[pi] <= 57 { pi += 1 }
        guard pi > start, pi - start <= 19, let v = UInt64(String(decoding: t[start..<pi], as: UTF8.self)), v <= UInt64(Int64.max) else {
            pi = start
            throw fail("a number")
        }
        return v
    }

    mutating func number32() throws(IMAPParserError) -> UInt32 {
        let v = try number()
        guard v <= UInt64(UInt32.max) else { throw fail("a 32-bit number") }
        return UInt32(v)
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE, with \" and \\ escapes.
    mutating func quoted() throws(IMAPParserError) -> [UInt8] {
        try expect(34, "a quoted string")
        let t = text
        var out: [UInt8] = []
        while pi < t.count {
            let b = t[pi]
            if b == 34 { pi += 1; return out }
            if b == 92 {
                guard pi + 1 < t.count, t[pi + 1] == 34 || t[pi + 1] == 92 else { throw fail("\\\" or \\\\ in a quoted string") }
                out.append(t[pi + 1])
                pi += 2
                continue
            }
            out.append(b)
            pi += 1
        }
        throw fail("the end of a quoted string")
    }

    /// literal: the next segment; the cursor moves to the text after it.
    mutating func literal() throws(IMAPParserError) -> BodyData {
        guard atLiteral else { throw fail("a literal") }
        let value: BodyData
        switch segments[si + 1] {
        case .literal(let bytes): value = .inline(bytes)
        case .streamed(let size): value = .streamed(size: size)
        case .text: throw fail("a literal")
        }
        si += 2
        pi = 0
        if si >= segments.count { throw fail("text after a literal") }
        return value
    }

    /// string = quoted / literal (kept in memory).
    mutating func string() throws(IMAPParserError) -> [UInt8] {
        if peek == 34 { return try quoted() }
        guard case .inline(let bytes) = try literal() else { throw fail("a string (not a message body)") }
        return bytes
    }

    mutating func isNIL() -> Bool {
        let t = text
        guard pi + 3 <= t.count, asciiUpper(t[pi]) == 78, asciiUpper(t[pi + 1]) == 73, asciiUpper(t[pi + 2]) == 76 else { return false }
        if pi + 3 < t.count && Self.isAtomChar(t[pi + 3]) { return false }
        pi += 3
        return true
    }

    mutating func nstring() throws(IMAPParserError) -> [UInt8]? {
        if isNIL() { return nil }
        return try string()
    }

    /// astring = 1*ASTRING-CHAR / string.
    mutating func astring() throws(IMAPParserError) -> [UInt8] {
        if peek == 34 || atLiteral { return try string() }
        return try atom(allowBracket: true)
    }

    /// flag = "\" atom / atom / "\*".
    mutating func flag() throws(IMAPParserError) -> Flag {
        var bytes: [UInt8] = []
        if peek == 92 {
            pi += 1
            bytes.append(92)
            if peek == 42 { pi += 1; return Flag("\\*") }
        }
        bytes += try atom()
        return Flag(String(decoding: bytes, as: UTF8.self))
    }

    /// "(" [flag *(SP flag)] ")".
    mutating func flagList() throws(IMAPParserError) -> [Flag] {
        try expect(40, "( to open a flag list")
        var flags: [Flag] = []
        skipSpaces()
        while peek != 41 {
            flags.append(try flag())
            skipSpaces()
            if peek == nil { throw fail(") to close a flag list") }
        }
        pi += 1
        return flags
    }

    /// Skips any value: atom, number, string, NIL, or a (nested) list.
    mutating func skipValue(depth: Int = 0) throws(IMAPParserError) {
        guard depth < options.maxNesting else { throw IMAPParserError.nestingTooDeep(limit: options.maxNesting) }
        if atLiteral { _ = try literal(); return }
        switch peek {
        case 34: _ = try quoted()
        case 40:
            pi += 1
            skipSpaces()
            while peek != 41 {
                if peek == nil && !atLiteral { throw fail(") to close a list") }
                try skipValue(depth: depth + 1)
                skipSpaces()
            }
            pi += 1
        case 91:   // [section] inside e.g. BODY[...] of BODYSTRUCTURE-like data
            while let b = peek, b != 93 { pi += 1 }
            try expect(93, "]")
        case nil: throw fail("a value")
        default:
            let t = text
            let start = pi
            while pi < t.count, t[pi] != 32, t[pi] != 41, t[pi] != 40 { pi += 1 }
            if pi == start { throw fail("a value") }
        }
    }

    // MARK: response

    /// response = continue-req / response-data / response-tagged
    mutating func parseResponse() throws(IMAPParserError) -> Response {
        switch peek {
        case 43:   // "+"
            pi += 1
            if peek == 32 { pi += 1 }
            return .continuation(restOfLine())
        case 42:   // "*"
            pi += 1
            try expectSpace()
            return .untagged(try untagged())
        case nil:
            throw fail("a response")
        default:
            let tag = String(decoding: try atom(), as: UTF8.self)
            try expectSpace()
            let status = try statusKeyword()
            let (code, text) = try respText()
            return .tagged(TaggedResponse(tag: tag, status: status, code: code, text: text))
        }
    }

    mutating func statusKeyword() throws(IMAPParserError) -> ResponseStatus {
        let word = try keyword()
        guard let status = ResponseStatus(rawValue: word) else { throw fail("OK, NO or BAD") }
        return status
    }

    /// resp-text = ["[" resp-text-code "]" SP] text
    mutating func respText() throws(IMAPParserError) -> (ResponseCode?, [UInt8]) {
        skipSpaces()
        var code: ResponseCode?
        if peek == 91 {
            pi += 1
            code = try responseCode()
            try expect(93, "] to close a response code")
            skipSpaces()
        }
        return (code, restOfLine())
    }

    mutating func responseCode() throws(IMAPParserError) -> ResponseCode {
        let name = String(decoding: try atom().map(asciiUpper), as: UTF8.self)
        switch name {
        case "ALERT": return .alert
        case "PARSE": return .parse
        case "READ-ONLY": return .readOnly
        case "READ-WRITE": return .readWrite
        case "TRYCREATE": return .tryCreate
        case "NOMODSEQ": return .noModSeq
        case "CLOSED": return .closed
        case "UIDNOTSTICKY": return .uidNotSticky
        case "CAPABILITY":
            var caps: [String] = []
            while peek == 32 {
                skipSpaces()
                if peek == 93 { break }
                caps.append(String(decoding: try atom(), as: UTF8.self))
            }
            return .capability(caps)
        case "BADCHARSET":
            var sets: [String] = []
            if peek == 32 {
                skipSpaces()
                try expect(40, "(")
                while peek != 41 {
                    skipSpaces()
                    sets.append(String(decoding: try astring(), as: UTF8.self))
                    skipSpaces()
                    if peek == nil { throw fail(")") }
                }
                pi += 1
            }
            return .badCharset(sets)
        case "PERMANENTFLAGS":
            try expectSpace()
            return .permanentFlags(try flagList())
        case "UIDNEXT":
            try expectSpace()
            return .uidNext(UID(try number32()))
        case "UIDVALIDITY":
            try expectSpace()
            return .uidValidity(UIDValidity(try number32()))
        case "UNSEEN":
            try expectSpace()
            return .unseen(Int(try number32()))
        case "HIGHESTMODSEQ":
            try expectSpace()
            return .highestModSeq(ModSeq(try number()))
        case "MODIFIED":
            try expectSpace()
            return .modified(try uidSet())
        case "APPENDUID":
            try expectSpace()
            let validity = UIDValidity(try number32())
            try expectSpace()
            return .appendUID(validity, try uidSet())
        case "COPYUID":
            try expectSpace()
            let validity = UIDValidity(try number32())
            try expectSpace()
            let source = try uidSet()
            try expectSpace()
            return .copyUID(validity, source: source, destination: try uidSet())
        default:
            let t = text
            let start = pi
            while pi < t.count, t[pi] != 93 { pi += 1 }
            var raw = Array(t[start..<pi])
            if raw.first == 32 { raw.removeFirst() }
            return .other(name, raw)
        }
    }

    /// sequence-set of UIDs (`*` allowed).
    mutating func uidSet() throws(IMAPParserError) -> UIDSet {
        let t = text
        let start = pi
        while pi < t.count, (t[pi] >= 48 && t[pi] <= 57) || t[pi] == 58 || t[pi] == 44 || t[pi] == 42 { pi += 1 }
        guard pi > start, let set = UIDSet(parsing: String(decoding: t[start..<pi], as: UTF8.self)) else { throw fail("a UID set") }
        return set
    }

    mutating func untagged() throws(IMAPParserError) -> UntaggedResponse {
        if let b = peek, b >= 48, b <= 57 {
            let n = try number()
            try expectSpace()
            let word = try keyword()
            guard n <= UInt64(UInt32.max) else { throw fail("a message number") }
            switch word {
            case "EXISTS": return .exists(Int(n))
            case "RECENT": return .recent(Int(n))
            case "EXPUNGE": return .expunge(Int(n))
            case "FETCH":
                try expectSpace()
                return .fetch(sequence: Int(n), try fetchAttributes())
            default:
                return .other(word, restOfLine())
            }
        }
        let word = try keyword()
        switch word {
        case "OK", "NO", "BAD", "PREAUTH", "BYE":
            let (code, text) = try respText()
            return .condition(ResponseStatus(rawValue: word)!, code, text)
        case "CAPABILITY":
            return .capability(atomsToEnd())
        case "ENABLED":
            return .enabled(atomsToEnd())
        case "LIST", "LSUB":
            try expectSpace()
            let entry = try listEntry()
            return word == "LIST" ? .list(entry) : .lsub(entry)
        case "STATUS":
            try expectSpace()
            return try status()
        case "FLAGS":
            try expectSpace()
            return .flags(try flagList())
        case "SEARCH":
            return try search()
        case "ESEARCH":
            return .esearch(try esearch())
        case "VANISHED":
            try expectSpace()
            var earlier = false
            if peek == 40 {
                pi += 1
                guard try keyword() == "EARLIER" else { throw fail("EARLIER") }
                try expect(41, ")")
                try expectSpace()
                earlier = true
            }
            return .vanished(earlier: earlier, try uidSet())
        case "ID":
            try expectSpace()
            return .id(try idParameters())
        case "NAMESPACE":
            try expectSpace()
            let personal = try namespaceList()
            try expectSpace()
            let other = try namespaceList()
            try expectSpace()
            let shared = try namespaceList()
            return .namespace(NamespaceResponse(personal: personal, otherUsers: other, shared: shared))
        default:
            skipSpaces()
            return .other(word, restOfLine())
        }
    }

    mutating func atomsToEnd() -> [String] {
        var result: [String] = []
        while true {
            skipSpaces()
            guard let value = try? atom(allowBracket: true) else { break }
            result.append(String(decoding: value, as: UTF8.self))
        }
        return result
    }

    /// mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended]
    mutating func listEntry() throws(IMAPParserError) -> ListEntry {
        try expect(40, "( to open LIST attributes")
        var attributes: [String] = []
        skipSpaces()
        while peek != 41 {
            attributes.append(try flag().rawValue)
            skipSpaces()
            if peek == nil { throw fail(") to close LIST attributes") }
        }
        pi += 1
        try expectSpace()
        var delimiter: UInt8?
        if !isNIL() {
            let d = try quoted()
            guard d.count == 1 else { throw fail("a one-character hierarchy delimiter") }
            delimiter = d[0]
        }
        try expectSpace()
        let name = MailboxName(bytes: try astring())
        skipSpaces()
        if peek == 40 { try skipValue() }   // extended data (CHILDINFO, OLDNAME)
        return ListEntry(attributes: attributes, delimiter: delimiter, name: name)
    }

    /// "STATUS" SP mailbox SP "(" [status-att-list] ")"
    mutating func status() throws(IMAPParserError) -> UntaggedResponse {
        let name = MailboxName(bytes: try astring())
        try expectSpace()
        try expect(40, "( to open STATUS items")
        var items: [StatusItem: UInt64] = [:]
        skipSpaces()
        while peek != 41 {
            let word = try keyword()
            try expectSpace()
            let value = try number()
            if let item = StatusItem(rawValue: word) { items[item] = value }
            skipSpaces()
            if peek == nil { throw fail(") to close STATUS items") }
        }
        pi += 1
        return .status(name, items)
    }

    /// "SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]
    mutating func search() throws(IMAPParserError) -> UntaggedResponse {
        var numbers: [UInt32] = []
        var modSeq: ModSeq?
        while peek == 32 {
            skipSpaces()
            if peek == 40 {
                pi += 1
                guard try keyword() == "MODSEQ" else { throw fail("MODSEQ") }
                try expectSpace()
                modSeq = ModSeq(try number())
                try expect(41, ")")
            } else if peek != nil {
                numbers.append(try number32())
            }
        }
        return .search(numbers, modSeq: modSeq)
    }

    /// "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
    mutating func esearch() throws(IMAPParserError) -> ESearchResponse {
        var result = ESearchResponse()
        skipSpaces()
        if peek == 40 {
            pi += 1
            guard try keyword() == "TAG" else { throw fail("TAG") }
            try expectSpace()
            result.tag = String(decoding: try string(), as: UTF8.self)
            try expect(41, ")")
        }
        while true {
            skipSpaces()
            guard peek != nil else { break }
            let word = try keyword()
            if word == "UID" { result.uid = true; continue }
            try expectSpace()
            switch word {
            case "ALL": result.all = try uidSet()
            case "MIN": result.min = try number32()
            case "MAX": result.max = try number32()
            case "COUNT": result.count = Int(try number32())
            case "MODSEQ": result.modSeq = ModSeq(try number())
            default: try skipValue()
            }
        }
        return result
    }

    mutating func idParameters() throws(IMAPParserError) -> [String: String]? {
        if isNIL() { return nil }
        try expect(40, "( to open ID parameters")
        var result: [String: String] = [:]
        skipSpaces()
        while peek != 41 {
            let key = String(decoding: try string(), as: UTF8.self)
            try expectSpace()
            let value = try nstring()
            result[key] = value.map { String(decoding: $0, as: UTF8.self) } ?? ""
            skipSpaces()
            if peek == nil && !atLiteral { throw fail(") to close ID parameters") }
        }
        pi += 1
        return result
    }

    mutating func namespaceList() throws(IMAPParserError) -> [Namespace] {
        if isNIL() { return [] }
        try expect(40, "( to open a namespace list")
        var result: [Namespace] = []
        while peek == 40 {
            pi += 1
            let prefix = try string()
            try expectSpace()
            var delimiter: UInt8?
            if !isNIL() {
                let d = try quoted()
                delimiter = d.first
            }
            while peek == 32 { skipSpaces(); if peek != 41 { try skipValue() } }   // extensions
            try expect(41, ") to close a namespace")
            result.append(Namespace(prefix: prefix, delimiter: delimiter))
            skipSpaces()
        }
        try expect(41, ") to close a namespace list")
        return result
    }

    /// msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP …) ")"
    mutating func fetchAttributes() throws(IMAPParserError) -> [FetchAttribute] {
        try expect(40, "( to open FETCH data")
        var attributes: [FetchAttribute] = []
        while true {
            skipSpaces()
            if peek == 41 { pi += 1; break }
            guard peek != nil else { throw fail(") to close FETCH data") }
            let t = text
            let start = pi
            while pi < t.count, t[pi] != 32, t[pi] != 91, t[pi] != 40, t[pi] != 41 { pi += 1 }
            guard pi > start else { throw fail("a FETCH item") }
            let name = String(decoding: t[start..<pi].map(asciiUpper), as: UTF8.self)
            switch name {
            case "UID":
                try expectSpace()
                attributes.append(.uid(UID(try number32())))
            case "FLAGS":
                try expectSpace()
                attributes.append(.flags(try flagList()))
            case "INTERNALDATE":
                try expectSpace()
                let raw = try quoted()
                guard let date = IMAPDate.parse(raw) else { throw fail("a date-time") }
                attributes.append(.internalDate(date))
            case "RFC822.SIZE":
                try expectSpace()
                attributes.append(.rfc822Size(Int64(try number())))
            case "MODSEQ":
                try expectSpace()
                try expect(40, "( after MODSEQ")
                let value = ModSeq(try number())
                try expect(41, ") after the MODSEQ value")
                attributes.append(.modSeq(value))
            case "BODY", "BINARY", "RFC822", "RFC822.TEXT", "RFC822.HEADER", "BINARY.SIZE":
                if name == "BODY" && peek != 91 {   // BODY without section = BODYSTRUCTURE form
                    try expectSpace()
                    try skipValue()
                    attributes.append(.other(name))
                    continue
                }
                var section: [UInt8] = []
                if peek == 91 {
                    pi += 1
                    let sectionStart = pi
                    while let b = peek, b != 93 { pi += 1 }
                    section = Array(t[sectionStart..<pi])
                    try expect(93, "] to close a body section")
                } else if name == "RFC822.TEXT" {
                    section = Array("TEXT".utf8)
                } else if name == "RFC822.HEADER" {
                    section = Array("HEADER".utf8)
                }
                var origin: Int64?
                if peek == 60 {
                    pi += 1
                    origin = Int64(try number())
                    try expect(62, "> after a body origin")
                }
                try expectSpace()
                if name == "BINARY.SIZE" {
                    _ = try number()
                    attributes.append(.other(name))
                    continue
                }
                let data: BodyData
                if isNIL() { data = .nilValue }
                else if peek == 34 { data = .inline(try quoted()) }
                else { data = try literal() }
                attributes.append(.body(section: section, origin: origin, data: data))
            default:
                try expectSpace()
                try skipValue()
                attributes.append(.other(name))
            }
        }
        return attributes
    }
}
