#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on standard error, redrawn in place — only when standard
/// error is a terminal (never in logs or under systemd). Thread-safe; cheap when off.
public final class ProgressLine: @unchecked Sendable {
    /// Whether progress is shown at all.
    public let enabled: Bool
    private var mutex = pthread_mutex_t()
    private var lastDraw = 0.0
    private var drawn = false

    public init(enabled: Bool? = nil) {
        self.enabled = enabled ?? (isatty(2) == 1 && getenv("JOURNAL_STREAM") == nil)
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Shows `label: done/total` with a bar, at most ten times a second.
    public func update(_ label: String, done: Int, total: Int) {
        guard enabled, total > 0 else { return }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let now = monotonicSeconds()
        guard done >= total || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let width = 24
        let filled = min(width, done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        StandardStream.error.write("\r\u{1B}[K\(label) [\(bar)] \(done)/\(total)")
        drawn = true
    }

    /// Clears the line (before normal output continues).
    public func clear() {
        guard enabled else { return }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if drawn { StandardStream.error.write("\r\u{1B}[K") }
        drawn = false
    }
}
