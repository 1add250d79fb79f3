import Testing
@testable import IMAP
import Support
import Transport
import TestSupport

/// Collects streamed bodies in memory, by UID.
final class MemorySink: FetchBodySink, @unchecked Sendable {
    var bodies: [UInt32: [UInt8]] = [:]
    var current: [UInt8] = []
    var currentUID: UInt32?
    var largestChunk = 0
    func begin(_ info: StreamInfo) throws { current = []; currentUID = info.uid }
    func write(_ bytes: [UInt8]) throws { current += bytes; largestChunk = max(largestChunk, bytes.count) }
    func end() throws { if let currentUID { bodies[currentUID] = current } }
}

func message(_ id: String, subject: String = "test", body: String = "hello") -> [UInt8] {
    Array("From: a@example.com\r\nTo: b@example.com\r\nSubject: \(subject)\r\nMessage-ID: <\(id)@mailmirror.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n\(body)\r\n".utf8)
}

extension DovecotFixture {
    /// A logged-in session for a new user (or the given one).
    func session(user: (name: String, password: String)? = nil, starttls: Bool = false) async throws -> (IMAPSession, (name: String, password: String)) {
        let user = try user ?? makeUser("imap")
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: caFile)
        let session = try await IMAPSession.connect(host: host, port: starttls ? imapPort : imapsPort,
                                                    security: starttls ? .startTLS(tls) : .implicitTLS(tls), ioTimeout: 30)
        try await session.login(username: user.name, secret: user.password)
        return (session, user)
    }
}

