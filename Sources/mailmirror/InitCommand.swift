import Autoconfig
import Config
import Support

/// `mailmirror init EMAIL [--config PATH] [--protocol imap|pop3] [--maildir DIR] [--name NAME] [--offline]`
/// and `mailmirror init --list-providers`.
enum InitCommand {
    static func run(_ args: Arguments) async -> Int32 {
        if args.listProviders {
            var out = "Built-in providers (mailmirror init looks these up first):\n"
            for p in ProviderTable.providers {
                out += "\n\(p.name): \(p.domains.joined(separator: ", "))\n"
                for s in p.servers {
                    out += "  \(s.kind.rawValue.uppercased().padding(4)) \(s.host):\(s.port) \(s.security == .implicit ? "TLS" : "STARTTLS")\n"
                }
                if let notes = p.notes { out += "  note: \(notes)\n" }
            }
            StandardStream.output.write(out)
            return 0
        }
        let email = args.positional[0]
        guard let domain = ProviderTable.domain(of: email) else {
            StandardStream.error.write("mailmirror init: \"\(email)\" is not an email address (expected name@example.com)\n")
            return 2
        }
        let env = SettingValues.processEnvironment()
        let path = args.configPath ?? SettingValues.defaultConfigPath(environment: env)
        var discovery = AccountDiscovery()
        discovery.kind = args.protocolName == "pop3" ? .pop3 : .imap
        discovery.offline = args.offline
        // Tests point the network steps at local servers; users never need these.
        if let urls = env["MAILMIRROR_AUTOCONFIG_URLS"] { discovery.autoconfigURLs = urls.split(separator: " ").map(String.init) }
        if let ca = env["MAILMIRROR_CA_FILE"] { discovery.caFile = ca }
        if env["MAILMIRROR_NO_DNS"] != nil { discovery.useDNS = false }
        if let guess = env["MAILMIRROR_GUESS"] {   // host:implicitPort:starttlsPort
            let parts = guess.split(separator: ":")
            if parts.count == 3, let a = UInt16(parts[1]), let b = UInt16(parts[2]) { discovery.guesses = [(String(parts[0]), a, b)] }
        }
        let logger = Logger(level: .info)
        guard let found = await discovery.discover(email, log: { logger.info($0) }) else {
            StandardStream.error.write("""
            mailmirror init: no settings found for \(domain) \(args.offline ? "in the built-in table (--offline)" : "(built-in table, autoconfig, DNS SRV, MX, imap./mail. guesses)").
            Add the account by hand: copy an [[account]] from config.example.toml into \(path) and set host, port and tls.

            """)
            return 1
        }
        let name = args.name ?? defaultName(email: email, domain: domain)
        let maildir = args.maildir ?? "~/Mail/\(name)"
        let text = AccountWriter.accountText(name: name, email: email, settings: found, maildir: maildir)
        do { try AccountWriter.append(text, name: name, to: path) } catch {
            StandardStream.error.write("mailmirror init: \(error)\n")
            return 2
        }
        do { _ = try ConfigurationLoader.load(path: path, environment: env) } catch {
            StandardStream.error.write("mailmirror init: wrote \(path), but it does not validate:\n\(error)\n")
            return 2
        }
        StandardStream.output.write("""
        Found \(found.server.kind.rawValue.uppercased()) settings for \(email) via \(found.source).
        Added to \(path):
        \(text)
        Next steps:
          1. Set password_command for "\(name)" in \(path) (e.g. "pass show mail/\(name)").\(found.notes.map { "\n     Note: \($0)" } ?? "")
          2. Check it:   mailmirror check-config --connect
          3. Mirror it:  mailmirror sync \(name)
          4. Keep it in sync:  systemctl --user enable --now mailmirror

        """)
        return 0
    }

    /// "gmail" for me@gmail.com, "example" for me@mail.example.org.
    static func defaultName(email: String, domain: String) -> String {
        let labels = domain.split(separator: ".")
        let label = labels.count >= 2 ? labels[labels.count - 2] : labels.first ?? "mail"
        return String(label).filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.isEmpty ? "mail" : String(label)
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
