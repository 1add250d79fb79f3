#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// What changed under a Maildir root, after a quiet period.
public struct MaildirChanges: Sendable, Equatable {
    /// Folders whose messages changed (new, removed or renamed files in `cur/`/`new/`).
    public var folders: Set<[String]> = []
    /// Folders (or plain parent directories) appeared or disappeared.
    public var folderListChanged = false
    /// The kernel dropped events (queue overflow): anything may have changed.
    public var rescanEverything = false

    public init() {}
    var isEmpty: Bool { folders.isEmpty && !folderListChanged && !rescanEverything }
}

/// Watches an account's Maildir with inotify, through a Dispatch read source on its own
/// serial queue, and reports changes per folder once events have been quiet for
/// `quietPeriod` seconds (at most `10 × quietPeriod` after the first event of a burst).
///
/// It watches `cur/` and `new/` of every folder, and the directories folders can appear
/// in (the root; in `fs` every folder directory too). A queue overflow is reported as
/// `rescanEverything`, never dropped.
public final class MaildirWatcher: @unchecked Sendable {
    public let store: MaildirStore
    public let quietPeriod: Double
    private let handler: @Sendable (MaildirChanges) -> Void
    private let queue = DispatchQueue(label: "mailmirror.maildir-watcher")
    private var fd: Int32 = -1
    private var source: DispatchSourceRead?
    private var timer: DispatchSourceTimer?
    private var burstStart: DispatchTime?
    private var pending = MaildirChanges()
    private enum Target { case messages([String]), tree }
    private var targets: [Int32: Target] = [:]

    /// - Parameter handler: called on the watcher's queue with each coalesced batch.
    public init(store: MaildirStore, quietPeriod: Double = 0.5, handler: @escaping @Sendable (MaildirChanges) -> Void) {
        self.store = store
        self.quietPeriod = quietPeriod
        self.handler = handler
    }

    /// The root directory watched (device, inode), set by `start()`.
    public private(set) var rootIdentity: (dev: UInt64, ino: UInt64)?

    /// The root directory's (device, inode) now; nil when it is not there.
    public static func identity(of path: String) -> (dev: UInt64, ino: UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Whether the root is no longer the directory being watched (a disk mounted over it,
    /// the Maildir moved away and made again): the watches see nothing of the new one.
    public var rootReplaced: Bool {
        guard let watched = rootIdentity else { return false }
        guard let now = Self.identity(of: store.root) else { return true }
        return now != watched
    }

    /// Starts watching; the root must exist.
    public func start() throws(MaildirError) {
        rootIdentity = Self.identity(of: store.root)
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            throw MaildirError(operation: "watch", path: store.root, errno: errno,
                               detail: errno == EMFILE ? "too many inotify instances (raise fs.inotify.max_user_instances)" : nil)
        }
        self.fd = fd
        let setUp: Result<Void, MaildirError> = queue.sync { Result { () throws(MaildirError) in try refreshWatches() } }
        if case .failure(let error) = setUp {
            close(fd)
            self.fd = -1
            throw error
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [weak self] in self?.readEvents() }
        source.setCancelHandler { close(fd) }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.schedule(deadline: .distantFuture)
        self.source = source
        self.timer = timer
        source.resume()
        timer.resume()
    }

    /// Stops watching; no handler call starts after this returns.
    public func stop() {
        queue.sync {
            timer?.cancel()
            source?.cancel()
            timer = nil
            source = nil
            targets = [:]
        }
    }

    deinit {
        timer?.cancel()
        source?.cancel()
    }

    /// Adds watches for every folder and directory that exists now (idempotent: the kernel
    /// returns the same descriptor for a path already watched).
    ///
    /// A directory made while this runs (`mkdir -p A/cur A/new`) can gain its contents before
    /// its own watch is set, and those events are never sent: so the tree is listed again
    /// until a listing adds no new watch (a few rounds at most).
    private func refreshWatches() throws(MaildirError) {
        let treeMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)
        let messageMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR)
        for round in 0..<8 {
            var added = try add(store.root, mask: treeMask, target: .tree, required: true)
            for entry in store.listFolders() {
                let folder = store.folder(entry.name)
                if store.layout == .fs { added = try add(folder.path, mask: treeMask, target: .tree, required: false) || added }
                if entry.isMaildir {
                    for sub in ["cur", "new"] {
                        added = try add(folder.path + "/" + sub, mask: messageMask, target: .messages(entry.name), required: false) || added
                    }
                }
            }
            if !added { break }
            // Watches set after the first round may have missed what their directory got
            // meanwhile: the folders they name are reported as changed.
            if round > 0 { pending.folderListChanged = true }
        }
    }

    /// Watches `path`; returns whether the watch is new (the kernel hands back the same
    /// descriptor for a directory already watched).
    private func add(_ path: String, mask: UInt32, target: Target, required: Bool) throws(MaildirError) -> Bool {
        let wd = inotify_add_watch(fd, path, mask)
        if wd < 0 {
            if !required && (errno == ENOENT || errno == ENOTDIR) { return false }   // raced with a deletion
            throw MaildirError(operation: "watch", path: path, errno: errno,
                               detail: errno == ENOSPC ? "inotify watch limit reached (raise fs.inotify.max_user_watches)" : nil)
        }
        let isNew = targets[wd] == nil
        targets[wd] = target
        return isNew
    }

    private func readEvents() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var treeChanged = false
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= n {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, event.mask, Int(event.len))
                }
                offset += header + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    pending.rescanEverything = true
                    treeChanged = true
                    continue
                }
                if mask & UInt32(IN_IGNORED) != 0 {
                    targets[wd] = nil
                    continue
                }
                switch targets[wd] {
                case .messages(let folder):
                    pending.folders.insert(folder)
                case .tree:
                    if mask & UInt32(IN_ISDIR) != 0 {
                        pending.folderListChanged = true
                        treeChanged = true
                    }
                case nil:
                    break
                }
            }
        }
        if treeChanged { try? refreshWatches() }
        schedule()
    }

    private func schedule() {
        guard !pending.isEmpty else { return }
        let now = DispatchTime.now()
        if burstStart == nil { burstStart = now }
        let latest = burstStart! + quietPeriod * 10
        let next = now + quietPeriod
        timer?.schedule(deadline: next < latest ? next : latest)
    }

    private func flush() {
        burstStart = nil
        timer?.schedule(deadline: .distantFuture)
        guard !pending.isEmpty else { return }
        let changes = pending
        pending = MaildirChanges()
        handler(changes)
    }
}
