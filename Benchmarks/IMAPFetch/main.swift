// Fetches every message of one mailbox through IMAPSession into Maildir files (streamed,
// pipelined, batched fsync) and prints what it did. Used by Benchmarks/imap-fetch and by
// the test that checks a 25 MB message is fetched with bounded memory.
//
// Usage: IMAPFetch --port P --ca FILE --user U --password PW --out DIR
//                  [--host H] [--mailbox NAME] [--batch N] [--parallel N]
#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Maildir
import Support
import Transport

var options: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let key = args.popFirst() {
    guard key.hasPrefix("--"), let value = args.popFirst() else { fatalError("usage: see the header of Benchmarks/IMAPFetch/main.swift") }
    options[String(key.dropFirst(2))] = value
}
let host = options["host"] ?? "127.0.0.1"
let port = UInt16(options["port"]!)!
let batchSize = Int(options["batch"] ?? "250")!
let parallel = Int(options["parallel"] ?? "4")!

/// Writes each streamed body into `tmp/`, then commits the command's messages in one batch.
final class MaildirSink: FetchBodySink, @unchecked Sendable {
    let folder: MaildirFolder
    let batch: DeliveryBatch
    var writer: MessageWriter?
    var bytes = 0
    init(folder: MaildirFolder) { self.folder = folder; batch = DeliveryBatch(folder: folder) }
    func begin(_ info: StreamInfo) throws { writer = try folder.beginDelivery() }
    func write(_ chunk: [UInt8]) throws { bytes += chunk.count; try writer!.writeWireBytes(chunk) }
    func end() throws { try batch.add(writer!, flags: MessageFlags()); writer = nil }
}

/// Counts bytes and drops them: the session's cost without the disk's.
final class DiscardSink: FetchBodySink, @unchecked Sendable {
    var bytes = 0
    var messages = 0
    func begin(_ info: StreamInfo) throws {}
    func write(_ chunk: [UInt8]) throws { bytes += chunk.count }
    func end() throws { messages += 1 }
}
let discard = options["discard"] == "1"

func peakRSSKilobytes() -> Int { statusField("VmHWM:") }
func currentRSSKilobytes() -> Int { statusField("VmRSS:") }

func statusField(_ field: String) -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let s = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix(field) { return Int(s.split(separator: " ").dropFirst().first ?? "0") ?? 0 }
    }
    return 0
}

let start = monotonicSeconds()
let store = MaildirStore(root: options["out"]!, layout: .fs)
let folder = try store.createFolder(["INBOX"])
let session = try await IMAPSession.connect(host: host, port: port,
                                            security: .implicitTLS(TLSClientConfiguration(verifyName: host, caFile: options["ca"])))
try await session.login(username: options["user"]!, secret: options["password"]!)
let mailbox = MailboxName(options["mailbox"] ?? "INBOX")
_ = try await session.select(mailbox, readOnly: true)
let uids = Array(try await session.search([.all]))
let rssBeforeFetch = currentRSSKilobytes()
let batches = stride(from: 0, to: uids.count, by: batchSize).map { UIDSet(uids[$0..<min($0 + batchSize, uids.count)]) }

var fetched = 0
var bytes = 0
try await withThrowingTaskGroup(of: (Int, Int).self) { group in
    var next = 0
    func launch() {
        guard next < batches.count else { return }
        let set = batches[next]
        next += 1
        group.addTask {
            if discard {
                let sink = DiscardSink()
                _ = try await session.fetchMessages(set, sink: sink)
                return (sink.messages, sink.bytes)
            }
            let sink = MaildirSink(folder: folder)
            let messages = try await session.fetchMessages(set, sink: sink)
            let delivered = try sink.batch.commit()
            precondition(delivered.count == messages.count, "every fetched message was delivered")
            return (delivered.count, sink.bytes)
        }
    }
    for _ in 0..<parallel { launch() }
    while let (n, b) = try await group.next() {
        fetched += n
        bytes += b
        launch()
    }
}
await session.logout()
let seconds = monotonicSeconds() - start
print("messages=\(fetched) bytes=\(bytes) seconds=\((seconds * 1000).rounded() / 1000) peak_rss_kb=\(peakRSSKilobytes()) rss_before_fetch_kb=\(rssBeforeFetch)")
