#if canImport(Glibc)
import Glibc
#endif
import CSupport
import Synchronization

/// What a process's memory is made of, for `sync --stats` and the benchmarks (docs/scale.md):
/// the peak resident set, and the resident pages now by kind — the binary's own pages, the
/// shared libraries', and anonymous memory (malloc's heap and the threads' stacks) — plus
/// the most malloc had handed out at any `Trace.mark` (sampled only while `sampling` is on).
public enum Footprint {
    private static let sampling = Atomic<Bool>(false)
    private static let heapPeak = Atomic<Int>(0)
    /// The resident pages when the heap last grew by a tenth over its peak (malloc gives
    /// memory back by the end, so the pages at exit say little about the peak).
    private static let atPeak = Mutex<Resident?>(nil)

    /// Starts sampling the heap at every `Trace.mark` (about 50 µs each).
    public static func startSampling() {
        sampling.store(true, ordering: .relaxed)
        sample()
    }

    /// Notes the heap now (a no-op unless sampling); `inUse`, when the caller read it already.
    public static func sample(inUse: Int? = nil) {
        guard sampling.load(ordering: .relaxed) else { return }
        let now = inUse ?? Int(csupport_heap_in_use())
        var seen = heapPeak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = heapPeak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged {
                if now > seen + seen / 10 + 256 * 1024, let r = resident() { atPeak.withLock { $0 = r } }
                break
            }
            seen = original
        }
    }

    /// Resident kilobytes by kind, from `/proc/self/smaps`.
    public struct Resident: Sendable, Equatable {
        public var binary = 0, libraries = 0, anonymous = 0, stacks = 0, other = 0
        public var total: Int { binary + libraries + anonymous + stacks + other }
    }

    /// The resident pages now, by kind (nil where /proc is not mounted).
    public static func resident() -> Resident? {
        guard let text = readProc("/proc/self/smaps") else { return nil }
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        let exePath = n > 0 ? String(decoding: exe[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        var result = Resident()
        var kind = 4
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Rss:") {
                let kb = Int(line.dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
                switch kind {
                case 0: result.binary += kb
                case 1: result.libraries += kb
                case 2: result.anonymous += kb
                case 3: result.stacks += kb
                default: result.other += kb
                }
            } else if let first = line.first, first.isHexDigit, line.contains("-") {
                // A mapping: "start-end perms offset dev inode [path]".
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                let path = fields.count > 5 ? String(fields[5].drop(while: { $0 == " " })) : ""
                kind = path.isEmpty || path == "[heap]" ? 2
                    : path == "[stack]" ? 3
                    : path == exePath ? 0
                    : path.contains(".so") ? 1 : 4
            }
        }
        return result
    }

    /// `VmHWM`: the most the process ever had resident, in kilobytes.
    public static func peakResident() -> Int? {
        guard let text = readProc("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// One line: `memory: peak 31.0 MB resident; at exit binary 6.2 MB, libraries 3.1 MB, …`.
    public static func report() -> String {
        func mb(_ kb: Int) -> String { "\(Double(kb * 10 / 1024) / 10) MB" }
        var parts: [String] = []
        if let peak = peakResident() { parts.append("peak \(mb(peak)) resident") }
        if let r = atPeak.withLock({ $0 }) {
            parts.append("resident when the heap peaked: binary \(mb(r.binary)), libraries \(mb(r.libraries)), heap and other anonymous \(mb(r.anonymous))")
        }
        if let r = resident() {
            parts.append("at exit binary \(mb(r.binary)), libraries \(mb(r.libraries)), heap and other anonymous \(mb(r.anonymous)), stack \(mb(r.stacks)), other \(mb(r.other))")
        }
        if sampling.load(ordering: .relaxed) {
            sample()
            parts.append("malloc in use at most \(mb(heapPeak.load(ordering: .relaxed) / 1024)), now \(mb(Int(csupport_heap_in_use()) / 1024))")
        }
        return "memory: " + parts.joined(separator: "; ")
    }

    private static func readProc(_ path: String) -> String? { try? TextFile.read(path) }
}
