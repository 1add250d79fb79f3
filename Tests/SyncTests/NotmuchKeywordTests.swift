#if canImport(Glibc)
import Glibc
#endif
import Testing
import IMAP
import Maildir
import TestSupport

/// `keywords = "notmuch"` with a real notmuch database over the account's Maildir (Debian's
/// notmuch, installed by scripts/install-deps): keywords are tags, found changed by the
/// database's revision, never by listing every message.
@Suite(.serialized) struct NotmuchKeywordTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// An account in notmuch mode, its database made, and a `notmuch` on PATH that logs each
    /// request and what `show` answered (to count what was asked of notmuch).
    struct Setup {
        let a: SyncAccount
        var nmConfig: String { a.dir.path + "/notmuch-config" }
        var log: String { a.dir.path + "/notmuch.log" }
        var shown: String { a.dir.path + "/notmuch-show.out" }
        var environment: [String: String] { ["PATH": a.dir.path + "/bin:" + (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin")] }

        init(_ fixture: DovecotFixture) async throws {
            a = try SyncAccount(fixture)
            a.writeConfig(extra: "keywords = \"notmuch\"\nnotmuch_config = \"\(a.dir.path)/notmuch-config\"\nkeyword_tags = { \"$Junk\" = \"spam\" }")
            writeFile(nmConfig, "[database]\npath=\(a.maildir)\n[new]\ntags=inbox;unread\n[maildir]\nsynchronize_flags=true\n", mode: 0o600)
            mkdir(a.maildir, 0o700)
            mkdir(a.dir.path + "/bin", 0o700)
            let real = try await runCommand(["sh", "-c", "command -v notmuch"]).standardOutput.split(separator: "\n").first.map(String.init) ?? "/usr/bin/notmuch"
            writeFile(a.dir.path + "/bin/notmuch", """
                #!/bin/sh
                echo "$*" >> \(shellQuote(log))
                if [ "$1" = show ]; then \(shellQuote(real)) "$@" | tee -a \(shellQuote(shown)); exit 0; fi
                exec \(shellQuote(real)) "$@"
                """, mode: 0o700)
            let made = try await nm(["new", "--quiet"])
            #expect(made.status == 0, "\(made.standardError)")
        }

        func nm(_ args: [String]) async throws -> CommandOutput {
            try await runCommand(["notmuch"] + args, environment: ["NOTMUCH_CONFIG": nmConfig], timeout: 120)
        }

        func sync() async throws -> CommandOutput {
            try await runMailmirror(["sync", "--config", a.config], environment: environment, timeout: 300)
        }

        /// The Message-IDs (without `@mailmirror.test`) of messages with `tag`.
        func tagged(_ tag: String) async throws -> Set<String> {
            let out = try await nm(["search", "--output=messages", "--exclude=false", "tag:" + tag]).standardOutput
            return Set(out.split(separator: "\n").map { String($0.dropFirst(3).split(separator: "@")[0]) })
        }

        /// How many messages the `show` requests since the last call reported.
        func shownMessages() -> Int {
            let text = String(decoding: readBytes(shown) ?? [], as: UTF8.self)
            unlink(shown)
            return text.split(separator: "\"id\": ", omittingEmptySubsequences: false).count - 1
        }

        func requests() -> [String] {
            let lines = String(decoding: readBytes(log) ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
            unlink(log)
            return lines
        }

        func serverKeywords(_ id: String) async throws -> Set<String> {
            for (_, m) in try await a.serverMessages("INBOX") where String(decoding: m.body, as: UTF8.self).contains("<\(id)@mailmirror.test>") {
                return Set(m.flags.map(\.rawValue).filter { !$0.hasPrefix("\\") })
            }
            Issue.record("no server message \(id)")
            return []
        }

        func storeOnServer(_ operation: StoreOperation, _ flags: [String], ids: [String]) async throws {
            let s = try await a.session()
            defer { Task { await s.logout() } }
            _ = try await s.select(MailboxName("INBOX"))
            for id in ids {
                let hits = try await s.search([.header("Message-ID", Array("\(id)@mailmirror.test".utf8))])
                _ = try await s.store(hits, operation, flags.map(Flag.init))
            }
        }
    }

    /// 1,000 messages: server keywords arrive as tags (mapped and not), 100 local tag changes
    /// are found by revision (notmuch is asked for `lastmod:` and answers with those
    /// messages, not the thousand) and reach the server, a removal on either side wins,
    /// a change on both sides merges, notmuch's own tags are never sent.
    @Test func tagsAndKeywordsInStep() async throws {
        let t = try await Setup(fixture)
        defer { t.a.dir.remove() }
        try await t.a.append("INBOX", (0..<980).map { mail("n\($0)") })
        try await t.a.append("INBOX", (980..<990).map { mail("n\($0)") }, flags: [Flag("$Junk")])
        try await t.a.append("INBOX", (990..<1000).map { mail("n\($0)") }, flags: [Flag("Work"), .seen])
        let first = try await t.sync()
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("1000 down"), "\(first.standardOutput)")
        #expect(try await t.tagged("spam") == Set((980..<990).map { "n\($0)" }))
        #expect(try await t.tagged("Work") == Set((990..<1000).map { "n\($0)" }))
        #expect(try await t.tagged("unread").count == 990, "notmuch's own tags and flags as it keeps them")
        // The next pass takes what notmuch indexed and tagged for the downloads (revisions
        // after the one this pass started from) and finds it agrees.
        let settle = try await t.sync()
        #expect(settle.status == 0 && !settle.standardOutput.contains("flag"), "\(settle.standardOutput)")
        _ = t.requests()
        _ = t.shownMessages()

        // 100 tag changes here: 98 new tags, 2 mapped tags removed.
        let ids = (0..<98).map { "n\($0)" }
        let batch = ids.map { "+todo -- id:\($0)@mailmirror.test" } + ["-spam -- id:n980@mailmirror.test", "-spam -- id:n981@mailmirror.test"]
        writeFile(t.a.dir.path + "/batch", batch.joined(separator: "\n") + "\n")
        let tagged = try await t.nm(["tag", "--batch", "--input=" + t.a.dir.path + "/batch"])
        #expect(tagged.status == 0, "\(tagged.standardError)")
        let second = try await t.sync()
        #expect(second.status == 0, "\(second.standardError)")
        let asked = t.requests()
        let shows = asked.filter { $0.hasPrefix("show") }
        #expect(shows.count == 1 && shows[0].contains("lastmod:"), "found by revision: \(asked)")
        let reported = t.shownMessages()
        #expect(reported >= 100 && reported < 200, "notmuch answered with the changed messages only: \(reported)")
        #expect(try await t.serverKeywords("n5") == ["todo"])
        #expect(try await t.serverKeywords("n97") == ["todo"])
        #expect(try await t.serverKeywords("n980").isEmpty, "a removal here wins")
        #expect(try await t.serverKeywords("n982") == ["$Junk"])
        #expect(try await t.serverKeywords("n990") == ["Work"], "inbox/unread are notmuch's own: never sent")

        // Server: a removal and an addition; both sides change one message.
        try await t.storeOnServer(.remove, ["Work"], ids: ["n991"])
        try await t.storeOnServer(.add, ["Later"], ids: ["n1"])
        let both = try await t.nm(["tag", "+urgent", "--", "id:n1@mailmirror.test"])
        #expect(both.status == 0)
        let third = try await t.sync()
        #expect(third.status == 0, "\(third.standardError)")
        #expect(!(try await t.tagged("Work")).contains("n991"), "a removal on the server wins")
        #expect(try await t.tagged("Later") == ["n1"])
        #expect(try await t.serverKeywords("n1") == ["todo", "Later", "urgent"])

        // Settled: nothing more to carry.
        let quiet = try await t.sync()
        #expect(quiet.status == 0 && !quiet.standardOutput.contains("flag"), "\(quiet.standardOutput)")

        // A reader renames a file (a flag) and notmuch has not looked since: the pass indexes
        // first (notmuch's `show` opens every file it reports), and the flag goes up.
        let inbox = MaildirStore(root: t.a.maildir, layout: .fs).folder(["INBOX"])
        let file = try #require(try inbox.scan().messages.first { String(decoding: readBytes(inbox.filePath(of: $0)) ?? [], as: UTF8.self).contains("<n3@") })
        _ = try inbox.setFlags(file, to: file.flags.union(MessageFlags("F")))
        #expect(try await t.nm(["tag", "+renamed", "--", "id:n3@mailmirror.test"]).status == 0)
        try await maildirSettles()
        let renamed = try await t.sync()
        #expect(renamed.status == 0, "\(renamed.standardError)")
        for (_, m) in try await t.a.serverMessages("INBOX") where String(decoding: m.body, as: UTF8.self).contains("<n3@") {
            #expect(m.flags.contains(.flagged) && m.flags.contains(Flag("renamed")), "\(m.flags)")
        }
    }

    /// Without notmuch (or its database) `check-config` says so and fails.
    @Test func checkConfigNeedsNotmuch() async throws {
        let a = try SyncAccount(fixture)
        defer { a.dir.remove() }
        a.writeConfig(extra: "keywords = \"notmuch\"\nnotmuch_config = \"\(a.dir.path)/missing-config\"")
        let out = try await runMailmirror(["check-config", "--config", a.config], timeout: 60)
        #expect(out.status == 1)
        #expect(out.standardError.contains("notmuch") && out.standardError.contains("keywords = \"maildir\""), "\(out.standardError)")
        #expect(out.standardOutput.contains("keywords = \"notmuch\""), "\(out.standardOutput)")
    }
}
