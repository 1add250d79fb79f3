#if canImport(Glibc)
import Glibc
#endif
import Testing
import Synchronization
@testable import Maildir
import TestSupport

/// Collects what a watcher reports, for tests that wait with a deadline.
final class ChangeLog: Sendable {
    private let changes = Mutex<[MaildirChanges]>([])
    func append(_ c: MaildirChanges) { changes.withLock { $0.append(c) } }
    var all: [MaildirChanges] { changes.withLock { $0 } }

    /// Waits (at most `timeout` s, checking every 20 ms) until `condition` holds for the
    /// changes reported so far.
    func wait(timeout: Double = 10, until condition: ([MaildirChanges]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            if condition(all) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(all)
    }
}

@Suite(.serialized) struct WatcherTests {
    @Test func seesRenamesNewFilesDeletionsAndNewFolders() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: .fs)
        let inbox = try store.createFolder(["INBOX"])
        let archive = try store.createFolder(["Archive"])
        let w = try inbox.beginDelivery()
        try w.write(Array("x\n".utf8))
        let m = try inbox.deliver(w, flags: MessageFlags())

        let log = ChangeLog()
        let watcher = MaildirWatcher(store: store, quietPeriod: 0.1) { log.append($0) }
        try watcher.start()
        defer { watcher.stop() }

        // A reader marks the message seen: a rename by another process.
        let renamed = try await runCommand(["mv", inbox.filePath(of: m), inbox.path + "/cur/" + m.baseName + ":2,S"])
        #expect(renamed.status == 0)
        #expect(await log.wait { $0.contains { $0.folders.contains(["INBOX"]) } })

        // A new file in another folder, then a deletion there.
        writeFile(archive.path + "/new/123.x.host", "y\n")
        #expect(await log.wait { $0.contains { $0.folders.contains(["Archive"]) } })
        let before = log.all.count
        unlink(archive.path + "/new/123.x.host")
        #expect(await log.wait { $0.count > before && $0.last!.folders.contains(["Archive"]) })

        // A new folder made by a reader, then a message in it.
        let made = try await runCommand(["mkdir", "-p", dir.path + "/Lists/swift/cur", dir.path + "/Lists/swift/new", dir.path + "/Lists/swift/tmp"])
        #expect(made.status == 0)
        #expect(await log.wait { $0.contains { $0.folderListChanged } })
        writeFile(dir.path + "/Lists/swift/new/1.x.host", "z\n")
        #expect(await log.wait { $0.contains { $0.folders.contains(["Lists", "swift"]) } })
    }

    /// Folders made in a burst by a reader (`mkdir -p A/B/cur A/B/new …`): each gets its
    /// watches even when its directories appeared before the watch of their parent was set.
    @Test func foldersMadeInABurstAreAllWatched() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: .fs)
        _ = try store.createFolder(["INBOX"])
        let log = ChangeLog()
        let watcher = MaildirWatcher(store: store, quietPeriod: 0.1) { log.append($0) }
        try watcher.start()
        defer { watcher.stop() }
        let made = try await runCommand(["sh", "-c", "cd '\(dir.path)' && for i in $(seq 1 30); do mkdir -p F$i/sub/cur F$i/sub/new F$i/sub/tmp; done"])
        #expect(made.status == 0)
        #expect(await log.wait { $0.contains { $0.folderListChanged } })
        try await Task.sleep(for: .milliseconds(300))   // the burst's own events are over
        for i in 1...30 { writeFile(dir.path + "/F\(i)/sub/new/1.x.host", "z\n") }
        let all = Set((1...30).map { ["F\($0)", "sub"] })
        let seen = await log.wait { changes in all.isSubset(of: changes.reduce(into: Set<[String]>()) { $0.formUnion($1.folders) }) }
        let missing = all.subtracting(log.all.reduce(into: Set<[String]>()) { $0.formUnion($1.folders) })
        #expect(seen, "not watched: \(missing.sorted { $0.lexicographicallyPrecedes($1) })")
    }

    @Test func aBurstIsCoalesced() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: .maildirPlusPlus)
        let inbox = try store.createFolder(["INBOX"])
        let log = ChangeLog()
        let watcher = MaildirWatcher(store: store, quietPeriod: 0.3) { log.append($0) }
        try watcher.start()
        defer { watcher.stop() }
        for i in 0..<200 { writeFile(inbox.path + "/new/\(i).x.host", "m\n") }
        #expect(await log.wait { !$0.isEmpty })
        try await Task.sleep(for: .milliseconds(500))
        #expect(log.all.count <= 2)
        #expect(log.all.allSatisfy { $0.folders == [["INBOX"]] })
    }
}
