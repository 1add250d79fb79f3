#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Autoconfig
import Config
import TestSupport

@Suite struct ProviderTableTests {
    @Test(arguments: [
        ("someone@gmail.com", "Gmail", "imap.gmail.com"), ("Someone@GoogleMail.COM", "Gmail", "imap.gmail.com"),
        ("a@outlook.com", "Outlook.com", "outlook.office365.com"), ("a@HOTMAIL.com", "Outlook.com", "outlook.office365.com"),
        ("a@live.com", "Outlook.com", "outlook.office365.com"), ("a@msn.com", "Outlook.com", "outlook.office365.com"),
        ("a@contoso.onmicrosoft.com", "Office 365", "outlook.office365.com"), ("a@yahoo.com", "Yahoo", "imap.mail.yahoo.com"),
        ("a@aol.com", "AOL", "imap.aol.com"), ("a@me.com", "iCloud", "imap.mail.me.com"), ("a@mac.com", "iCloud", "imap.mail.me.com"),
        ("a@yandex.ru", "Yandex", "imap.yandex.com"), ("a@bk.ru", "Mail.ru", "imap.mail.ru"), ("a@inbox.ru", "Mail.ru", "imap.mail.ru"),
        ("a@list.ru", "Mail.ru", "imap.mail.ru"), ("a@gmx.de", "GMX", "imap.gmx.net"), ("a@web.de", "WEB.DE", "imap.web.de"),
        ("a@fastmail.com", "Fastmail", "imap.fastmail.com"), ("a@zoho.com", "Zoho", "imap.zoho.com"),
        ("a@proton.me", "Proton Mail (via Proton Mail Bridge)", "127.0.0.1"), ("a@sub.gmx.net", "GMX", "imap.gmx.net"),
    ])
    func lookups(email: String, provider: String, imapHost: String) {
        let p = ProviderTable.provider(for: email)
        #expect(p?.name == provider, "\(email)")
        #expect(p?.server(.imap)?.host == imapHost)
    }

    @Test func unknownAndMalformed() {
        #expect(ProviderTable.provider(for: "a@example.org") == nil)
        #expect(ProviderTable.provider(for: "a@com") == nil)
        #expect(ProviderTable.domain(of: "no-at-sign") == nil)
        #expect(ProviderTable.domain(of: "a@b@c.d") == nil)
        #expect(ProviderTable.domain(of: "A@Example.ORG") == "example.org")
        #expect(ProviderTable.provider(forMX: "aspmx.l.google.com.")?.name == "Gmail")
        #expect(ProviderTable.provider(forMX: "example-org.mail.protection.outlook.com")?.name == "Office 365")
        #expect(ProviderTable.provider(forMX: "mx.example.org") == nil)
    }

    @Test func notesForTheBigOnes() {
        #expect(ProviderTable.provider(for: "a@gmail.com")?.notes?.contains("app password") == true)
        #expect(ProviderTable.provider(for: "a@outlook.com")?.auth == "xoauth2")
        #expect(ProviderTable.providers.allSatisfy { $0.servers.allSatisfy { $0.port > 0 } })
    }
}

