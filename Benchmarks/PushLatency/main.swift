// Push latency of a running `mailmirror daemon`: server → Maildir (APPEND, then wait for the
// file) and Maildir → server (a flag set by renaming, then wait until the server has it),
// N events each; prints p50 and p99. Used by Benchmarks/push-latency.
//
// Usage: PushLatency --port P --ca FILE (--user U --password PW --maildir DIR | --accounts FILE) [--events N]
// With --accounts (lines "USER PASSWORD MAILDIR") the events go round the accounts in turn.
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

/// One account the events go to: its own session and its Maildir's INBOX.
struct Account {
    let session: IMAPSession
    let inbox: MaildirFolder
    var uidOf: [String: UID] = [:]
}
// `--accounts FILE`: lines of "USER PASSWORD MAILDIR"; the events go round them in turn.
var logins: [(user: String, password: String, maildir: String)] = []
if let file = options["accounts"], let f = fopen(file, "r") {
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, 4096, f) != nil {
        let words = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        if words.count == 3 { logins.append((words[0], words[1], words[2])) }
    }
    fclose(f)
} else {
    logins = [(options["user"]!, options["password"]!, options["maildir"]!)]
}
var accounts: [Account] = []
for login in logins {
    let session = try await IMAPSession.connect(host: "127.0.0.1", port: UInt16(options["port"]!)!,
                                                security: .implicitTLS(TLSClientConfiguration(verifyName: "127.0.0.1", caFile: options["ca"])))
    try await session.login(username: login.user, secret: login.password)
    accounts.append(Account(session: session, inbox: MaildirStore(root: login.maildir, layout: .fs).folder(["INBOX"])))
}

func count(_ inbox: MaildirFolder) -> Int { (try? inbox.scan().messages.count) ?? 0 }
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

var down: [Double] = []
for i in 0..<events {
    let account = accounts[i % accounts.count]
    let before = count(account.inbox)
    let message = Array("From: bench@example.com\r\nSubject: push \(i)\r\nMessage-ID: <push-\(i)-\(getpid())@bench>\r\n\r\nbody \(i)\r\n".utf8)
    let start = monotonicSeconds()
    _ = try await account.session.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message))], to: .inbox)
    while count(account.inbox) <= before && monotonicSeconds() - start < 10 { usleep(1000) }
    down.append(monotonicSeconds() - start)
    usleep(50_000)
}

// The server copy of each local file, by the Message-ID both carry.
for index in accounts.indices {
    let session = accounts[index].session
    _ = try await session.select(.inbox)
    for m in try await session.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .headerFields(["MESSAGE-ID"])]).messages {
        if let uid = m.uid, let header = m.sections.values.first {
            let text = String(decoding: header, as: UTF8.self)
            if let start = text.firstIndex(of: "<"), let end = text.firstIndex(of: ">") { accounts[index].uidOf[String(text[start...end])] = uid }
        }
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
var up: [Double] = []
var files = try accounts.map { try $0.inbox.scan().messages }
for i in 0..<events {
    let index = i % accounts.count
    let account = accounts[index]
    guard let file = files[index].popLast(), let id = messageID(account.inbox.filePath(of: file)), let uid = account.uidOf[id] else { continue }
    let start = monotonicSeconds()
    _ = try account.inbox.setFlags(file, to: MessageFlags("F"))
    while monotonicSeconds() - start < 10 {
        let r = try await account.session.fetch(UIDSet([uid]), items: [.uid, .flags])
        if r.messages.contains(where: { $0.uid == uid && $0.flags?.contains(.flagged) == true }) { break }
        usleep(1000)
    }
    up.append(monotonicSeconds() - start)
    usleep(50_000)
}
for account in accounts { await account.session.logout() }
func ms(_ s: Double) -> String { "\(Int(s * 1000)) ms" }
print("down_p50=\(ms(percentile(down, 0.5))) down_p99=\(ms(percentile(down, 0.99))) up_p50=\(ms(percentile(up, 0.5))) up_p99=\(ms(percentile(up, 0.99)))")
