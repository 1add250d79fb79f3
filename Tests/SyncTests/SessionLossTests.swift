import Testing
import IMAP
import Maildir
import Support
import Sync
import TestSupport

@Suite struct SessionLossTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// The only session is lost in the middle of a pass over several folders (while the next
    /// folder may already be taken and its SELECT sent): the pass ends — no wait on a folder
    /// nobody will sync — with the folders it could not finish reported as failed, and the
    /// next pass brings everything, each message once.
    @Test func sessionLostMidPassEndsThePassAndTheNextOneFinishes() async throws {
        let a = try SyncAccount(fixture, extra: "connections = 1")
        defer { a.dir.remove() }
        let folders = ["INBOX", "Archive", "Drafts", "Lists/swift", "Lists/rust", "Projects/one"]
        for folder in folders { try await a.append(folder, [mail("\(folder)-0")]) }
        _ = try await a.sync()
        for folder in folders { try await a.append(folder, (1...24).map { mail("\(folder)-\($0)", lines: 2_000) }) }

        let store = MaildirStore(root: a.maildir, layout: .fs)
        func localCount(_ folder: String) -> Int {
            (try? store.folder(folder.split(separator: "/").map(String.init)).scan().messages.count) ?? 0
        }
        var sync = try a.accountSync()
        let session = try await sync.connect(secret: a.user.password)
        sync.session = session
        // Cut the connection once the first folder's downloads have landed.
        let cut = Task {
            let deadline = monotonicSeconds() + 60
            while monotonicSeconds() < deadline, !folders.contains(where: { localCount($0) > 1 }) {
                try? await Task.sleep(for: .milliseconds(1))
            }
            await session.close()
        }
        let started = monotonicSeconds()
        let report = try await sync.run()   // a report with failed folders, not a throw
        let took = monotonicSeconds() - started
        await cut.value
        #expect(took < 60, "the pass ended")
        // Every folder is reported: synced, or failed (also those no session was left for).
        #expect(Set(report.folders.map { $0.folder.joined(separator: "/") }) == Set(folders), "\(report.folders)")
        let finished = report.folders.filter { $0.error == nil && $0.downloaded == 24 }
        #expect(finished.count < folders.count, "the cut came before the last folder: \(report.folders)")
        #expect(report.folders.allSatisfy { $0.error != nil || $0.downloaded == 24 })

        _ = try await a.sync()
        for folder in folders {
            #expect(localCount(folder) == 25, "\(folder): each message once")
            let ids = a.localMessages(folder).compactMap { message in
                String(decoding: message.body.prefix(400), as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Message-ID:") }
            }
            #expect(Set(ids).count == 25, "\(folder): no duplicate")
            #expect(try await a.serverMessages(folder).count == 25, "\(folder): nothing uploaded back")
        }
    }
}
