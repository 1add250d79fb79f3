/// A command line that cannot be run; the message says what to type instead (exit 2).
struct UsageError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The parsed command line: one command and its options (DESIGN.md, "Command line").
struct Arguments {
    enum Command: String, CaseIterable {
        case sync, daemon, status, checkConfig = "check-config", initAccount = "init"
    }

    var command: Command
    var configPath: String?
    var force = false
    var dryRun = false
    /// `sync --stats`: what the process's memory was made of, on standard error at exit.
    var stats = false
    var json = false
    var connect = false
    var offline = false
    var listProviders = false
    /// `init`: --protocol, --maildir, --name.
    var protocolName: String?
    var maildir: String?
    var name: String?
    /// Accounts for `sync`, the address for `init`.
    var positional: [String] = []

    /// Options each command accepts.
    static let allowed: [Command: Set<String>] = [
        .sync: ["--config", "--force", "--dry-run", "--stats"],
        .daemon: ["--config"],
        .status: ["--config", "--json"],
        .checkConfig: ["--config", "--connect"],
        .initAccount: ["--config", "--protocol", "--maildir", "--name", "--offline", "--list-providers"],
    ]

    init(command: Command, arguments: ArraySlice<String>) throws(UsageError) {
        self.command = command
        var rest = arguments
        let allowed = Self.allowed[command] ?? []
        while let arg = rest.popFirst() {
            if arg == "--" { positional.append(contentsOf: rest); break }
            if arg.hasPrefix("-") && arg != "-" {
                var name = arg
                var inlineValue: String?
                if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
                    name = String(arg[..<eq])
                    inlineValue = String(arg[arg.index(after: eq)...])
                }
                guard allowed.contains(name) else {
                    throw UsageError(message: "mailmirror \(command.rawValue): unknown option \(name); it takes \(allowed.sorted().joined(separator: ", ")) (see mailmirror --help)")
                }
                switch name {
                case "--config", "--protocol", "--maildir", "--name":
                    guard let value = inlineValue ?? rest.popFirst(), !value.isEmpty, !value.hasPrefix("--") else {
                        let example = ["--config": "--config ~/.config/mailmirror/config.toml", "--protocol": "--protocol imap",
                                       "--maildir": "--maildir ~/Mail/work", "--name": "--name work"][name]!
                        throw UsageError(message: "mailmirror \(command.rawValue): \(name) needs a value, e.g. \(example)")
                    }
                    switch name {
                    case "--config": configPath = value
                    case "--protocol":
                        guard value == "imap" || value == "pop3" else {
                            throw UsageError(message: "mailmirror init: --protocol is imap or pop3, not \"\(value)\"")
                        }
                        protocolName = value
                    case "--maildir": maildir = value
                    default: self.name = value
                    }
                case "--offline": offline = true
                case "--list-providers": listProviders = true
                case "--force": force = true
                case "--dry-run": dryRun = true
                case "--stats": stats = true
                case "--json": json = true
                case "--connect": connect = true
                default: break
                }
            } else {
                positional.append(arg)
            }
        }
        switch command {
        case .sync: break
        case .initAccount:
            if listProviders { break }
            guard positional.count == 1, positional[0].contains("@") else {
                throw UsageError(message: "mailmirror init: give one email address, e.g. mailmirror init you@example.com")
            }
        default:
            if let extra = positional.first {
                throw UsageError(message: "mailmirror \(command.rawValue): unexpected argument \"\(extra)\" (see mailmirror --help)")
            }
        }
    }
}

let usageText = """
mailmirror — keep Maildir folders and IMAP folders identical, or drain POP3 into a Maildir

Usage:
  mailmirror sync   [--config PATH] [--force] [--dry-run] [--stats] [ACCOUNT...]
                                                                         one pass, then exit
  mailmirror daemon [--config PATH]                                      run until SIGTERM
  mailmirror status [--config PATH] [--json]                             per account/folder state
  mailmirror check-config [--config PATH] [--connect]                    validate and print the resolved config;
                                                                         --connect: reach each account's server
  mailmirror init EMAIL [--config PATH] [--protocol imap|pop3] [--maildir DIR] [--name NAME] [--offline]
                                                                         write an account found from the address
  mailmirror init --list-providers                                       the built-in provider table
  mailmirror --help | --version

sync --force lets deletions held by max_delete_fraction through, looks at every folder in
full, sends again the local messages the server refused before, and fetches again the
server messages it could not send before (`status` lists both). sync --stats ends with a
line on standard error of what the process's memory was made of (peak, binary, libraries, heap).

The default config is $XDG_CONFIG_HOME/mailmirror/config.toml (~/.config/mailmirror/config.toml).
Exit codes: 0 all done; 1 some account or folder failed, or the server refused a message; 2 usage or configuration error.

"""
