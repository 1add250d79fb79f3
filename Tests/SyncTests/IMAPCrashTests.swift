#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// Kills `mailmirror sync` at seeded instants of an initial pull and of a push, reruns it
/// to completion, and checks invariants 1 and 2: every message exactly once on each side,
/// with the right flags.
@Suite(.serialized) struct IMAPCrashTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    func messageID(_ body: [UInt8]) -> String? {
        let text = String(decoding: body.prefix(2000), as: UTF8.self)
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) where line.hasPrefix("Message-ID: <") {
            return String(line.dropFirst("Message-ID: <".count).prefix { $0 != ">" && $0 != "@" })
        }
        return nil
    }

    @Test func sigkillDuringAnInitialPullOf1000Messages() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        let messages = (0..<1000).map { mail("pull\($0)", lines: 20) }
        try await a.append("INBOX", messages)
        // Flags to carry: every 3rd \Seen, every 5th \Flagged.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.store(UIDSet((1...1000).filter { $0 % 3 == 0 }.map { UID(UInt32($0)) }), .add, [.seen])
        try await s.store(UIDSet((1...1000).filter { $0 % 5 == 0 }.map { UID(UInt32($0)) }), .add, [.flagged])
        await s.logout()

        var rng = SeededGenerator(seed: 1127)
        let thresholds = (0..<28).map { _ in 1 + Int(rng.next() % 999) }.sorted()
        var kills = 0
        for (k, threshold) in thresholds.enumerated() {
            let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", a.config], outputPath: a.dir.path + "/log")
            let deadline = monotonicSeconds() + 60
            if k % 4 == 0 {
                try await Task.sleep(for: .milliseconds(1 + Int(rng.next() % 80)))
            } else {
                while countFiles(a.maildir + "/INBOX/new") + countFiles(a.maildir + "/INBOX/cur") < threshold
                        && !process.hasExited && monotonicSeconds() < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            if !process.hasExited { kills += 1 }
            process.kill(SIGKILL)
            process.wait()
        }
        print("IMAP pull crash test: \(kills) SIGKILLs; \(a.localMessages("INBOX").count) local before the final run")
        #expect(kills >= 20)
        let final = try await a.sync()
        #expect(final.status == 0, "\(final.standardOutput)\(final.standardError)")
        let local = a.localMessages("INBOX")
        var seen: [String: MessageFlags] = [:]
        for m in local {
            guard let id = messageID(m.body) else { Issue.record("a local file without Message-ID"); continue }
            #expect(seen[id] == nil, "\(id) exists twice locally")
            seen[id] = m.flags
        }
        #expect(seen.count == 1000 && local.count == 1000)
        for i in 0..<1000 {
            var expected = ""
            if (i + 1) % 5 == 0 { expected += "F" }
            if (i + 1) % 3 == 0 { expected += "S" }
            #expect(seen["pull\(i)"] == MessageFlags(expected), "flags of pull\(i)")
        }
        #expect(try await a.serverMessages("INBOX").count == 1000, "the server is untouched")
        let again = try await a.sync()
        #expect(!again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")
    }

    @Test func sigkillDuringAPushOf120Messages() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        for i in 0..<120 { try a.deliverLocally("INBOX", mail("push\(i)", lines: 40), flags: i % 2 == 0 ? "S" : "") }
        let watcher = try await a.session()
        var rng = SeededGenerator(seed: 2026)
        let thresholds = (0..<28).map { _ in 1 + Int(rng.next() % 119) }.sorted()
        var kills = 0
        for (k, threshold) in thresholds.enumerated() {
            let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", a.config], outputPath: a.dir.path + "/log")
            let deadline = monotonicSeconds() + 60
            if k % 4 == 0 {
                try await Task.sleep(for: .milliseconds(1 + Int(rng.next() % 80)))
            } else {
                while (try await watcher.status(.inbox, items: [.messages]).messages ?? 0) < threshold
                        && !process.hasExited && monotonicSeconds() < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            if !process.hasExited { kills += 1 }
            process.kill(SIGKILL)
            process.wait()
        }
        await watcher.logout()
        print("IMAP push crash test: \(kills) SIGKILLs")
        #expect(kills >= 20)
        let final = try await a.sync()
        #expect(final.status == 0, "\(final.standardOutput)\(final.standardError)")
        let server = try await a.serverMessages("INBOX")
        var count: [String: Int] = [:]
        for (_, m) in server {
            guard let id = messageID(m.body) else { continue }
            count[id, default: 0] += 1
            let i = Int(id.dropFirst(4))!
            #expect(m.flags == (i % 2 == 0 ? [.seen] : []), "flags of \(id) on the server")
        }
        #expect(server.count == 120, "exactly one copy of each message on the server")
        let twice = count.filter { $0.value > 1 }.map(\.key).sorted()
        let missing = (0..<120).map { "push\($0)" }.filter { count[$0] == nil }
        #expect(count.count == 120 && twice.isEmpty, "duplicates: \(twice), missing: \(missing), unparsed: \(server.count - count.values.reduce(0, +))")
        #expect(a.localMessages("INBOX").count == 120, "and still one locally")
        let again = try await a.sync()
        #expect(!again.standardOutput.contains("work/"), "converged: \(again.standardOutput)")
    }
}
