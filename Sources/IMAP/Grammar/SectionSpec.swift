/// A FETCH body section spec (`HEADER.FIELDS (MESSAGE-ID DATE)`) as a value, so that a
/// section in a response is found by the spelling the request used whatever spelling the
/// server chose: RFC 3501 makes header field names astrings, and Courier answers
/// `HEADER.FIELDS ("MESSAGE-ID" "DATE")`; case and spacing may differ too.
public enum SectionSpec {
    /// The canonical form: upper case, quoted strings unquoted (their escapes undone), runs
    /// of spaces as one, none just inside parentheses.
    public static func canonical<C: Collection>(_ spec: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(spec.count)
        var inQuote = false, escaped = false, pendingSpace = false
        for b in spec {
            if inQuote {
                if escaped { out.append(asciiUpper(b)); escaped = false }
                else if b == 92 { escaped = true }           // backslash
                else if b == 34 { inQuote = false }          // closing quote
                else { out.append(asciiUpper(b)) }
                continue
            }
            switch b {
            case 32, 9:
                pendingSpace = !out.isEmpty && out.last != 40   // not right after "("
            case 41:                                             // ")": no space before it
                pendingSpace = false
                out.append(b)
            default:
                if pendingSpace { out.append(32); pendingSpace = false }
                if b == 34 { inQuote = true } else { out.append(asciiUpper(b)) }
            }
        }
        return out
    }
}
