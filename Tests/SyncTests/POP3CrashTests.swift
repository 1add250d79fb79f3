#if canImport(Glibc)
import Glibc
#endif
import Testing
import Support
import TestSupport

/// Kills `mailmirror sync` at many instants of a POP3 drain and checks invariants 1 and 2:
/// after reruns every message is in the Maildir exactly once and the server is empty.
/// On Dovecot and Cyrus.
@Suite(.serialized) struct POP3CrashTests {
    func check(_ fixture: any MailTestServer, user: (name: String, password: String), messages: [[UInt8]], maildir: String) async throws {
        let local = localMessages(maildir)
        #expect(local.count == messages.count, "exactly one local copy of each message")
        #expect(Set(local) == Set(messages.map(lf)))
        #expect(try await fixture.serverCount(user: user) == 0, "server empty")
    }

    @Test(arguments: ServerKind.withPOP3)
    func sigkillAtSeededPointsDuringA300MessageDrain(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("crash")
        // Large enough that a drain outlasts the polling on the faster server (Cyrus).
        let messages = (0..<300).map { pop3Message($0, bodyLines: 1200) }
        try await fixture.fill(user: user, messages)
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user)
        var rng = SeededGenerator(seed: 20261127)
        // Kill points: every third run at a seeded instant early on (start-up, login, UIDL,
        // the first RETRs); the others when the Maildir reaches a seeded count (right after a
        // batch was renamed into new/, before or while its UIDLs are committed and DELE sent).
        let thresholds = (0..<12).map { _ in 1 + Int(rng.next() % 299) }.sorted()
        var kills = 0
        for (k, threshold) in thresholds.enumerated() {
            let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", config], outputPath: dir.path + "/log")
            let deadline = monotonicSeconds() + 60
            if k % 3 == 0 {
                try await Task.sleep(for: .milliseconds(1 + Int(rng.next() % 60)))
            } else {
                // Polled on a Dispatch thread: under the suite's load (three servers' tests
                // at once) a Task.sleep on the cooperative pool can oversleep the drain.
                let inbox = dir.path + "/mail/INBOX/new"
                try await runBlocking(label: "test.wait-drain") {
                    while countFiles(inbox) < threshold && !process.hasExited && monotonicSeconds() < deadline { usleep(500) }
                }
            }
            if !process.hasExited { kills += 1 }
            process.kill(SIGKILL)
            process.wait()
        }
        print("POP3 crash test: \(kills) SIGKILLs at \(thresholds); \(countFiles(dir.path + "/mail/INBOX/new")) messages local before the final run")
        #expect(kills >= 10, "the drain must have been interrupted at least 10 times")
        let final = try await runMailmirror(["sync", "--config", config])
        #expect(final.status == 0, "\(final.standardError)")
        try await check(fixture, user: user, messages: messages, maildir: dir.path + "/mail")
    }

    @Test(arguments: ServerKind.withPOP3)
    func connectionCutAfterSomeRetrievalsBeforeQuit(server: ServerKind) async throws {
        let fixture = try await TestServers.shared(server)
        let user = try fixture.makeUser("cut")
        // Enough batches (200 messages each) that the drain is still running for a good while
        // after the first one shows up, even when the suite's other tests slow down the
        // polling below: with 2 batches, a starved poller once woke after the drain had ended.
        let total = 1400
        let messages = (0..<total).map { pop3Message($0, bodyLines: 120) }
        try await fixture.fill(user: user, messages)
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = fixture.pop3Config(in: dir.path, user: user)
        let process = try SpawnedProcess([mailmirrorBinary, "sync", "--config", config])
        // Wait (bounded) until the first batch is delivered, then cut everything off.
        // Polled on a Dispatch thread, not the cooperative pool: under the suite's load a
        // Task.sleep can oversleep the whole drain.
        let inbox = dir.path + "/mail/INBOX/new"
        try await runBlocking(label: "test.wait-drain") {
            let deadline = monotonicSeconds() + 60
            while countFiles(inbox) < 1 && !process.hasExited && monotonicSeconds() < deadline { usleep(500) }
        }
        // Freeze it first, so what we count is what it had done when it was cut off.
        process.kill(SIGSTOP)
        let interrupted = !process.hasExited
        let deliveredAtCut = countFiles(dir.path + "/mail/INBOX/new")
        process.kill(SIGKILL)
        process.wait()
        #expect(interrupted, "the drain was still running when it was cut off")
        if deliveredAtCut < total {
            // QUIT comes only after the last batch: without it no DELE may take effect.
            #expect(try await fixture.serverCount(user: user) == total, "no DELE took effect without QUIT (\(deliveredAtCut) delivered at the cut)")
        }
        let rerun = try await runMailmirror(["sync", "--config", config])
        #expect(rerun.status == 0, "\(rerun.standardError)")
        try await check(fixture, user: user, messages: messages, maildir: dir.path + "/mail")
    }
}

/// Number of entries in a directory (fast enough to poll).
func countFiles(_ path: String) -> Int {
    guard let dir = opendir(path) else { return 0 }
    defer { closedir(dir) }
    var n = 0
    while readdir(dir) != nil { n += 1 }
    return max(0, n - 2)
}
