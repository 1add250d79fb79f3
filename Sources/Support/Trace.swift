#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// Phase timings for profiling a pass: with `MAILMIRROR_TRACE=1` in the environment each
/// `Trace.mark` writes `trace +12.3 ms heap 1.2 MB label` (milliseconds since the process
/// started tracing, and the bytes malloc has handed out and not got back) to standard error.
/// Off, a mark costs one load of a constant.
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
        guard enabled else { return Footprint.sample() }
        let inUse = Int(csupport_heap_in_use())   // one read of malloc's figures for both
        Footprint.sample(inUse: inUse)
        let ms = Double((now() - start) / 10_000) / 100
        let heap = Double(inUse / 10_000) / 100
        StandardStream.error.write("trace +\(ms) ms heap \(heap) MB \(label())\n")
    }
}