@Suite struct AutoconfigParsingTests {
    @Test func incomingServersFromASample() throws {
        let xml = readFile(repositoryRoot + "/Tests/AutoconfigTests/Samples/example.org.xml")!
        let servers = AutoconfigDocument.incomingServers(xml, email: "me@example.org")
        #expect(servers == [
            ServerSettings(.pop3, "pop.example.org", 995, .implicit, usernameIsLocalPart: true),
            ServerSettings(.imap, "imap.example.org", 143, .starttls),
            ServerSettings(.imap, "mail.example.org", 993, .implicit),
        ], "plaintext servers are never proposed")
        #expect(AutoconfigDocument.incomingServers("<clientConfig><incomingServer", email: "a@b.c").isEmpty)
        #expect(AutoconfigDocument.incomingServers("garbage", email: "a@b.c").isEmpty)
    }

    /// SRV and MX answers as a DNS server sends them (with name compression).
    @Test func srvAndMXRecords() {
        func name(_ s: String) -> [UInt8] { s.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0] }
        var msg: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0]
        let question = 12
        msg += name("_imaps._tcp.example.org") + [0, 33, 0, 1]
        // answer 1: SRV 10 5 993 mail.example.org (target written out)
        let target = name("mail.example.org")
        msg += [0xC0, UInt8(question), 0, 33, 0, 1, 0, 0, 0, 60, 0, UInt8(6 + target.count), 0, 10, 0, 5, 0x03, 0xE1] + target
        // answer 2: SRV 20 0 993 → compressed pointer to the target above ("mail.example.org")
        let targetOffset = msg.count - target.count
        msg += [0xC0, UInt8(question), 0, 33, 0, 1, 0, 0, 0, 60, 0, 8, 0, 20, 0, 0, 0x03, 0xE1, 0xC0, UInt8(targetOffset)]
        // answer 3: MX 10 aspmx.l.google.com
        let mx = name("aspmx.l.google.com")
        msg += [0xC0, UInt8(question), 0, 15, 0, 1, 0, 0, 0, 60, 0, UInt8(2 + mx.count), 0, 10] + mx
        #expect(DNSMessage.parse(msg) == [
            .srv(priority: 10, weight: 5, port: 993, target: "mail.example.org"),
            .srv(priority: 20, weight: 0, port: 993, target: "mail.example.org"),
            .mx(preference: 10, exchange: "aspmx.l.google.com"),
        ])
        // Truncated and looping input is rejected, not followed.
        #expect(DNSMessage.parse(Array(msg.prefix(40))) == nil)
        let loop: [UInt8] = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        #expect(DNSMessage.parse(loop) == nil)
    }
}

@Suite(.serialized) struct InitCommandTests {
    let fixture: DovecotFixture
    init() async throws { fixture = try await DovecotFixture.shared() }

