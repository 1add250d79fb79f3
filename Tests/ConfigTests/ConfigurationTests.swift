import Testing
@testable import Config
import Support
import TestSupport

let testEnvironment = ["HOME": "/home/u", "XDG_STATE_HOME": "/home/u/.state"]

/// A minimal valid IMAP account followed by `extra` lines.
func imapAccount(_ extra: String = "") -> String {
    """
    [[account]]
    name = "work"
    host = "imap.example.com"
    username = "me"
    password_command = "echo secret"
    maildir = "~/Mail/work"
    \(extra)
    """
}

func pop3Account(_ extra: String = "") -> String {
    """
    [[account]]
    name = "isp"
    protocol = "pop3"
    host = "pop.example.net"
    username = "me"
    password = "pw"
    maildir = "~/Mail/isp"
    \(extra)
    """
}

@Suite struct ConfigurationTests {
    func load(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationLoader.parse(text: text, path: "cfg.toml", environment: testEnvironment)
    }

    @Test func exampleConfigParsesAndValidates() throws {
        let config = try ConfigurationLoader.load(path: repositoryRoot + "/config.example.toml", environment: testEnvironment)
        #expect(config.accounts.map(\.name) == ["work", "isp"])
        let work = config.accounts[0]
        #expect(work.protocol == .imap && work.port == 993 && work.tls == .implicit)
        #expect(work.folders == ["*", "!Spam", "!Trash"])
        #expect(work.maildir == "/home/u/Mail/work")
        #expect(work.password == .command("pass show mail/work"))
        #expect(work.pollInterval == 300)
        let isp = config.accounts[1]
        #expect(isp.protocol == .pop3 && isp.port == 995 && isp.pollInterval == 600 && !isp.keepOnServer)
        #expect(config.general.stateDirectory == "/home/u/.local/state/mailmirror")
        #expect(config.general.logLevel == .info)
    }

    @Test func defaults() throws {
        let config = try load(imapAccount())
        let a = config.accounts[0]
        #expect(a.port == 993 && a.tls == .implicit && a.layout == .fs && a.direction == .both && a.delete == .both)
        #expect(a.idle == ["INBOX"] && a.folders == ["*"] && a.connections == 2 && a.compress == .auto)
        #expect(a.maxDeleteFraction == 0.5 && a.maxAge == nil && a.maxMessageSize == nil && a.auth == .auto)
        #expect(config.general.stateDirectory == "/home/u/.state/mailmirror")
        #expect(a.maxConnections == 10 && a.idleConnections == 8)
        // An existing config with many sync connections stays valid: the default grows.
        let many = try load(imapAccount("connections = 12")).accounts[0]
        #expect(many.maxConnections == 13 && many.idleConnections == 1)
        let starttls = try load(imapAccount("tls = \"starttls\"")).accounts[0]
        #expect(starttls.port == 143)
        let pop = try load(pop3Account("tls = \"starttls\"")).accounts[0]
        #expect(pop.port == 110)
    }

    @Test func valuesWithUnits() throws {
        let a = try load(imapAccount("poll_interval = \"90s\"\nmax_age = \"90d\"\nmax_message_size = \"50M\"\ncompress = false\nmax_delete_fraction = 1")).accounts[0]
        #expect(a.pollInterval == 90 && a.maxAge == 90 * 86400 && a.maxMessageSize == 50 * 1024 * 1024)
        #expect(a.compress == .never && a.maxDeleteFraction == 1.0)
    }

    @Test(arguments: [
        (TOMLValue.integer(300), 300), (.string("90s"), 90), (.string("5m"), 300), (.string("1h"), 3600),
        (.string("90d"), 7_776_000), (.string("1.5h"), 5400), (.string("45"), 45), (.string(" 2 m "), 120),
    ])
    func durations(value: TOMLValue, seconds: Int) {
        #expect(SettingValues.duration(value) == seconds)
    }

