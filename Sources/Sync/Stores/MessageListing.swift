import Support
import Maildir

/// A store's messages by key: what `FolderStore.list` returns and the planner reads.
///
/// A server's listing comes in UID order and is kept in columns sorted by UID, about 22
/// bytes a message (a dictionary of `StoreMessage`s took about 260: at 100,000 messages the
/// difference between 2 and 26 MB; docs/scale.md). Anything else — Maildir names, a UID
/// reported out of order or twice — goes to a dictionary, which wins over the columns.
/// A Maildir's scan is kept as an array sorted by the bytes of the base names (about 64
/// bytes and one string a file; a dictionary's buckets took 170): looked up by binary
/// search, and walked in the order the state hands out pairs (`ORDER BY local_name`).
public struct MessageListing: Sequence, Sendable {
    private var table: [MessageKey: StoreMessage] = [:]
    /// A Maildir's scan in `ByteOrder` of base names, one file a name; read in place (the
    /// store keeps the same array: no copy).
    public private(set) var files: [MaildirMessage] = []
    private var columnUIDs: [UInt32] = []
    /// Each message's flags as an index into `flagSets`, the distinct sets met (a folder's
    /// messages share a few: the six letters' combinations, the keywords a client sets).
    private var flags: [UInt16] = []
    private var flagSets: [MessageFlags] = []
    private var flagSetIndex: [MessageFlags: UInt16] = [:]
    /// `Int64.min`: no date; -1: no size.
    private var dates: [Int64] = []
    private var sizes: [Int64] = []
    /// Entries of `table` whose UID is in the columns too (counted once).
    private var shadowed = 0

    public init() {}

    /// A listing of exactly these messages.
    public init(_ table: [MessageKey: StoreMessage]) { self.table = table }

    /// A Maildir folder's messages as its scan found them. Of two files with one base name
    /// (a copy left in `new/`, two info parts) the one in `new/`, else the last by file
    /// name, is taken, as a dictionary filled in scan order did before.
    public init(files scanned: consuming [MaildirMessage]) {
        var sorted = consume scanned   // sorted in place: 100,000 files are not held twice
        sorted.sort { a, b in
            let c = ByteOrder.compare(a.baseName, b.baseName)
            if c != 0 { return c < 0 }
            if a.subdirectory != b.subdirectory { return a.subdirectory == .cur }
            return ByteOrder.precedes(a.fileName, b.fileName)
        }
        var kept = 0
        for i in sorted.indices {
            if kept > 0 && ByteOrder.compare(sorted[kept - 1].baseName, sorted[i].baseName) == 0 { sorted[kept - 1] = sorted[i] }
            else { sorted.swapAt(kept, i); kept += 1 }
        }
        sorted.removeLast(sorted.count - kept)
        files = sorted
    }

    /// A listing of these files, keyed by base name.
    public init(files: [String: MaildirMessage]) { self.init(files: Array(files.values)) }

    public var count: Int { table.count + files.count + columnUIDs.count - shadowed }
    public var isEmpty: Bool { count == 0 }

    /// Makes room for `n` server messages in the columns.
    public mutating func reserveCapacity(uids n: Int) {
        columnUIDs.reserveCapacity(n)
        flags.reserveCapacity(n)
        dates.reserveCapacity(n)
        sizes.reserveCapacity(n)
    }

    /// Adds a message; a later report of the same key replaces an earlier one.
    public mutating func insert(_ message: StoreMessage) {
        if case .uid(let uid) = message.key, columnUIDs.last.map({ $0 < uid.rawValue }) ?? true,
           let bits = setIndex(message.flags) {
            if !table.isEmpty { table[message.key] = nil }   // an earlier report, replaced
            columnUIDs.append(uid.rawValue)
            flags.append(bits)
            dates.append(message.date ?? Int64.min)
            sizes.append(message.size ?? -1)
            return
        }
        if table.updateValue(message, forKey: message.key) == nil, case .uid(let uid) = message.key, column(of: uid) != nil {
            shadowed += 1
        }
    }

