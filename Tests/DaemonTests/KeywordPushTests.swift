#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import Support
import TestSupport

/// The daemon pushes keyword changes both ways like flag changes: the server's through
/// NOTIFY/IDLE, the Maildir's letters through its watch, notmuch's tags through a watch on
/// its database (docs/keywords.md).
@Suite(.serialized) struct KeywordPushTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    func serverKeywords(_ s: IMAPSession) async throws -> Set<String> {
        let r = try await s.fetch(UIDSet([UID(1)]), items: [.uid, .flags])
        return Set((r.messages.first?.flags ?? []).map(\.rawValue).filter { !$0.hasPrefix("\\") })
    }

    @Test func maildirLettersBothWays() async throws {
        let a = try DaemonAccount(fixture)
        defer { a.dir.remove() }
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(daemonMail("kw")))], to: .inbox)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        let inbox = MaildirStore(root: a.maildir, layout: .fs).folder(["INBOX"])
        func localKeywords() -> Set<String> {
            guard let table = try? MaildirKeywords.read(in: inbox), let file = try? inbox.scan().messages.first else { return [] }
            return Set(table.keywords(of: file.flags))
        }

        // Server → Maildir.
        _ = try await s.select(.inbox)
        _ = try await s.store(UIDSet([UID(1)]), .add, [Flag("$Junk")])
        let down = await measure(timeout: 15) { localKeywords() == ["$Junk"] }
        print("keywords: server → Maildir \(down.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(down != nil, "a keyword set on the server reaches the file within 15 s; log:\n\(readFile(daemon.log) ?? "")")

        // Maildir → server: a reader of Dovecot's scheme adds a keyword.
        var table = try MaildirKeywords.read(in: inbox)
        let assigned = table.assign("Todo")
        let letter = try #require(assigned)
        try table.write(to: inbox)
        let file = try #require(try inbox.scan().messages.first)
        var flags = file.flags
        flags.insert(letter)
        _ = try inbox.setFlags(file, to: flags)
        let up = try await measure(timeout: 15) { try await serverKeywords(s) == ["$Junk", "Todo"] }
        print("keywords: Maildir → server \(up.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(up != nil, "a letter set locally reaches the server within 15 s")
        await s.logout()
    }

    @Test func notmuchTagsBothWays() async throws {
        let a = try DaemonAccount(fixture, extra: "keywords = \"notmuch\"")
        defer { a.dir.remove() }
        let nmConfig = a.dir.path + "/notmuch-config"
        writeFile(nmConfig, "[database]\npath=\(a.maildir)\n[new]\ntags=inbox;unread\n[maildir]\nsynchronize_flags=true\n", mode: 0o600)
        a.write(extra: "keywords = \"notmuch\"\nnotmuch_config = \"\(nmConfig)\"")
        mkdir(a.maildir, 0o700)
        func nm(_ args: [String]) async throws -> CommandOutput {
            try await runCommand(["notmuch"] + args, environment: ["NOTMUCH_CONFIG": nmConfig], timeout: 60)
        }
        #expect(try await nm(["new", "--quiet"]).status == 0)
        let s = try await a.session()
        _ = try await s.append([AppendMessage(flags: [Flag("Later")], internalDate: nil, source: BytesMessageSource(daemonMail("nm")))], to: .inbox)
        let daemon = try RunningDaemon(config: a.config, log: a.dir.path + "/daemon.log")
        defer { daemon.stop() }
        #expect(try await daemon.waitForLog("ready"), "\(readFile(daemon.log) ?? "")")
        #expect(try await daemon.waitForPush(stateDirectory: a.dir.path + "/state"))
        func tags() async throws -> Set<String> {
            let out = try await nm(["search", "--output=tags", "--exclude=false", "id:nm@mailmirror.test"]).standardOutput
            return Set(out.split(separator: "\n").map(String.init))
        }
        #expect(try await tags().contains("Later"), "downloaded with its keyword as a tag")

        // notmuch → server.
        #expect(try await nm(["tag", "+urgent", "--", "id:nm@mailmirror.test"]).status == 0)
        _ = try await s.select(.inbox)
        let up = try await measure(timeout: 15) { try await serverKeywords(s) == ["Later", "urgent"] }
        print("keywords: notmuch tag → server \(up.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(up != nil, "a tag set in notmuch reaches the server within 15 s; log:\n\(readFile(daemon.log) ?? "")")

        // Server → notmuch.
        _ = try await s.store(UIDSet([UID(1)]), .remove, [Flag("Later")])
        let down = try await measure(timeout: 15) { try await !tags().contains("Later") }
        print("keywords: server → notmuch tag \(down.map { "\(Int($0 * 1000)) ms" } ?? "timed out")")
        #expect(down != nil, "a keyword removed on the server leaves notmuch within 15 s")
        await s.logout()

        // Its own tagging and indexing asks for one more pass at most: no loop of passes.
        try await Task.sleep(for: .seconds(2))
        func requested() -> Int { (readFile(daemon.log) ?? "").split(separator: "\n").filter { $0.contains("notmuch tags changed") }.count }
        let settled = requested()
        try await Task.sleep(for: .seconds(3))
        #expect(requested() == settled, "no pass asked for while nothing changes: \(settled) → \(requested())")
    }
}
