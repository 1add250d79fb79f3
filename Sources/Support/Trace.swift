#if canImport(Glibc)
import Glibc
#endif

/// Phase timings for profiling a pass: with `MAILMIRROR_TRACE=1` in the environment each
/// `Trace.mark` writes `trace +12.3 ms label` (milliseconds since the process started
/// tracing) to standard error. Off, a mark costs one load of a constant.
public enum Trace {
    /// Whether tracing is on (read once).
    public static let enabled: Bool = getenv("MAILMIRROR_TRACE").map { String(cString: $0) != "0" } ?? false
    private static let start: Int64 = now()

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Notes that `label` happened now.
    public static func mark(_ label: @autoclosure () -> String) {
        guard enabled else { return }
        let ms = Double((now() - start) / 10_000) / 100
        StandardStream.error.write("trace +\(ms) ms \(label())\n")
    }
}
