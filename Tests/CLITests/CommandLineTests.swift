import Testing
import TestSupport

/// The built `mailmirror` binary, run as a user would run it.
@Suite struct CommandLineTests {
    @Test func versionAndHelp() async throws {
        let version = try await runMailmirror(["--version"])
        #expect(version.status == 0)
        #expect(version.standardOutput.hasPrefix("mailmirror "))
        let help = try await runMailmirror(["--help"])
        #expect(help.status == 0)
        for command in ["sync", "daemon", "status", "check-config", "init"] {
            #expect(help.standardOutput.contains("mailmirror \(command)"))
        }
    }

    @Test func usageErrorsExitTwo() async throws {
        let none = try await runMailmirror([])
        #expect(none.status == 2)
        let unknown = try await runMailmirror(["frobnicate"])
        #expect(unknown.status == 2)
        #expect(unknown.standardError.contains("unknown command \"frobnicate\""))
        let badOption = try await runMailmirror(["check-config", "--json"])
        #expect(badOption.status == 2)
        #expect(badOption.standardError.contains("unknown option --json"))
        let noPath = try await runMailmirror(["check-config", "--config"])
        #expect(noPath.status == 2)
        #expect(noPath.standardError.contains("--config needs a value"))
    }

    @Test func checkConfigPrintsTheResolvedConfigWithSecretsMasked() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        writeFile(dir.path + "/c.toml", """
        [[account]]
        name = "work"
        host = "imap.example.com"
        username = "me"
        password = "hunter2"
        maildir = "~/Mail/work"
        """, mode: 0o600)
        let out = try await runMailmirror(["check-config", "--config", dir.path + "/c.toml"], environment: ["HOME": "/home/tester"])
        #expect(out.status == 0)
        #expect(out.standardOutput.contains("maildir = \"/home/tester/Mail/work\""))
        #expect(out.standardOutput.contains("port = 993"))
        #expect(!out.standardOutput.contains("hunter2"))
        #expect(out.standardError.isEmpty)
    }

    @Test func checkConfigReportsErrorsCompilerStyle() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/bad.toml"
        writeFile(path, """
        [general]
        log_level = "info"

        [[account]]
        name = "work"
        host = "imap.example.com"
        tls = "ssl"
        username = "me"
        password_command = "pass show x"
        maildir = "~/Mail/work"
        colour = "blue"
        """)
        let out = try await runMailmirror(["check-config", "--config", path])
        #expect(out.status == 2)
        #expect(out.standardError.contains("\(path):7: tls = \"ssl\" is not one of implicit, starttls, none"))
        #expect(out.standardError.contains("\(path):11: unknown setting \"colour\""))
        #expect(out.standardOutput.isEmpty)
    }

    @Test func defaultConfigPathFollowsXDG() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let out = try await runMailmirror(["check-config"], environment: ["XDG_CONFIG_HOME": dir.path])
        #expect(out.status == 2)
        #expect(out.standardError.contains("\(dir.path)/mailmirror/config.toml"))
    }

    @Test func checkConfigConnectReachesEveryAccount() async throws {
        let fixture = try await DovecotFixture.shared()
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/c.toml"
        let user = try fixture.makeUser("cli")
        let popUser = try fixture.makeUser("clipop")   // one POP3 session per mailbox at a time
        func account(_ name: String, _ proto: String, _ port: UInt16, _ tls: String, ca: Bool = true, host: String = "127.0.0.1",
                     password: String? = nil) -> String {
            let user = name == "pop3stls" ? popUser : user
            return """
            [[account]]
            name = "\(name)"
            protocol = "\(proto)"
            host = "\(host)"
            port = \(port)
            tls = "\(tls)"
            \(ca ? "ca_file = \"\(fixture.caFile)\"" : "")
            username = "\(user.name)"
            password_command = "echo \(password ?? user.password)"
            maildir = "\(dir.path)/\(name)"

            """
        }
        writeFile(path, account("imaps", "imap", fixture.imapsPort, "implicit")
                  + account("imapstarttls", "imap", fixture.imapPort, "starttls", host: "localhost")
                  + account("pop3s", "pop3", fixture.pop3sPort, "implicit")
                  + account("pop3stls", "pop3", fixture.pop3Port, "starttls"))
        let ok = try await runMailmirror(["check-config", "--config", path, "--connect"])
        #expect(ok.status == 0, "\(ok.standardOutput)\(ok.standardError)")
        let lines = ok.standardOutput.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("imaps: ok, imaps 127.0.0.1:\(fixture.imapsPort), TLSv1.") && $0.contains("logged in as \(user.name)") && $0.contains("CONDSTORE") })
        #expect(lines.contains { $0.hasPrefix("imapstarttls: ok, imap+starttls localhost:\(fixture.imapPort), TLSv1.") })
        #expect(lines.contains { $0.hasPrefix("pop3s: ok, pop3s 127.0.0.1:\(fixture.pop3sPort), TLSv1.") && $0.contains("logged in as \(user.name), 0 message(s) on the server") })
        #expect(lines.contains { $0.hasPrefix("pop3stls: ok, pop3+stls 127.0.0.1:\(fixture.pop3Port), TLSv1.") }, "\(ok.standardOutput)")

        // One account that cannot verify the server: exit 1, the others still reported ok.
        writeFile(path, account("imaps", "imap", fixture.imapsPort, "implicit")
                  + account("untrusted", "imap", fixture.imapsPort, "implicit", ca: false)
                  + account("badpassword", "imap", fixture.imapsPort, "implicit", password: "wrong"))
        let failed = try await runMailmirror(["check-config", "--config", path, "--connect"])
        #expect(failed.status == 1)
        #expect(failed.standardOutput.contains("imaps: ok"))
        #expect(failed.standardOutput.contains("untrusted: failed, the TLS certificate of 127.0.0.1:\(fixture.imapsPort) is not trusted"))
        #expect(failed.standardOutput.contains("badpassword: failed, 127.0.0.1:\(fixture.imapsPort) refused the login (Authentication failed.); check username and password_command"))
    }
}
