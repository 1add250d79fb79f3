// Push latency of a running `mailmirror daemon`: server → Maildir (APPEND, then wait for the
// file) and Maildir → server (a flag set by renaming, then wait until the server has it),
// N events each; prints p50 and p99. Used by Benchmarks/push-latency.
//
// Usage: PushLatency --port P --ca FILE --user U --password PW --maildir DIR [--events N]
#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir
import Support
import Transport

var options: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let key = args.popFirst(), let value = args.popFirst() { options[String(key.dropFirst(2))] = value }
let events = Int(options["events"] ?? "100")!
let session = try await IMAPSession.connect(host: "127.0.0.1", port: UInt16(options["port"]!)!,
                                            security: .implicitTLS(TLSClientConfiguration(verifyName: "127.0.0.1", caFile: options["ca"])))
try await session.login(username: options["user"]!, secret: options["password"]!)
let inbox = MaildirStore(root: options["maildir"]!, layout: .fs).folder(["INBOX"])

func count() -> Int { (try? inbox.scan().messages.count) ?? 0 }
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

var down: [Double] = []
for i in 0..<events {
    let before = count()
    let message = Array("From: bench@example.com\r\nSubject: push \(i)\r\nMessage-ID: <push-\(i)-\(getpid())@bench>\r\n\r\nbody \(i)\r\n".utf8)
    let start = monotonicSeconds()
    _ = try await session.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message))], to: .inbox)
    while count() <= before && monotonicSeconds() - start < 10 { usleep(1000) }
    down.append(monotonicSeconds() - start)
    usleep(50_000)
}

_ = try await session.select(.inbox)
var up: [Double] = []
// The server copy of each local file, by the Message-ID both carry.
var uidOf: [String: UID] = [:]
for m in try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .headerFields(["MESSAGE-ID"])]).messages {
    if let uid = m.uid, let header = m.sections.values.first {
        let text = String(decoding: header, as: UTF8.self)
        if let start = text.firstIndex(of: "<"), let end = text.firstIndex(of: ">") { uidOf[String(text[start...end])] = uid }
    }
}
func messageID(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 1024)
    while fgets(&line, 1024, f) != nil {
        let s = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("Message-ID: "), let a = s.firstIndex(of: "<"), let b = s.firstIndex(of: ">") { return String(s[a...b]) }
    }
    return nil
}
for file in try inbox.scan().messages.prefix(events) {
    guard let id = messageID(inbox.filePath(of: file)), let uid = uidOf[id] else { continue }
    let start = monotonicSeconds()
    _ = try inbox.setFlags(file, to: MessageFlags("F"))
    while monotonicSeconds() - start < 10 {
        let r = try await session.fetch(UIDSet([uid]), items: [.uid, .flags])
        if r.messages.contains(where: { $0.uid == uid && $0.flags?.contains(.flagged) == true }) { break }
        usleep(1000)
    }
    up.append(monotonicSeconds() - start)
    usleep(50_000)
}
await session.logout()
func ms(_ s: Double) -> String { "\(Int(s * 1000)) ms" }
print("down_p50=\(ms(percentile(down, 0.5))) down_p99=\(ms(percentile(down, 0.99))) up_p50=\(ms(percentile(up, 0.5))) up_p99=\(ms(percentile(up, 0.99)))")