@Suite struct SessionTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    @Test func loginWithEachMechanismAndCapabilitiesAfterLogin() async throws {
        let user = try fixture.makeUser("mech")
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile)
        for mechanism in [IMAPAuthMechanism.auto, .plain, .login] {
            let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
            #expect(!(await s.capabilities.contains("CONDSTORE")))   // pre-login list is short
            try await s.login(username: user.name, secret: user.password, mechanism: mechanism)
            let caps = await s.capabilities
            for wanted in ["CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE", "IDLE", "ESEARCH", "ENABLE"] { #expect(caps.contains(wanted), "\(mechanism): \(wanted)") }
            await s.logout()
        }
        // STARTTLS on the plain port, then login.
        let (s, _) = try await fixture.session(user: user, starttls: true)
        #expect(await s.connection.tlsVersion != nil)
        await s.logout()
    }

    @Test func wrongPasswordIsAnAuthenticationError() async throws {
        let user = try fixture.makeUser("wrong")
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: fixture.caFile)
        for mechanism in [IMAPAuthMechanism.plain, .login] {
            let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
            let error = await #expect(throws: IMAPError.self) { try await s.login(username: user.name, secret: "nope", mechanism: mechanism) }
            guard case .authenticationFailed(_, let text)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(text.contains("Authentication failed"))
            #expect(error!.isRetryable == false)
            await s.close()
        }
        // A mechanism the server lacks is refused before anything is sent.
        let s = try await IMAPSession.connect(host: fixture.host, port: fixture.imapsPort, security: .implicitTLS(tls))
        await #expect(throws: IMAPError.self) { try await s.login(username: user.name, secret: user.password, mechanism: .xoauth2) }
        await s.close()
    }

    @Test func mailboxesAppendSelectFetchStoreSearchCopyMoveExpunge() async throws {
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        #expect(try await s.id([("name", "mailmirror")])?["name"] == "Dovecot")
        let ns = try await s.namespace()
        #expect(ns?.personal.first?.delimiter == UInt8(ascii: "/"))
        try await s.enable(["QRESYNC"])
        #expect(await s.enabled.contains("QRESYNC"))

        let drafts = MailboxName("Entwürfe")
        let archive = MailboxName("Archive/2024")
        try await s.create(drafts)
        try await s.create(archive)
        try await s.create(MailboxName("Tmp"))
        try await s.rename(MailboxName("Tmp"), to: MailboxName("Tmp2"))
        try await s.subscribe(drafts)
        let list = try await s.list()
        let names = Set(list.compactMap { $0.name.decoded() })
        #expect(names.isSuperset(of: ["INBOX", "Entwürfe", "Archive", "Archive/2024", "Tmp2"]))
        #expect(list.first { $0.name.decoded() == "Archive" }?.has("\\Archive") == true)
        try await s.delete(MailboxName("Tmp2"))

        // APPEND with flags and internal date; APPENDUID comes back.
        let assigned = try await s.append([AppendMessage(flags: [.seen, .flagged], internalDate: 1_700_000_000, source: BytesMessageSource(message("m1")))], to: drafts)
        #expect(assigned?.destination == UIDSet([UID(1)]))
        for i in 2...5 { _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("m\(i)", subject: "s\(i)")))], to: drafts) }
        let status = try await s.status(drafts)
        #expect(status.messages == 5 && status.uidNext == UID(6) && status.highestModSeq != nil)

        let selected = try await s.select(drafts)
        #expect(selected.exists == 5 && selected.uidNext == UID(6) && selected.uidValidity == assigned?.uidValidity)
        let (meta, _) = try await s.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .flags, .internalDate, .rfc822Size, .modSeq])
        #expect(meta.count == 5)
        #expect(meta[0].uid == UID(1) && Set(meta[0].flags ?? []).isSuperset(of: [.seen, .flagged]) && meta[0].internalDate == 1_700_000_000)
        #expect(meta[0].size == Int64(message("m1").count))

        let sink = MemorySink()
        let fetched = try await s.fetchMessages(UIDSet(ranges: [1...5]), sink: sink)
        #expect(fetched.count == 5)
        #expect(sink.bodies[3] == message("m3", subject: "s3"))

        let headers = try await s.fetch(UIDSet([UID(2)]), items: [.uid, .headerFields(["MESSAGE-ID"])])
        #expect(headers.messages.first?.sections[Array("HEADER.FIELDS (MESSAGE-ID)".utf8)] == Array("Message-ID: <m2@mailmirror.test>\r\n\r\n".utf8))

        let (changed, _) = try await s.store(UIDSet([UID(2), UID(3)]), .add, [.answered, .forwarded], silent: false)
        #expect(changed.count == 2 && changed.allSatisfy { Set($0.flags ?? []).isSuperset(of: [.answered, .forwarded]) })
        #expect(try await s.search([.header("Subject", Array("s4".utf8))]) == UIDSet([UID(4)]))
        #expect(try await s.search([.header("Message-ID", Array("nothing-like-this".utf8))]).isEmpty)

        let copied = try await s.copy(UIDSet([UID(1)]), to: archive)
        #expect(copied?.destination == UIDSet([UID(1)]))
        let moved = try await s.move(UIDSet([UID(2)]), to: archive)
        #expect(moved?.source == UIDSet([UID(2)]) && moved?.destination == UIDSet([UID(2)]))

        // Deleting exactly our UIDs leaves another client's \Deleted message alone.
        try await s.store(UIDSet([UID(5)]), .add, [.deleted])
        try await s.deleteMessages(UIDSet([UID(3)]))
        let after = try await s.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .flags])
        #expect(after.messages.compactMap(\.uid) == [UID(1), UID(4), UID(5)])
        try await s.unselect()
        #expect(try await s.status(archive).messages == 2)
    }

    @Test func qresyncSelectReportsVanishedAndChanges() async throws {
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        try await s.enable(["QRESYNC"])
        for i in 1...6 { _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("q\(i)")))], to: .inbox) }
        let first = try await s.select(.inbox)
        let modseq = try #require(first.highestModSeq)
        try await s.deleteMessages(UIDSet([UID(2), UID(3)]))
        try await s.store(UIDSet([UID(5)]), .add, [.seen])
        try await s.unselect()
        let again = try await s.select(.inbox, qresync: QResyncParameters(uidValidity: first.uidValidity!, modSeq: modseq))
        #expect(again.vanished == UIDSet([UID(2), UID(3)]))
        #expect(again.changed.map(\.uid) == [UID(5)])
        #expect(again.changed.first?.flags?.contains(.seen) == true)
        // CHANGEDSINCE fetch with VANISHED on an open mailbox.
        let since = try await s.fetch(UIDSet(ranges: [1...UInt32.max]), items: [.uid, .flags], changedSince: modseq)
        #expect(since.messages.map(\.uid) == [UID(5)])
        #expect(since.vanished == UIDSet([UID(2), UID(3)]))
    }

    @Test func thousandPipelinedCommands() async throws {
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        for i in 1...20 { _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("p\(i)")))], to: .inbox) }
        _ = try await s.select(.inbox)
        let start = monotonicSeconds()
        let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<1000 {
                group.addTask {
                    let uid = UID(UInt32(i % 20 + 1))
                    if i % 2 == 0 {
                        let r = try await s.fetch(UIDSet([uid]), items: [.uid, .flags])
                        // Dovecot runs pipelined commands on different messages in parallel:
                        // responses interleave, and only routing by UID keeps them apart.
                        return (i, r.messages.contains { $0.uid == uid } && r.messages.allSatisfy { $0.uid != nil })
                    } else {
                        // Dovecot answers a STORE that changed nothing with no FETCH at all.
                        let r = try await s.store(UIDSet([uid]), i % 4 == 1 ? .add : .remove, [.flagged], silent: false)
                        return (i, r.messages.allSatisfy { $0.uid == uid })
                    }
                }
            }
            var all: [(Int, Bool)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 1000)
        let failed = results.filter { !$0.1 }.map(\.0).sorted()
        #expect(failed.isEmpty, "commands without their own response: \(failed.prefix(20))")
        print("1000 pipelined UID FETCH/STORE: \(Int((monotonicSeconds() - start) * 1000)) ms")
    }

    @Test func idleSeesChangesMadeByAnotherConnection() async throws {
        let (watcher, user) = try await fixture.session()
        let (other, _) = try await fixture.session(user: user)
        defer { Task { await watcher.logout(); await other.logout() } }
        _ = try await other.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("i1")))], to: .inbox)
        _ = try await watcher.select(.inbox)
        _ = try await other.select(.inbox)

        async let events = watcher.idle(timeout: 20)
        try await Task.sleep(for: .milliseconds(300))
        _ = try await other.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("i2")))], to: .inbox)
        let got = try await events
        #expect(got.contains { if case .exists(2) = $0 { true } else { false } })

        async let flagEvents = watcher.idle(timeout: 20)
        try await Task.sleep(for: .milliseconds(300))
        try await other.store(UIDSet([UID(1)]), .add, [.flagged])
        #expect(try await flagEvents.contains { if case .fetch = $0 { true } else { false } })

        // Under load the flag change can still be announced late (a second FETCH): IDLE
        // returns on whatever comes first, so keep idling until the expunge shows (bounded).
        async let expungeEvents: [UntaggedResponse] = {
            var seen: [UntaggedResponse] = []
            let deadline = monotonicSeconds() + 20
            while monotonicSeconds() < deadline {
                seen += try await watcher.idle(timeout: max(0.1, deadline - monotonicSeconds()))
                if seen.contains(where: { if case .expunge = $0 { true } else if case .vanished = $0 { true } else { false } }) { break }
            }
            return seen
        }()
        try await Task.sleep(for: .milliseconds(300))
        try await other.deleteMessages(UIDSet([UID(2)]))
        #expect(try await expungeEvents.contains { if case .expunge = $0 { true } else if case .vanished = $0 { true } else { false } })

        // A timeout with nothing happening returns empty, and the session stays usable.
        let quiet = try await watcher.idle(timeout: 0.5)
        #expect(quiet.isEmpty)
        try await watcher.noop()
    }

    @Test func compressionCarriesTheSameConversation() async throws {
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        #expect(try await s.enableCompression())
        #expect(await s.isCompressed)
        let body = Array(String(repeating: "compressible line\r\n", count: 5000).utf8)
        _ = try await s.append([AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource(message("z", body: String(decoding: body, as: UTF8.self))))], to: .inbox)
        _ = try await s.select(.inbox)
        let sink = MemorySink()
        _ = try await s.fetchMessages(UIDSet([UID(1)]), sink: sink)
        #expect(sink.bodies[1] == message("z", body: String(decoding: body, as: UTF8.self)))
    }

    @Test func noResponseIsATypedErrorWithServerText() async throws {
        let (s, _) = try await fixture.session()
        defer { Task { await s.logout() } }
        let error = await #expect(throws: IMAPError.self) { _ = try await s.select(MailboxName("does-not-exist")) }
        guard case let .commandFailed(command, _, status, _, text)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(command.contains("SELECT") && status == .no && text.contains("exist"))
        // The session stays usable after a NO.
        try await s.noop()
    }
}
