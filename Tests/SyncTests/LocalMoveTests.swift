#if canImport(Glibc)
import Glibc
#endif
import Testing
import Config
import IMAP
import Support
import State
import Sync
import Maildir
import TestSupport

@Suite struct LocalMoveTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// A message moved in the Maildir (renamed from one folder's cur/ into another's, as mutt
    /// does) is moved on the server with UID MOVE: no APPEND, no re-download, no duplicate,
    /// flags kept, and the next pass has nothing to do.
    @Test func localMoveBecomesServerMove() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("m1"), mail("m2"), mail("m3")], flags: [.seen])
        try await a.append("Archive", [mail("a1")])
        _ = try await a.sync()
        _ = try await a.sync()

        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"]), archive = store.folder(["Archive"])
        let moving = try inbox.scan().messages.first { readBytes(inbox.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("m2@") } ?? false }!
        let target = archive.path + "/cur/" + moving.fileName
        #expect(rename(inbox.filePath(of: moving), target) == 0)

        let (report, counts) = try await a.countedPass()
        #expect(report.movedOnServer == 1)
        #expect(counts["APPEND"] == nil, "\(counts)")
        #expect(report.folders.reduce(0) { $0 + $1.downloaded } == 0)
        #expect(report.folders.reduce(0) { $0 + $1.uploaded } == 0)

        let serverInbox = try await a.serverMessages("INBOX")
        let serverArchive = try await a.serverMessages("Archive")
        func has(_ m: [UInt32: (flags: Set<Flag>, body: [UInt8])], _ id: String) -> Int {
            m.values.filter { String(decoding: $0.body, as: UTF8.self).contains("<\(id)@") }.count
        }
        #expect(serverInbox.count == 2 && has(serverInbox, "m2") == 0)
        #expect(serverArchive.count == 2 && has(serverArchive, "m2") == 1)
        #expect(serverArchive.values.first { String(decoding: $0.body, as: UTF8.self).contains("<m2@") }?.flags.contains(.seen) == true)
        #expect(a.localMessages("INBOX").count == 2)
        #expect(a.localMessages("Archive").count == 2)

        // The next pass has nothing left to do on either side.
        let next = try a.accountSync()
        let again = try await next.run()
        #expect(again.movedOnServer == 0)
        #expect(again.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.error == nil }, "\(again.folders)")
        #expect(try await a.serverMessages("Archive").count == 2)
        #expect(a.localMessages("Archive").count == 2)
        #expect(a.localMessages("INBOX").count == 2)
    }
}

extension LocalMoveTests {
    /// A crash between the server's MOVE and the state update: the journaled move is found
    /// again in the target by its Message-ID, the pair follows it, and nothing is uploaded,
    /// downloaded or duplicated on either side.
    @Test func moveInterruptedAfterServerMoveIsRecovered() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("r1"), mail("r2")])
        try await a.append("Archive", [mail("r3")])
        _ = try await a.sync()
        _ = try await a.sync()

        // The local move, as a mail reader makes it.
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"]), archive = store.folder(["Archive"])
        let moving = try inbox.scan().messages.first { readBytes(inbox.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("<r2@") } ?? false }!
        #expect(rename(inbox.filePath(of: moving), archive.path + "/cur/" + moving.fileName) == 0)

        // What the interrupted pass got done: the journal entry, then the server's MOVE.
        let config = try ConfigurationLoader.load(path: a.config)
        let state = try StateStore.open(directory: config.general.stateDirectory)
        let account = try state.account(named: config.accounts[0].name, protocol: "imap")
        let folders = try state.folders(of: account)
        let from = folders.first { $0.localName == "INBOX" }!, to = folders.first { $0.localName == "Archive" }!
        let pair = try state.pairs(in: from.id).first { $0.localName == moving.baseName }!
        let s = try await a.session()
        let uidNext = try await s.status(MailboxName("Archive"), items: [.uidNext]).uidNext
        _ = try state.addJournalEntry(JournalEntry(account: account, folder: from.id, kind: .move, uid: pair.uid,
                                                   localName: pair.localName, uidNextBefore: uidNext, flags: pair.flags,
                                                   targetFolder: to.id, detail: Array("r2@mailmirror.test".utf8), created: 0))
        _ = try await s.select(.inbox)
        _ = try await s.move(UIDSet([pair.uid!]), to: MailboxName("Archive"))
        await s.logout()

        let sync = try a.accountSync()
        let report = try await sync.run()
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.error == nil }, "\(report.folders)")
        let serverArchive = try await a.serverMessages("Archive")
        #expect(serverArchive.count == 2)
        #expect(serverArchive.values.filter { String(decoding: $0.body, as: UTF8.self).contains("<r2@") }.count == 1)
        #expect(try await a.serverMessages("INBOX").count == 1)
        #expect(a.localMessages("INBOX").count == 1)
        #expect(a.localMessages("Archive").count == 2)
    }
}