    public subscript(key: MessageKey) -> StoreMessage? {
        if let m = table[key] { return m }
        if case .name(let name) = key, let file = file(named: name) { return Self.message(file) }
        guard case .uid(let uid) = key, let i = column(of: uid) else { return nil }
        return entry(i)
    }

    /// The scanned file with this base name (binary search in byte order).
    public func file(named name: String) -> MaildirMessage? {
        var low = 0, high = files.count
        while low < high {
            let mid = (low + high) / 2
            let c = ByteOrder.compare(files[mid].baseName, name)
            if c == 0 { return files[mid] }
            if c < 0 { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    private func column(of uid: UID) -> Int? {
        var low = 0, high = columnUIDs.count
        while low < high {
            let mid = (low + high) / 2
            if columnUIDs[mid] < uid.rawValue { low = mid + 1 } else { high = mid }
        }
        return low < columnUIDs.count && columnUIDs[low] == uid.rawValue ? low : nil
    }

    private static func message(_ file: MaildirMessage) -> StoreMessage {
        StoreMessage(key: .name(file.baseName), flags: file.flags, date: nil, size: file.size)
    }

    /// The index of a set of flags in `flagSets` (added when new; nil when 65,536 are met).
    private mutating func setIndex(_ f: MessageFlags) -> UInt16? {
        if let i = flagSetIndex[f] { return i }
        guard flagSets.count <= Int(UInt16.max) else { return nil }
        let i = UInt16(flagSets.count)
        flagSets.append(f)
        flagSetIndex[f] = i
        return i
    }

    private func entry(_ i: Int) -> StoreMessage {
        StoreMessage(key: .uid(UID(columnUIDs[i])), flags: flagSets[Int(flags[i])], date: dates[i] == Int64.min ? nil : dates[i],
                     size: sizes[i] < 0 ? nil : sizes[i])
    }

    public struct Iterator: IteratorProtocol {
        fileprivate let listing: MessageListing
        fileprivate var tableIterator: Dictionary<MessageKey, StoreMessage>.Iterator
        fileprivate var fileIndex = 0
        fileprivate var index = 0

        public mutating func next() -> (key: MessageKey, value: StoreMessage)? {
            if let next = tableIterator.next() { return next }
            if fileIndex < listing.files.count {
                defer { fileIndex += 1 }
                let m = MessageListing.message(listing.files[fileIndex])
                return (m.key, m)
            }
            while index < listing.columnUIDs.count {
                defer { index += 1 }
                let m = listing.entry(index)
                if listing.shadowed > 0, listing.table[m.key] != nil { continue }
                return (m.key, m)
            }
            return nil
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(listing: self, tableIterator: table.makeIterator())
    }
}

extension MessageListing: ServerFlags {
    public func flags(of uid: UID) -> MessageFlags? { self[.uid(uid)]?.flags }
    public func flags(of uid: UID, agreed: MessageFlags) -> MessageFlags? { flags(of: uid) }
    public var uids: [UID] {
        var result: [UID] = []
        result.reserveCapacity(count)
        for (key, _) in self { if case .uid(let u) = key { result.append(u) } }
        return result
    }
}

extension MessageListing: LocalFlags {
    public func flags(of name: String) -> MessageFlags? { self[.name(name)]?.flags }
    public var nameOrder: NameOrder {
        // A scan alone (a pass's listing) is already in order; anything else is sorted here.
        if table.isEmpty {
            let files = files
            return NameOrder(count: files.count, name: { files[$0].baseName }, flags: { files[$0].flags })
        }
        var entries: [(name: String, flags: MessageFlags)] = []
        for (key, m) in self { if case .name(let n) = key { entries.append((n, m.flags)) } }
        return NameOrder(entries)
    }
    public var names: [String] {
        var result: [String] = []
        result.reserveCapacity(files.count)
        for (key, _) in self { if case .name(let n) = key { result.append(n) } }
        return result
    }
}
