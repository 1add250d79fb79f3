// libFuzzer target for the POP3 response parsers: status lines and the dot-unstuffing
// multi-line decoder (whose output must not depend on how the input was split).
// Built by scripts/fuzz-pop3; a plain build replays the files given as arguments.
import CFuzz
import POP3
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input (a function: under libFuzzer this file's top-level code never runs).
func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    for line in bytes.split(separator: 10, omittingEmptySubsequences: false) { _ = POP3Status(line: Array(line)) }
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % bytes.count
    var whole = POP3MultilineDecoder(maxLineLength: 4096)
    var parts = POP3MultilineDecoder(maxLineLength: 4096)
    let once = try? whole.decode(bytes)
    var pieces: [UInt8] = []
    var consumed = 0
    var failed = false
    do {
        let a = try parts.decode(Array(bytes[..<split]))
        pieces += a.output
        consumed += a.consumed
        if !parts.isFinished {
            let b = try parts.decode(Array(bytes[split...]))
            pieces += b.output
            consumed += b.consumed
        }
    } catch { failed = true }
    if let once, !failed {
        precondition(once.output == pieces && once.consumed == consumed, "decoding depends on the split point")
        precondition(whole.isFinished == parts.isFinished)
    }
    return 0
}

/// libFuzzer's entry point (see FuzzIMAP).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBody(data, size)
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(cfuzz_run(&argc, &argv) { fuzzBody($0, $1) })