extension LocalMoveTests {
    /// A message moved on the server (UID MOVE by another client) is renamed in the Maildir:
    /// the same file, now in the target folder with the server's flags; nothing downloaded,
    /// nothing duplicated, and the next pass has nothing to do.
    @Test func serverMoveBecomesLocalRename() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("s1"), mail("s2"), mail("s3")])
        try await a.append("Archive", [mail("s4")])
        _ = try await a.sync()
        _ = try await a.sync()
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"])
        let original = try inbox.scan().messages.first { readBytes(inbox.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("<s2@") } ?? false }!

        // Another client moves s2 (UID 2) to Archive and flags it there.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        let assigned = try await s.move(UIDSet([UID(2)]), to: MailboxName("Archive"))
        _ = try await s.select(MailboxName("Archive"))
        try await s.store(UIDSet(Array(assigned!.destination)), .add, [.flagged])
        await s.logout()

        let sync = try a.accountSync()
        let report = try await sync.run()
        #expect(report.movedLocally == 1)
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.error == nil }, "\(report.folders)")
        let archive = a.localMessages("Archive")
        #expect(archive.count == 2 && a.localMessages("INBOX").count == 2)
        let moved = archive.first { String(decoding: $0.body, as: UTF8.self).contains("<s2@") }
        #expect(moved?.name.hasPrefix(original.baseName) == true, "the same file, renamed")
        #expect(moved?.flags.contains(MessageFlags.flagged) == true)
        #expect(try await a.serverMessages("Archive").count == 2)
        #expect(try await a.serverMessages("INBOX").count == 2)

        let again = try await sync.run()
        #expect(again.movedLocally == 0)
        #expect(again.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.deleted == 0 && $0.error == nil }, "\(again.folders)")
    }

    /// Another client makes a folder and moves a message into it: the new local folder gets
    /// the same file, renamed, not a download (plus a deletion in the source).
    @Test func serverMoveIntoANewFolderBecomesLocalRename() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("n1"), mail("n2")])
        _ = try await a.sync()
        _ = try await a.sync()
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        let original = try inbox.scan().messages.first { readBytes(inbox.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("<n2@") } ?? false }!
        let s = try await a.session()
        try await s.create(MailboxName("Receipts"))
        _ = try await s.select(.inbox)
        _ = try await s.move(UIDSet([UID(2)]), to: MailboxName("Receipts"))
        await s.logout()

        let report = try await a.accountSync().run()
        #expect(report.movedLocally == 1)
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.error == nil }, "\(report.folders)")
        #expect(a.localMessages("Receipts").map(\.name).allSatisfy { $0.hasPrefix(original.baseName) })
        #expect(ids(a.localMessages("Receipts").map(\.body)) == ["n2"])
        #expect(ids(a.localMessages("INBOX").map(\.body)) == ["n1"])
        let again = try await a.sync()
        #expect(again.standardOutput.hasPrefix("1 of 1 account(s) synced: 0 down, 0 deleted"), "\(again.standardOutput)")
    }
}

extension LocalMoveTests {
    /// A crash after the local rename of a server move, before the state update: the journal
    /// entry makes the pair follow the file; no download, no upload, no duplicate.
    @Test func serverMoveInterruptedAfterRenameIsRecovered() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        try await a.append("INBOX", [mail("t1"), mail("t2")])
        try await a.append("Archive", [mail("t3")])
        _ = try await a.sync()
        _ = try await a.sync()
        let store = MaildirStore(root: a.maildir, layout: .fs)
        let inbox = store.folder(["INBOX"]), archive = store.folder(["Archive"])
        let file = try inbox.scan().messages.first { readBytes(inbox.filePath(of: $0)).map { String(decoding: $0, as: UTF8.self).contains("<t2@") } ?? false }!

