// libFuzzer target for the IMAP response parser and the small IMAP grammars (modified
// UTF-7, UID sets, dates, base64). Built by scripts/fuzz-imap with -sanitize=fuzzer,address;
// a plain build replays the files given as arguments.
import CFuzz
import IMAP
import Support
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input. A function, not a global closure: under libFuzzer this file's top-level
/// code never runs, so globals it would initialise do not exist.
func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    var options = ParserOptions()
    options.maxLineLength = 4096
    options.maxInlineLiteralSize = 2048
    options.maxResponseSize = 16384
    options.maxLiteralSize = 1 << 20
    options.maxNesting = 50
    var parser = ResponseParser(options: options)
    // Split the input at a point chosen by its first byte: the result must not depend on it,
    // and every split exercises the incremental paths.
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % bytes.count
    do {
        let first = try parser.feed(Array(bytes[..<split]))
        let second = try parser.feed(Array(bytes[split...]))
        var whole = ResponseParser(options: options)
        let once = try whole.feed(bytes)
        precondition(merge(first + second) == merge(once), "parse result depends on the split point")
    } catch {}
    _ = ModifiedUTF7.decode(bytes)
    if let text = String(validating: bytes, as: UTF8.self) {
        _ = UIDSet(parsing: text)
        if let decoded = ModifiedUTF7.decode(Array(ModifiedUTF7.encode(text))) { precondition(decoded == text, "mUTF-7 round trip") }
    }
    _ = IMAPDate.parse(bytes)
    _ = Base64.decode(bytes)
    return 0
}

/// Stream chunks merged, so event lists compare equal however the input was split.
func merge(_ events: [ParserEvent]) -> [ParserEvent] {
    var out: [ParserEvent] = []
    for e in events {
        if case .streamBytes(let b) = e {
            if b.isEmpty { continue }
            if case .streamBytes(let a)? = out.last { out[out.count - 1] = .streamBytes(a + b); continue }
        }
        out.append(e)
    }
    return out
}

/// libFuzzer's entry point: with -sanitize=fuzzer the linker takes libFuzzer's `main`
/// (SwiftPM renames ours), which calls this for every input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBody(data, size)
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(cfuzz_run(&argc, &argv) { fuzzBody($0, $1) })
