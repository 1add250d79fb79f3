import Support

/// A set of UIDs kept as sorted, disjoint, non-adjacent ranges, written `1:5,7,9:12`.
///
/// `*` (the largest UID in the mailbox) is stored as `UInt32.max`; a server's `n:*` thus
/// means "n and above".
public struct UIDSet: Hashable, Sendable, CustomStringConvertible, Sequence {
    /// Closed ranges in ascending order.
    public private(set) var ranges: [ClosedRange<UInt32>] = []

    public init() {}

    public init<S: Sequence>(_ uids: S) where S.Element == UID {
        for uid in uids.map(\.rawValue).sorted() { appendSorted(uid...uid) }
    }

    public init(ranges: [ClosedRange<UInt32>]) {
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) { appendSorted(r) }
    }

    /// `from:*`.
    public static func from(_ uid: UID) -> UIDSet { UIDSet(ranges: [uid.rawValue...UInt32.max]) }

    private mutating func appendSorted(_ r: ClosedRange<UInt32>) {
        if let last = ranges.last {
            let touches = r.lowerBound <= last.upperBound || (last.upperBound != UInt32.max && r.lowerBound == last.upperBound + 1)
            if touches {
                ranges[ranges.count - 1] = last.lowerBound...Swift.max(last.upperBound, r.upperBound)
                return
            }
        }
        ranges.append(r)
    }

    public mutating func insert(_ uid: UID) {
        var all = ranges
        all.append(uid.rawValue...uid.rawValue)
        self = UIDSet(ranges: all)
    }

    public func contains(_ uid: UID) -> Bool {
        var lo = 0, hi = ranges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < uid.rawValue { lo = mid + 1 }
            else if ranges[mid].lowerBound > uid.rawValue { hi = mid - 1 }
            else { return true }
        }
        return false
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Number of UIDs (ranges ending in `*` count up to UInt32.max).
    public var count: Int { ranges.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } }

    public var description: String {
        ranges.map { r in
            let upper = r.upperBound == UInt32.max ? "*" : String(r.upperBound)
            return r.lowerBound == r.upperBound ? upper == "*" ? "*" : String(r.lowerBound) : "\(r.lowerBound):\(upper)"
        }.joined(separator: ",")
    }

    /// The set split into pieces whose text stays within `maxLength` bytes, so a command
    /// line stays server-friendly (RFC 7162 §4 recommends lines under 8192 octets), and
    /// that hold at most `maxCount` UIDs each (a server's MESSAGELIMIT, RFC 9738). A range
    /// ending in `*` is never split by count (its count is not the server's).
    public func chunked(maxLength: Int = 4000, maxCount: Int? = nil) -> [UIDSet] {
        var chunks: [UIDSet] = []
        var current = UIDSet()
        var length = 0, count = 0
        let limit = maxCount.map { Swift.max(1, $0) } ?? Int.max
        func close() {
            if !current.isEmpty { chunks.append(current) }
            current = UIDSet(); length = 0; count = 0
        }
        for whole in ranges {
            var r = whole
            while true {
                var piece = r
                if r.upperBound != UInt32.max, Int(r.upperBound - r.lowerBound) + 1 > limit - count {
                    if count == limit { close() }
                    piece = r.lowerBound...(r.lowerBound + UInt32(limit - count - 1))
                }
                let text = UIDSet(ranges: [piece]).description.utf8.count + 1
                if length + text > maxLength && !current.isEmpty { close(); continue }
                current.ranges.append(piece)
                length += text
                count += piece.upperBound == UInt32.max ? 1 : Int(piece.upperBound - piece.lowerBound) + 1
                if count >= limit { close() }
                guard piece.upperBound < r.upperBound else { break }
                r = (piece.upperBound + 1)...r.upperBound
            }
        }
        close()
        return chunks
    }

    /// The UIDs one by one (do not iterate a set ending in `*`).
    public func makeIterator() -> AnyIterator<UID> {
        var iterator = ranges.lazy.flatMap { $0 }.makeIterator()
        return AnyIterator { iterator.next().map { UID($0) } }
    }

    /// Parses `1:5,7,9:*` (the order of a range's ends does not matter).
    public init?(parsing text: some StringProtocol) {
        var collected: [ClosedRange<UInt32>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: ":", omittingEmptySubsequences: false)
            guard ends.count == 1 || ends.count == 2 else { return nil }
            var values: [UInt32] = []
            for end in ends {
                if end == "*" { values.append(UInt32.max) }
                else if let v = UInt32(end), v > 0 { values.append(v) }
                else { return nil }
            }
            collected.append(values.min()!...values.max()!)
        }
        self.init(ranges: collected)
    }
}