    @Test(arguments: [TOMLValue.integer(0), .integer(-5), .string("5x"), .string("m"), .string(""), .float(3), .string("-1m")])
    func badDurations(value: TOMLValue) {
        #expect(SettingValues.duration(value) == nil)
    }

    @Test(arguments: [
        (TOMLValue.integer(1000), Int64(1000)), (.string("10K"), 10240), (.string("50M"), 52_428_800),
        (.string("1G"), 1_073_741_824), (.string("2MB"), 2_097_152), (.string("1.5K"), 1536), (.string("512"), 512),
    ])
    func sizes(value: TOMLValue, bytes: Int64) {
        #expect(SettingValues.size(value) == bytes)
    }

    @Test func pathExpansion() throws {
        let env = ["HOME": "/h", "MAILROOT": "/m"]
        #expect(try SettingValues.expandPath("~/Mail", environment: env) == "/h/Mail")
        #expect(try SettingValues.expandPath("$XDG_STATE_HOME/mm", environment: env) == "/h/.local/state/mm")
        #expect(try SettingValues.expandPath("${MAILROOT}/x/$HOME", environment: env) == "/m/x//h")
        #expect(try SettingValues.expandPath("/a~b", environment: env) == "/a~b")
        #expect(throws: SettingValues.UnsetVariable.self) { try SettingValues.expandPath("$NOPE/x", environment: env) }
        #expect(SettingValues.defaultConfigPath(environment: env) == "/h/.config/mailmirror/config.toml")
    }

