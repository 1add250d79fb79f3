// libFuzzer target for what `mailmirror init` reads from the network: autoconfig XML
// documents and DNS answers (SRV, MX). The first byte picks the reader.
// Built by scripts/fuzz autoconfig; a plain build replays the files given as arguments.
import CFuzz
import Autoconfig
#if canImport(Glibc)
import Glibc
#endif

func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    if first & 1 == 0 {
        _ = AutoconfigDocument.incomingServers(String(decoding: rest, as: UTF8.self), email: "user@example.org")
    } else {
        _ = DNSMessage.parse(rest)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzzBody(data, size) }

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(cfuzz_run(&argc, &argv) { fuzzBody($0, $1) })
