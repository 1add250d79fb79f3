#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Watches one directory's files for writes with inotify, through a Dispatch read source on
/// its own serial queue, and calls `handler` once events have been quiet for `quietPeriod`
/// seconds: how the daemon learns that notmuch's database changed (docs/keywords.md).
public final class DirectoryWatch: @unchecked Sendable {   // state touched on `queue` only
    public let path: String
    private let quietPeriod: Double
    private let handler: @Sendable () -> Void
    private let queue = DispatchQueue(label: "mailmirror.directory-watch")
    private var source: DispatchSourceRead?
    private var timer: DispatchSourceTimer?

    /// Files whose events do not count (a lock file every reader and writer touches).
    private let ignoring: Set<String>

    public init(path: String, quietPeriod: Double = 0.2, ignoring: Set<String> = [], handler: @escaping @Sendable () -> Void) {
        self.path = path
        self.ignoring = ignoring
        self.quietPeriod = quietPeriod
        self.handler = handler
    }

    /// Starts watching; false (with errno set) when the directory cannot be watched.
    public func start() -> Bool {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return false }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY | IN_ONLYDIR)
        guard inotify_add_watch(fd, path, mask) >= 0 else {
            let e = errno
            close(fd)
            errno = e
            return false
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let ignoring = ignoring
        source.setEventHandler { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 8192)
            var counts = false
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                // struct inotify_event: wd, mask, cookie, len (4 bytes each), then the name.
                var at = 0
                while at + 16 <= n {
                    let len = Int(buffer[at + 12]) | Int(buffer[at + 13]) << 8 | Int(buffer[at + 14]) << 16 | Int(buffer[at + 15]) << 24
                    let name = String(decoding: buffer[(at + 16)..<min(n, at + 16 + len)].prefix { $0 != 0 }, as: UTF8.self)
                    if !ignoring.contains(name) { counts = true }
                    at += 16 + len
                }
            }
            if counts { self?.timer?.schedule(deadline: .now() + (self?.quietPeriod ?? 0.2)) }
        }
        source.setCancelHandler { close(fd) }
        timer.setEventHandler { [weak self] in
            self?.timer?.schedule(deadline: .distantFuture)
            self?.handler()
        }
        timer.schedule(deadline: .distantFuture)
        self.source = source
        self.timer = timer
        source.resume()
        timer.resume()
        return true
    }

    /// Stops watching; no handler call starts after this returns.
    public func stop() {
        queue.sync {
            timer?.cancel()
            source?.cancel()
            timer = nil
            source = nil
        }
    }

    deinit {
        timer?.cancel()
        source?.cancel()
    }
}
