#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Watches one folder's `cur/` and `new/` (inotify) while a pass works on it, so that at the
/// end the pass can tell whether anyone else changed them — instead of listing the folder
/// again. The pass announces each change it makes (`expectRemoved`, `expectAdded`); the
/// folder is `untouchedByOthers` only if the kernel reported exactly those changes.
///
/// Any doubt (the watch could not be set up, the event queue overflowed, a directory was
/// moved or deleted, an event nobody announced) answers false, and the caller lists.
///
/// All witnesses share one inotify instance for the process: closing an instance makes the
/// kernel wait for its watches to be retired (an RCU grace period, ~20 ms here), removing
/// a watch does not.
public final class FolderChangeWitness: Sendable {
    private let id: Int
    private let watches: [Int32]

    /// Starts watching; nil when inotify is not available (no instance or watch left) or the
    /// folder is already watched by another witness.
    public init?(folder: MaildirFolder) {
        let shared = InotifyTable.shared
        guard shared.fd >= 0 else { return nil }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
        let made: (id: Int, watches: [Int32])? = shared.table.withLock { table in
            let id = table.nextID
            table.nextID += 1
            var added: [Int32] = []
            for sub in [MaildirSubdirectory.cur, .new] {
                let wd = inotify_add_watch(shared.fd, folder.path + "/" + sub.rawValue, mask)
                guard wd >= 0, table.owners[wd] == nil else {
                    for w in added { table.owners[w] = nil; inotify_rm_watch(shared.fd, w) }
                    return nil
                }
                table.owners[wd] = (id, sub)
                added.append(wd)
            }
            table.records[id] = InotifyTable.Record()
            return (id, added)
        }
        guard let made else { return nil }
        id = made.id
        watches = made.watches
    }

    deinit {
        let shared = InotifyTable.shared
        shared.table.withLock { table in
            for wd in watches {
                table.owners[wd] = nil
                inotify_rm_watch(shared.fd, wd)
            }
            table.records[id] = nil
        }
    }

    /// The pass removed `name` from `sub` (deleted it, or renamed it away).
    public func expectRemoved(_ name: String, from sub: MaildirSubdirectory) {
        expect(.init(sub: sub, name: name, added: false))
    }

    /// The pass put `name` into `sub` (a delivery, or the new name of a rename).
    public func expectAdded(_ name: String, to sub: MaildirSubdirectory) {
        expect(.init(sub: sub, name: name, added: true))
    }

    /// Notes an announced change. Every 256 announcements the kernel's queue is read, so
    /// that a pass of 100,000 deliveries neither overflows it (16,384 events by default:
    /// the witness would be spoiled and the folder listed again) nor keeps every name: an
    /// event that meets its announcement cancels it, and only the difference is kept.
    private func expect(_ change: InotifyTable.Change) {
        let shared = InotifyTable.shared
        shared.table.withLock { table in
            table.records[id]?.count(change, by: 1)
            table.announced += 1
            if table.announced % 256 == 0 { shared.drain(into: &table) }
        }
    }

    /// Announced changes not yet seen and seen changes not announced, as last read: what the
    /// witness holds (bounded by the changes in flight, not by the pass's size).
    var unsettledCount: Int { InotifyTable.shared.table.withLock { $0.records[id]?.balance.count ?? 0 } }

    /// Whether every change the kernel reported so far was announced, and every announced
    /// change happened. Can be asked again later (e.g. after waiting for a clock tick).
    public func untouchedByOthers() -> Bool {
        let shared = InotifyTable.shared
        return shared.table.withLock { table in
            shared.drain(into: &table)
            guard let record = table.records[id] else { return false }
            return !record.spoiled && record.balance.isEmpty
        }
    }
}

/// The process's inotify instance and which witness owns each watch.
private final class InotifyTable: Sendable {
    static let shared = InotifyTable()

    struct Change: Hashable { var sub: MaildirSubdirectory; var name: String; var added: Bool }
    /// Announced changes not seen yet (positive) and seen changes not announced (negative);
    /// entries that meet zero are dropped, so it holds only what is still in flight.
    struct Record {
        var balance: [Change: Int] = [:]
        var spoiled = false
        mutating func count(_ change: Change, by delta: Int) {
            let now = balance[change, default: 0] + delta
            balance[change] = now == 0 ? nil : now
        }
    }
    struct Table {
        var owners: [Int32: (id: Int, sub: MaildirSubdirectory)] = [:]
        var records: [Int: Record] = [:]
        var nextID = 0
        /// Announcements since the process started (the queue is read every 256).
        var announced = 0
    }

    let fd: Int32 = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    let table = Mutex(Table())

    /// Reads every queued event and hands each to the witness owning its watch.
    func drain(into table: inout Table) {
        let size = 16384
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<inotify_event>.alignment)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, size)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno != EAGAIN { for id in table.records.keys { table.records[id]?.spoiled = true } }
                return
            }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= n {
                let event = buffer.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = (buffer + offset + header).assumingMemoryBound(to: UInt8.self)
                let nameLength = strnlen(UnsafeRawPointer(nameStart).assumingMemoryBound(to: CChar.self), Int(event.len))
                offset += header + Int(event.len)
                let mask = Int32(bitPattern: event.mask)
                if mask & Int32(IN_Q_OVERFLOW) != 0 {   // events were lost: nobody can be sure
                    for id in table.records.keys { table.records[id]?.spoiled = true }
                    continue
                }
                guard let (id, sub) = table.owners[event.wd] else { continue }   // a watch removed meanwhile
                if mask & Int32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT) != 0 {
                    table.records[id]?.spoiled = true
                    continue
                }
                guard let name = String(validating: UnsafeBufferPointer(start: nameStart, count: nameLength), as: UTF8.self) else {
                    table.records[id]?.spoiled = true
                    continue
                }
                let added = mask & Int32(IN_CREATE | IN_MOVED_TO) != 0
                table.records[id]?.count(Change(sub: sub, name: name, added: added), by: -1)
            }
        }
    }
}
