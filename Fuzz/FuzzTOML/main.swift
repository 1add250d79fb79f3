// libFuzzer target for the configuration reader: the TOML subset and the validation of a
// whole configuration (which must answer with an error, never crash or hang).
// Built by scripts/fuzz toml; a plain build replays the files given as arguments.
import CFuzz
import Config
#if canImport(Glibc)
import Glibc
#endif

func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? TOMLParser.parse(text)
    _ = try? ConfigurationLoader.parse(text: text, path: "fuzz.toml", environment: ["HOME": "/nonexistent", "XDG_STATE_HOME": "/nonexistent"])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzzBody(data, size) }

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(cfuzz_run(&argc, &argv) { fuzzBody($0, $1) })