    /// Each bad configuration gives its message on its line.
    @Test(arguments: [
        (imapAccount("tls = \"ssl\""), 7, "tls = \"ssl\" is not one of implicit, starttls, none"),
        (imapAccount("prot = 1"), 7, "unknown setting \"prot\" in [[account]]; did you mean port?"),
        (imapAccount("port = 70000"), 7, "port = 70000 is not a TCP port (1-65535)"),
        (imapAccount("port = \"993\""), 7, "port = \"993\" must be a whole number without quotes"),
        (imapAccount("tls = \"none\""), 7, "tls = \"none\" would send the password unencrypted"),
        (imapAccount("poll_interval = \"5 minutes\""), 7, "poll_interval = \"5 minutes\" is not a duration"),
        (imapAccount("max_message_size = \"big\""), 7, "max_message_size = \"big\" is not a size"),
        (imapAccount("folders = \"INBOX\""), 7, "folders must be a list of strings in brackets"),
        (imapAccount("folders = []"), 7, "folders is empty"),
        (imapAccount("connections = 0"), 7, "connections = 0 must be between 1 and 16"),
        (imapAccount("max_connections = 1"), 7, "max_connections = 1 must be between 2 and 1000"),
        (imapAccount("connections = 4\nmax_connections = 4"), 8, "max_connections = 4 must be more than connections = 4: the daemon's push needs"),
        (imapAccount("max_delete_fraction = 2"), 7, "max_delete_fraction = 2 must be a number from 0 to 1"),
        (imapAccount("compress = \"yes\""), 7, "compress = \"yes\" is not one of \"auto\", true, false"),
        (imapAccount("keep_on_server = true"), 7, "keep_on_server is a POP3 setting"),
        (imapAccount("password = \"x\""), 5, "set either password or password_command, not both"),
        (imapAccount("layout = \"mh\""), 7, "layout = \"mh\" is not one of fs, maildir++"),
        (imapAccount("allow_plaintext = \"yes\""), 7, "allow_plaintext = \"yes\" must be true or false"),
        (imapAccount("ca_file = \"/nonexistent/ca.pem\""), 7, "ca_file = \"/nonexistent/ca.pem\": No such file or directory"),
        (imapAccount("maildir2 = 1"), 7, "unknown setting \"maildir2\""),
        (pop3Account("folders = [\"*\"]"), 8, "folders is an IMAP setting; a POP3 account has none"),
        (pop3Account("idle = [\"INBOX\"]"), 8, "idle is an IMAP setting"),
        (pop3Account("direction = \"pull\""), 8, "direction is an IMAP setting"),
        (pop3Account("delete = \"none\""), 8, "delete is an IMAP setting"),
        (pop3Account("connections = 1"), 8, "connections is an IMAP setting"),
        (pop3Account("max_connections = 3"), 8, "max_connections is an IMAP setting"),
        (pop3Account("delete_after_days = 14"), 8, "delete_after_days applies only with keep_on_server = true"),
        ("[[account]]\nname = \"x\"\n", 1, "needs host = "),
        ("[[account]]\nname = \"x\"\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\n", 1, "needs maildir = "),
        ("[[account]]\nname = \"x\"\nhost = \"h\"\nmaildir = \"/m\"\nusername = \"u\"\n", 1, "needs password_command = "),
        ("[[account]]\nhost = \"h\"\nmaildir = \"/m\"\nusername = \"u\"\npassword = \"p\"\n", 1, "needs name = "),
        ("[[account]]\nname = \"a b\"\nhost = \"h\"\nmaildir = \"/m\"\nusername = \"u\"\npassword = \"p\"\n", 2, "must be a non-empty word"),
        (imapAccount() + "\n" + imapAccount(), 8, "account name \"work\" is used twice (first on line 1)"),
        ("[general]\nlog_level = \"verbose\"\n", 2, "log_level = \"verbose\" is not one of error, warn, info, debug"),
        ("[general]\nstatedir = \"/x\"\n", 2, "unknown setting \"statedir\" in [general]; did you mean state_dir?"),
        ("[account]\nname = \"x\"\n", 1, "write [[account]] with two brackets"),
        ("[[accounts]]\nname = \"x\"\n", 1, "did you mean [[account]]?"),
        ("[general]\nstate_dir = \"$NOT_SET_ANYWHERE/x\"\n", 2, "uses $NOT_SET_ANYWHERE, which is not set"),
        ("tls = ssl\n", 1, "strings need quotes"),
    ])
    func badConfigurations(text: String, line: Int, message: String) {
        do {
            _ = try load(text)
            Issue.record("accepted:\n\(text)")
        } catch {
            let match = error.diagnostics.first { $0.message.contains(message) }
            #expect(match != nil, "expected \"\(message)\", got \(error.diagnostics)")
            #expect(match?.line == line, "\(error.diagnostics)")
            #expect(match?.description.hasPrefix("cfg.toml:\(line): ") == true)
        }
    }

    @Test func allErrorsAreReportedAtOnce() {
        do {
            _ = try load(imapAccount("tls = \"ssl\"\nport = 0\nbogus = 1"))
            Issue.record("accepted")
        } catch {
            #expect(error.diagnostics.map(\.line) == [7, 8, 9])
        }
    }

    /// Two IMAP accounts on one Maildir (or one inside the other) would upload each other's
    /// mail; a POP3 account may deliver into an IMAP account's Maildir.
    @Test func imapAccountsNeedMaildirsApart() throws {
        func second(_ maildir: String, protocol proto: String = "imap") -> String {
            "[[account]]\nname = \"home\"\nprotocol = \"\(proto)\"\nhost = \"h\"\nusername = \"me\"\npassword_command = \"echo\"\nmaildir = \"\(maildir)\""
        }
        for (maildir, how) in [("~/Mail/work/", "is also the maildir of"), ("/home/u/Mail//./work", "is also the maildir of"),
                               ("~/Mail/work/Friends", "is inside the maildir of"), ("~/Mail", "contains the maildir of")] {
            do {
                _ = try load(imapAccount() + "\n" + second(maildir))
                Issue.record("accepted \(maildir)")
            } catch {
                #expect(error.diagnostics.count == 1)
                #expect(error.diagnostics.first?.line == 14, "\(error.diagnostics)")
                #expect(error.diagnostics.first?.message.contains("\(how) account \"work\" (line 6)") == true, "\(error.diagnostics)")
            }
        }
        #expect(try load(imapAccount() + "\n" + second("~/Mail/work2")).accounts.count == 2)
        #expect(try load(imapAccount() + "\n" + second("~/Mail/work", protocol: "pop3")).accounts.count == 2)
        #expect(try load(imapAccount() + "\n" + second("~/Mail/work/ISP", protocol: "pop3")).accounts.count == 2)
    }

