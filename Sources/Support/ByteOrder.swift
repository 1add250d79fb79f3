#if canImport(Glibc)
import Glibc
#endif

/// Strings compared as their UTF-8 bytes, the order SQLite's BINARY collation gives TEXT: a
/// Maildir listing sorted this way merges with pairs read from the state in `ORDER BY
/// local_name` (docs/scale.md). Swift's own `<` compares Unicode scalars after
/// normalization, which can call two different file names equal.
public enum ByteOrder {
    /// Negative when `a` sorts first, zero when the bytes are the same, positive otherwise.
    @inlinable
    public static func compare(_ a: String, _ b: String) -> Int {
        var a = a, b = b   // withUTF8 is mutating; a native string is not copied
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let n = min(x.count, y.count)
                if n > 0, let p = x.baseAddress, let q = y.baseAddress {
                    let c = memcmp(p, q, n)
                    if c != 0 { return Int(c) }
                }
                return x.count - y.count
            }
        }
    }

    /// Whether `a` sorts before `b` by bytes.
    @inlinable
    public static func precedes(_ a: String, _ b: String) -> Bool { compare(a, b) < 0 }
}
