import Testing
import Config
import IMAP
import Support
import Sync
import Maildir
import TestSupport

/// The same scenarios on a server without CONDSTORE, QRESYNC, LIST-STATUS, ESEARCH and
/// NOTIFY (a second fixture Dovecot started with `--basic`): the engine falls back to a
/// `UID FETCH (UID FLAGS)` per folder and must reach exactly the state it reaches with them.
@Suite struct BasicServerTests {
    /// Runs the scenario on `fixture` and returns each folder's messages, server and local,
    /// as sorted "Message-ID flags" lines.
    func scenario(on fixture: DovecotFixture) async throws -> (server: [String: [String]], local: [String: [String]], flagChanges: Int, quietFetches: Int, quietCommands: [String: Int]) {
        // One connection, so that the counted session is the one that syncs every folder.
        let a = try SyncAccount(fixture, extra: "connections = 1")
        defer { a.dir.remove() }
        try await a.append("INBOX", (1...30).map { mail("i\($0)") })
        try await a.append("Archive", (1...10).map { mail("a\($0)") }, flags: [.seen])
        try await a.append("Lists/swift", (1...5).map { mail("l\($0)") })
        _ = try await a.sync()
        try await maildirSettles()
        _ = try await a.sync()

        func pass() async throws -> (report: AccountReport, bodies: Int, counts: [String: Int]) {
            let (report, counts) = try await a.countedPass()
            return (report, report.folders.reduce(0) { $0 + $1.downloaded + $1.uploaded }, counts)
        }
        let quiet = try await pass()

        // Server: 3 flag changes, 2 expunged, 2 new. Local: a flag change and a new message.
        let s = try await a.session()
        _ = try await s.select(.inbox)
        try await s.store(UIDSet([UID(3), UID(17), UID(29)]), .add, [.flagged])
        _ = try await s.select(MailboxName("Archive"))
        try await s.store(UIDSet([UID(2), UID(5)]), .add, [.deleted])
        try await s.expunge(UIDSet([UID(2), UID(5)]))
        await s.logout()
        try await a.append("Lists/swift", [mail("l6"), mail("l7")])
        let store = MaildirStore(root: a.maildir, layout: .fs).folder(["Archive"])
        let file = try store.scan().messages.first { messageID(readBytes(store.filePath(of: $0)) ?? []) == "a1" }!
        _ = try store.setFlags(file, to: MessageFlags("FS"))
        try a.deliverLocally("INBOX", mail("new-local"))
        let changed = try await pass()
        #expect(changed.report.folders.allSatisfy { $0.error == nil }, "\(changed.report.folders)")
        _ = try await pass()

        var server: [String: [String]] = [:], local: [String: [String]] = [:]
        for folder in ["INBOX", "Archive", "Lists/swift"] {
            server[folder] = try await a.serverMessages(folder).values
                .map { "\(messageID($0.body)) \($0.flags.map(\.description).sorted().joined(separator: ","))" }.sorted()
            local[folder] = a.localMessages(folder).map { "\(messageID($0.body)) \($0.flags)" }.sorted()
        }
        return (server, local, changed.report.folders.first { $0.folder == ["INBOX"] }?.flagChanges ?? -1, quiet.bodies, quiet.counts)
    }

    func messageID(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(400), as: UTF8.self)
        guard let open = text.firstIndex(of: "<"), let close = text[open...].firstIndex(of: "@") else { return "?" }
        return String(text[text.index(after: open)..<close])
    }

    @Test func basicServerReachesTheSameState() async throws {
        let full = try await DovecotFixture.shared()
        let basic = try await DovecotFixture.start(compress: false, basic: true)
        defer { basic.stop() }
        let withExtensions = try await scenario(on: full)
        let without = try await scenario(on: basic)
        #expect(without.server == withExtensions.server)
        #expect(without.local == withExtensions.local)
        #expect(without.quietFetches == 0 && withExtensions.quietFetches == 0)
        // A pass with nothing to do: one LIST and no FETCH with the extensions; without them
        // one flags FETCH per folder (3), never a body.
        #expect(withExtensions.quietCommands["UID FETCH"] == nil, "\(withExtensions.quietCommands)")
        #expect(without.quietCommands["UID FETCH"] == 3, "\(without.quietCommands)")
        #expect(without.flagChanges == 3 && withExtensions.flagChanges == 3)
        // Both sides agree: the same messages (flags are compared per side above).
        for (folder, lines) in withExtensions.server {
            #expect(lines.map { $0.split(separator: " ")[0] } == withExtensions.local[folder]!.map { $0.split(separator: " ")[0] }, "\(folder)")
        }
        #expect(withExtensions.server["INBOX"]?.count == 31)
        #expect(withExtensions.server["Archive"]?.count == 8)
        #expect(withExtensions.server["Archive"]?.contains("a1 \\Flagged,\\Seen") == true, "the local flag change reached the server")
        #expect(withExtensions.local["INBOX"]?.contains("i17 F") == true, "the server flag change reached the Maildir")
        #expect(withExtensions.server["Lists/swift"]?.count == 7)
    }
}