    @Test func plaintextNeedsExplicitConsent() throws {
        let config = try load(imapAccount("tls = \"none\"\nallow_plaintext = true"))
        #expect(config.accounts[0].tls == .none && config.accounts[0].port == 143)
        #expect(config.warnings.contains { $0.message.contains("unencrypted") })
    }

    @Test func passwordInReadableFileWarns() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let text = pop3Account()
        writeFile(dir.path + "/open.toml", text, mode: 0o644)
        writeFile(dir.path + "/closed.toml", text, mode: 0o600)
        let open = try ConfigurationLoader.load(path: dir.path + "/open.toml", environment: testEnvironment)
        #expect(open.warnings.contains { $0.message.contains("chmod 600") && $0.line == 1 })
        let closed = try ConfigurationLoader.load(path: dir.path + "/closed.toml", environment: testEnvironment)
        #expect(closed.warnings.isEmpty)
    }

    @Test func missingFileSaysWhatToDo() {
        do {
            _ = try ConfigurationLoader.load(path: "/nonexistent/config.toml", environment: testEnvironment)
            Issue.record("loaded")
        } catch {
            #expect(error.description.contains("/nonexistent/config.toml"))
            #expect(error.description.contains("mailmirror init"))
        }
    }

    @Test func resolvedRenderingMasksSecretsAndParsesBack() throws {
        let config = try load(pop3Account() + "\n" + imapAccount("folders = [\"INBOX\", \"a\\\"b\"]"))
        let text = config.renderResolved()
        #expect(!text.contains("\"pw\""))
        #expect(text.contains("password = \"********\""))
        #expect(text.contains("password_command = \"echo secret\""))
        // What check-config prints is itself a valid config with the same meaning.
        let again = try ConfigurationLoader.parse(text: text, path: "resolved", environment: testEnvironment)
        var reparsed = again.accounts[1]
        reparsed.line = config.accounts[1].line
        #expect(reparsed == config.accounts[1])
        #expect(again.accounts[0].port == config.accounts[0].port)
    }
}

@Suite struct PasswordCommandTests {
    @Test func firstLineOfOutputIsTheSecret() async throws {
        let secret = try await PasswordSource.command("printf 's3cret\\nsecond line\\n'").resolve(account: "a")
        #expect(secret == "s3cret")
    }

    @Test func literalPassword() async throws {
        #expect(try await PasswordSource.literal("x y").resolve(account: "a") == "x y")
    }

    @Test func failingCommandShowsItsStderr() async {
        do {
            _ = try await PasswordSource.command("echo 'gpg: decryption failed' >&2; exit 2").resolve(account: "work")
            Issue.record("resolved")
        } catch {
            #expect(error.description.contains("account \"work\""))
            #expect(error.description.contains("exit status 2"))
            #expect(error.description.contains("gpg: decryption failed"))
        }
    }

    @Test func hangingCommandTimesOut() async {
        let start = monotonicSeconds()
        do {
            _ = try await PasswordSource.command("sleep 30").resolve(account: "a", timeout: 0.5)
            Issue.record("resolved")
        } catch {
            #expect(error.description.contains("did not finish"))
        }
        // Well before the command's own 30 s (a loaded machine once took 10.6 s to get here).
        #expect(monotonicSeconds() - start < 20)
    }

    @Test func emptyOutputIsAnError() async {
        await #expect(throws: PasswordError.self) { _ = try await PasswordSource.command("true").resolve(account: "a") }
    }
}