        let s = try await a.session()
        _ = try await s.select(.inbox)
        let assigned = try await s.move(UIDSet([UID(2)]), to: MailboxName("Archive"))
        await s.logout()
        let newUID = Array(assigned!.destination)[0]

        // What the interrupted pass got done: the journal entry, then the rename.
        let config = try ConfigurationLoader.load(path: a.config)
        let state = try StateStore.open(directory: config.general.stateDirectory)
        let account = try state.account(named: config.accounts[0].name, protocol: "imap")
        let folders = try state.folders(of: account)
        let from = folders.first { $0.localName == "INBOX" }!, to = folders.first { $0.localName == "Archive" }!
        let pair = try state.pairs(in: from.id).first { $0.localName == file.baseName }!
        _ = try state.addJournalEntry(JournalEntry(account: account, folder: from.id, kind: .serverMove, uid: pair.uid,
                                                   localName: pair.localName, token: String(newUID.rawValue), flags: "",
                                                   targetFolder: to.id, created: 0))
        _ = try inbox.move(file, to: archive, flags: MessageFlags())

        let sync = try a.accountSync()
        let report = try await sync.run()
        #expect(report.folders.allSatisfy { $0.downloaded == 0 && $0.uploaded == 0 && $0.error == nil }, "\(report.folders)")
        #expect(a.localMessages("Archive").count == 2 && a.localMessages("INBOX").count == 1)
        #expect(try await a.serverMessages("Archive").count == 2)
        #expect(try await a.serverMessages("INBOX").count == 1)
    }
}

extension LocalMoveTests {
    /// Server moves are met during the folder passes: with one connection (the passes run
    /// one after the other) and with several (they run side by side), the moved messages are
    /// renamed, not downloaded; a message expunged at the same time that arrived nowhere is
    /// deleted once the passes are over, and the next pass finds nothing to do.
    @Test(arguments: [1, 3]) func serverMovesWithConnections(_ connections: Int) async throws {
        let a = try SyncAccount(fixture, extra: "connections = \(connections)")
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...6).map { mail("w\($0)") })
        try await a.append("Archive", [mail("w7")])
        try await a.append("Lists", [mail("w8")])
        _ = try await a.sync()
        try await maildirSettles()
        _ = try await a.sync()

        // Another client moves w2 and w5 to Archive and w3 to Lists, expunges w6, and a new
        // message arrives in Lists.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        _ = try await s.move(UIDSet([UID(2), UID(5)]), to: MailboxName("Archive"))
        _ = try await s.move(UIDSet([UID(3)]), to: MailboxName("Lists"))
        try await s.deleteMessages(UIDSet([UID(6)]))
        await s.logout()
        try await a.append("Lists", [mail("w9")])

        let sync = try a.accountSync()
        let report = try await sync.run()
        #expect(report.movedLocally == 3, "\(report.folders)")
        let byName = Dictionary(report.folders.map { ($0.folder, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName[["INBOX"]]?.deleted == 1, "only w6 was deleted; the others moved")
        #expect(byName[["Archive"]]?.downloaded == 0 && byName[["Archive"]]?.movedHere == 2)
        #expect(byName[["Lists"]]?.downloaded == 1 && byName[["Lists"]]?.movedHere == 1)
        func bodies(_ folder: String) -> [String] {
            a.localMessages(folder).map { String(decoding: $0.body, as: UTF8.self) }.map { b in
                (1...9).first { b.contains("<w\($0)@") }.map { "w\($0)" } ?? "?"
            }.sorted()
        }
        #expect(bodies("INBOX") == ["w1", "w4"])
        #expect(bodies("Archive") == ["w2", "w5", "w7"])
        #expect(bodies("Lists") == ["w3", "w8", "w9"])

        try await maildirSettles()
        let again = try await sync.run()
        #expect(again.folders.allSatisfy { $0.summary == nil && $0.error == nil }, "\(again.folders)")
        #expect(try await a.serverMessages("INBOX").count == 2)
    }
}