    /// Serves the sample documents over HTTPS on 127.0.0.1 with the fixture's certificate.
    func withHTTPS<T>(_ body: (UInt16) async throws -> T) async throws -> T {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let samples = repositoryRoot + "/Tests/AutoconfigTests/Samples"
        _ = try await runCommand(["mkdir", "-p", dir.path + "/www/mail"])
        _ = try await runCommand(["cp", samples + "/example.org.xml", dir.path + "/www/mail/config-v1.1.xml"])
        _ = try await runCommand(["cp", "-r", samples + "/.well-known", dir.path + "/www/"])
        let server = try SpawnedProcess(["python3", repositoryRoot + "/Tests/AutoconfigTests/https-server.py", dir.path + "/www",
                                         fixture.directory + "/tls/server.pem", fixture.directory + "/tls/server.key", dir.path + "/port"])
        defer { server.kill(SIGTERM); server.wait(timeout: 10) }
        var port: UInt16?
        for _ in 0..<200 {
            if let text = readFile(dir.path + "/port"), let p = UInt16(text) { port = p; break }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await body(try #require(port, "the test HTTPS server did not start"))
    }

    @Test func autoconfigOverHTTPSWithFallbackToWellKnown() async throws {
        try await withHTTPS { port in
            var d = AccountDiscovery()
            d.caFile = fixture.caFile
            d.useDNS = false
            d.autoconfigURLs = ["https://127.0.0.1:\(port)/mail/config-v1.1.xml?emailaddress=me%40example.org"]
            let found = await d.discover("me@example.org")
            #expect(found?.server == ServerSettings(.imap, "mail.example.org", 993, .implicit), "implicit TLS preferred")
            #expect(found?.source.hasPrefix("autoconfig https://127.0.0.1") == true)
            // The first URL answers 404: the well-known one is tried next.
            d.autoconfigURLs = ["https://127.0.0.1:\(port)/missing.xml", "https://127.0.0.1:\(port)/.well-known/autoconfig/mail/config-v1.1.xml"]
            #expect(await d.discover("me@wellknown.test")?.server.host == "imap.wellknown.test")
            // POP3 from the same document.
            d.kind = .pop3
            d.autoconfigURLs = ["https://127.0.0.1:\(port)/mail/config-v1.1.xml"]
            let pop = await d.discover("me@example.org")
            #expect(pop?.server == ServerSettings(.pop3, "pop.example.org", 995, .implicit, usernameIsLocalPart: true))
            // Without the test CA the server is not trusted, and nothing is found there.
            d.caFile = nil
            d.guesses = []
            #expect(await d.discover("me@example.org") == nil)
        }
    }

    @Test func tlsProbeOfTheGuessStep() async throws {
        var d = AccountDiscovery()
        d.caFile = fixture.caFile
        // A generous deadline: under the whole suite's load a handshake took over the 5 s
        // that `init` allows a guess (no probe here waits for a timeout to fail).
        d.timeout = 30
        #expect(await d.probe(host: "127.0.0.1", port: fixture.imapsPort, security: .implicit))
        #expect(await d.probe(host: "127.0.0.1", port: fixture.imapPort, security: .starttls))
        #expect(!(await d.probe(host: "127.0.0.1", port: fixture.imapPort, security: .implicit)), "plain port with implicit TLS")
        d.kind = .pop3
        #expect(await d.probe(host: "127.0.0.1", port: fixture.pop3sPort, security: .implicit))
        // The full guess step, with autoconfig unreachable and DNS off.
        d.kind = .imap
        d.useDNS = false
        d.autoconfigURLs = ["https://127.0.0.1:1/nothing"]
        d.guesses = [("127.0.0.1", fixture.imapsPort, fixture.imapPort)]
        let found = await d.discover("me@unknown-provider.test")
        #expect(found?.server == ServerSettings(.imap, "127.0.0.1", fixture.imapsPort, .implicit))
        #expect(found?.source == "guess 127.0.0.1, TLS verified")
    }

    @Test func initWritesAValidAccountAndKeepsWhatWasThere() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/sub/config.toml"
        let first = try await runMailmirror(["init", "Me@Gmail.com", "--config", path, "--offline"])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("via built-in table (Gmail)") && first.standardOutput.contains("Next steps"))
        var st = stat()
        stat(path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        let config = try ConfigurationLoader.load(path: path)
        #expect(config.accounts.first?.name == "gmail" && config.accounts.first?.host == "imap.gmail.com" && config.accounts.first?.tls == .implicit)
        let check = try await runMailmirror(["check-config", "--config", path])
        #expect(check.status == 0)

        // Appending: comments and the other account stay; the same name is refused.
        let before = readFile(path)! + "# a comment of the user's\n"
        writeFile(path, before, mode: 0o600)
        let second = try await runMailmirror(["init", "someone@fastmail.com", "--config", path, "--offline", "--protocol", "pop3", "--maildir", "~/Mail/fm"])
        #expect(second.status == 0, "\(second.standardError)")
        let text = readFile(path)!
        #expect(text.hasPrefix(before))
        let both = try ConfigurationLoader.load(path: path)
        #expect(both.accounts.map(\.name) == ["gmail", "fastmail"])
        #expect(both.accounts[1].protocol == .pop3 && both.accounts[1].port == 995 && both.accounts[1].maildir.hasSuffix("/Mail/fm"))
        let again = try await runMailmirror(["init", "other@gmail.com", "--config", path, "--offline"])
        #expect(again.status == 2)
        #expect(again.standardError.contains("already has an account named \"gmail\""))
        #expect(readFile(path) == text, "nothing written on refusal")
        let named = try await runMailmirror(["init", "other@gmail.com", "--config", path, "--offline", "--name", "gmail2"])
        #expect(named.status == 0)
    }

    @Test func offlineUnknownDomainSaysWhatToDo() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let out = try await runMailmirror(["init", "me@unknown-provider.test", "--config", dir.path + "/c.toml", "--offline"])
        #expect(out.status == 1)
        #expect(out.standardError.contains("config.example.toml"))
        let list = try await runMailmirror(["init", "--list-providers"])
        #expect(list.status == 0 && list.standardOutput.contains("imap.gmail.com:993") && list.standardOutput.contains("Mail.ru"))
    }

    /// The fuzz corpus (autoconfig documents and DNS answers, the first byte choosing)
    /// replays without a crash, and the seeds still say what they say.
    @Test func fuzzCorpusReplays() throws {
        let dir = repositoryRoot + "/Fuzz/corpus/autoconfig"
        let names = listDirectory(dir)
        #expect(names.count >= 2)
        for name in names {
            let bytes = readBytes(dir + "/" + name) ?? []
            guard let first = bytes.first else { continue }
            let rest = Array(bytes.dropFirst())
            if first & 1 == 0 { _ = AutoconfigDocument.incomingServers(String(decoding: rest, as: UTF8.self), email: "user@example.org") }
            else { _ = DNSMessage.parse(rest) }
        }
        let dns = Array((readBytes(dir + "/dns-srv-mx") ?? []).dropFirst())
        #expect(DNSMessage.parse(dns) == [.srv(priority: 0, weight: 1, port: 993, target: "imap.example.org"), .mx(preference: 10, exchange: "mx.example.org")])
    }
}
