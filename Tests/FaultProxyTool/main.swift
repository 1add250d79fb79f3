// faultproxy: the tests' FaultProxy for scripts (scripts/torture and by hand).
//
//   faultproxy --target PORT [--listen PORT] [--raw] [--seed S]
//              [--cut to-server|to-client:BYTES[:rst]] [--cut-random to-server|to-client:MAX[:rst]]
//              [--stall to-server|to-client:BYTES:SECONDS] [--latency MS] [--refuse N]
//              [--drop-reply VERB:K]
//
// Listens on 127.0.0.1 (a free port unless --listen), prints "port=N", forwards to
// 127.0.0.1:PORT until SIGTERM or SIGINT, then prints what it did ("cuts=… dropped=…").
// --raw: forward bytes without following IMAP framing (TLS, POP3); --drop-reply needs it off.
// --cut-random picks the cut offset in [0, MAX) from --seed (default 1), so a run is replayable.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import TestSupport

func fail(_ message: String) -> Never {
    let line = Array("faultproxy: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func value(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name) else { return nil }
    guard i + 1 < arguments.count else { fail("\(name) needs a value") }
    let v = arguments[i + 1]
    arguments.removeSubrange(i...(i + 1))
    return v
}
@MainActor func flag(_ name: String) -> Bool {
    guard let i = arguments.firstIndex(of: name) else { return false }
    arguments.remove(at: i)
    return true
}
func direction(_ text: Substring) -> FaultProxy.Direction {
    switch text {
    case "to-server": return .toServer
    case "to-client": return .toClient
    default: fail("a direction is to-server or to-client, not \(text)")
    }
}

guard let target = value("--target").flatMap(UInt16.init) else { fail("usage: faultproxy --target PORT [options]; see the comment in Tests/FaultProxyTool/main.swift") }
let listenPort = value("--listen").flatMap(UInt16.init) ?? 0
let raw = flag("--raw")
let seed = value("--seed").flatMap(UInt64.init) ?? 1
let cut = value("--cut"), cutRandom = value("--cut-random"), stall = value("--stall")
let latency = value("--latency").flatMap(Int.init), refuse = value("--refuse").flatMap(Int.init), drop = value("--drop-reply")
if !arguments.isEmpty { fail("unknown arguments: \(arguments.joined(separator: " "))") }

let proxy: FaultProxy
do { proxy = try FaultProxy(targetPort: target, listenPort: listenPort, imapFraming: !raw) } catch { fail("\(error)") }
for (spec, random) in [(cut, false), (cutRandom, true)] {
    guard let spec else { continue }
    let parts = spec.split(separator: ":")
    guard parts.count >= 2, let n = Int(parts[1]), n >= 0 else { fail("--cut DIRECTION:BYTES[:rst]") }
    var rng = SeededGenerator(seed: seed)
    let offset = random ? Int(rng.next() % UInt64(max(n, 1))) : n
    proxy.cut(direction(parts[0]), afterBytes: offset, reset: parts.count > 2 && parts[2] == "rst")
    print("cut=\(parts[0]):\(offset)\(parts.count > 2 ? ":rst" : "")")
}
if let stall {
    let parts = stall.split(separator: ":")
    guard parts.count == 3, let n = Int(parts[1]), let seconds = Double(parts[2]) else { fail("--stall DIRECTION:BYTES:SECONDS") }
    proxy.stall(direction(parts[0]), afterBytes: n, seconds: seconds)
}
if let latency { proxy.latencyMilliseconds = latency }
if let refuse { proxy.refuse(next: refuse) }
if let drop {
    let parts = drop.split(separator: ":")
    guard parts.count == 2, let k = Int(parts[1]), !raw else { fail("--drop-reply VERB:K (not with --raw)") }
    proxy.dropReply(to: String(parts[0]), occurrence: k)
}
print("port=\(proxy.port)")
fflush(nil)

signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
var sources: [DispatchSourceSignal] = []
for sig in [SIGTERM, SIGINT] {
    let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
    source.setEventHandler {
        proxy.stop()
        print("connections=\(proxy.connections) cuts=\(proxy.cutConnections) stalls=\(proxy.stalledConnections) refused=\(proxy.refusedConnections) dropped=\(proxy.droppedReplies) to_server=\(proxy.bytesForwarded.toServer) to_client=\(proxy.bytesForwarded.toClient)")
        fflush(nil)
        exit(0)
    }
    source.resume()
    sources.append(source)
}
dispatchMain()
