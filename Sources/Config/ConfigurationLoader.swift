#if canImport(Glibc)
import Glibc
#endif
import Support

/// Reads and validates a config file: unknown keys, bad values and missing settings are
/// errors naming the line and what to write instead; all of them are reported at once.
public enum ConfigurationLoader {
    /// Loads `path`. `environment` feeds `~`/`$VAR` expansion (default: the process's).
    public static func load(path: String, environment: [String: String]? = nil) throws(ConfigurationError) -> Configuration {
        let env = environment ?? SettingValues.processEnvironment()
        let text: String
        do { text = try readTextFile(path) }
        catch {
            let hint = error.code == ENOENT
                ? "no config file here; create one from config.example.toml, or run `mailmirror init you@example.com`"
                : String(cString: strerror(error.code))
            throw ConfigurationError(diagnostics: [ConfigDiagnostic(path: path, line: 0, message: hint)])
        }
        var config = try parse(text: text, path: path, environment: env)
        // A password stored in a file others can read deserves a warning (not an error:
        // the file is the user's to protect).
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            for account in config.accounts {
                if case .literal = account.password {
                    config.warnings.append(ConfigDiagnostic(path: path, line: account.line,
                        message: "account \"\(account.name)\" stores its password in a file that group/others can read; run `chmod 600 \(path)` or use password_command"))
                }
            }
        }
        return config
    }

    /// Validates config text already in memory (`path` is used in messages only).
    public static func parse(text: String, path: String, environment: [String: String]) throws(ConfigurationError) -> Configuration {
        let root: TOMLTable
        do { root = try TOMLParser.parse(text) }
        catch { throw ConfigurationError(diagnostics: [ConfigDiagnostic(path: path, line: error.line, message: error.message)]) }
        var v = Validator(path: path, environment: environment)
        let config = v.validate(root)
        if !v.errors.isEmpty { throw ConfigurationError(diagnostics: v.errors) }
        return config
    }

    /// Why a file could not be read (an errno).
    public typealias FileError = TextFile.FileError

    /// A whole text file (at most 16 MiB).
    public static func readTextFile(_ path: String) throws(FileError) -> String { try TextFile.read(path) }
}

/// Walks the TOML tree, collecting diagnostics.
private struct Validator {
    let path: String
    let environment: [String: String]
    var errors: [ConfigDiagnostic] = []
    var warnings: [ConfigDiagnostic] = []
    /// Line of each account's `maildir` setting, by the line of its `[[account]]` header.
    var maildirLines: [Int: Int] = [:]

    init(path: String, environment: [String: String]) {
        self.path = path
        self.environment = environment
    }

    mutating func error(_ line: Int, _ message: String) {
        errors.append(ConfigDiagnostic(path: path, line: line, message: message))
    }

    mutating func warn(_ line: Int, _ message: String) {
        warnings.append(ConfigDiagnostic(path: path, line: line, message: message))
    }

    mutating func validate(_ root: TOMLTable) -> Configuration {
        var general = GeneralSettings(stateDirectory: SettingValues.defaultStateDirectory(environment: environment),
                                      logLevel: .info, onNewMail: nil)
        var accounts: [AccountConfiguration] = []
        for entry in root.entries {
            switch (entry.key, entry.value) {
            case ("general", .table(let table)):
                general = validateGeneral(table, defaults: general)
            case ("account", .array(let items)) where items.allSatisfy({ if case .table = $0 { true } else { false } }):
                for case .table(let table) in items {
                    if let account = validateAccount(table, general: general) { accounts.append(account) }
                }
            case ("account", .table):
                error(entry.line, "write [[account]] with two brackets: each account is one element of a list")
            case ("general", _), ("account", _):
                error(entry.line, "\(entry.key) must be a [\(entry.key == "account" ? "[account]" : "general")] section")
            default:
                let hint = entry.key == "accounts" ? "; did you mean [[account]]?" : ""
                error(entry.line, "unknown setting \"\(entry.key)\" at the top level; the file has a [general] section and [[account]] sections\(hint)")
            }
        }
        var seen: [String: Int] = [:]
        for account in accounts {
            if let first = seen[account.name] {
                error(account.line, "account name \"\(account.name)\" is used twice (first on line \(first)); give each account its own name")
            } else {
                seen[account.name] = account.line
            }
        }
        checkMaildirsApart(accounts)
        if accounts.isEmpty && errors.isEmpty {
            warn(0, "no [[account]] is configured; add one (see config.example.toml) or run `mailmirror init you@example.com`")
        }
        return Configuration(path: path, general: general, accounts: accounts, warnings: warnings)
    }

    /// Two IMAP accounts may not share a Maildir, nor keep one inside the other's: each would
    /// take the other's downloads for new local mail and upload them to its own server (and
    /// a deletion in one would reach both). A POP3 account may deliver into an IMAP account's
    /// Maildir (or into a folder inside it): that is how POP3 mail reaches an IMAP server.
    mutating func checkMaildirsApart(_ accounts: [AccountConfiguration]) {
        let imap = accounts.filter { $0.protocol == .imap && !$0.maildir.isEmpty }
        for (i, account) in imap.enumerated() {
            let mine = Self.normalized(account.maildir)
            for other in imap[..<i] {
                let theirs = Self.normalized(other.maildir)
                let how: String
                if mine == theirs { how = "is also the maildir of" }
                else if mine.hasPrefix(theirs == "/" ? "/" : theirs + "/") { how = "is inside the maildir of" }
                else if theirs.hasPrefix(mine == "/" ? "/" : mine + "/") { how = "contains the maildir of" }
                else { continue }
                error(maildirLines[account.line] ?? account.line,
                      "maildir = \"\(account.maildir)\" \(how) account \"\(other.name)\" (line \(maildirLines[other.line] ?? other.line)); give each IMAP account a Maildir of its own, e.g. \"~/Mail/\(account.name)\" (sharing one, each would upload the other's mail to its server)")
            }
        }
    }

    /// `path` with `//`, `/./` and `dir/..` folded and no trailing `/` (no symbolic links followed).
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    mutating func validateGeneral(_ table: TOMLTable, defaults: GeneralSettings) -> GeneralSettings {
        var r = TableReader(table: table, section: "[general]")
        var g = defaults
        if let s = r.string("state_dir", &self), let p = expand(s, r.line("state_dir")) { g.stateDirectory = p }
        if let level = r.enumeration("log_level", LogLevel.allCases.map(\.name), &self) { g.logLevel = LogLevel(name: level)! }
        g.onNewMail = r.string("on_new_mail", &self)
        r.reportUnknown(&self, known: ["state_dir", "log_level", "on_new_mail"])
        return g
    }

    mutating func expand(_ value: String, _ line: Int) -> String? {
        do { return try SettingValues.expandPath(value, environment: environment) }
        catch {
            self.error(line, "\"\(value)\" uses $\(error.name), which is not set in the environment")
            return nil
        }
    }

    static let imapOnlyKeys = ["folders", "direction", "delete", "keywords", "notmuch_config", "keyword_tags", "notmuch_config", "keyword_tags", "idle", "connections", "max_connections", "push"]
    static let pop3OnlyKeys = ["keep_on_server", "delete_after_days"]
    static let accountKeys = ["name", "protocol", "host", "port", "tls", "allow_plaintext", "ca_file", "username",
                              "password", "password_command", "auth", "maildir", "layout", "folders", "direction",
                              "delete", "keywords", "notmuch_config", "keyword_tags", "idle", "push", "poll_interval", "connections", "max_connections", "compress", "max_delete_fraction",
                              "max_age", "max_message_size", "on_new_mail", "keep_on_server", "delete_after_days"]

    mutating func validateAccount(_ table: TOMLTable, general: GeneralSettings) -> AccountConfiguration? {
        let errorsBefore = errors.count
        var r = TableReader(table: table, section: "[[account]]")
        let header = table.line
        let name = r.string("name", &self)
        let label = name.map { "account \"\($0)\"" } ?? "this account"
        if name == nil && table["name"] == nil { error(header, "\(label) needs name = \"…\" (a short word such as \"work\")") }
        if let name, name.isEmpty || name.contains("/") || name.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 32 } == true }) {
            error(r.line("name"), "name = \"\(name)\" must be a non-empty word without spaces or /")
        }
        let proto = r.enumeration("protocol", MailProtocol.allCases.map(\.rawValue), &self).flatMap(MailProtocol.init) ?? .imap
        let tls = r.enumeration("tls", TLSMode.allCases.map(\.rawValue), &self).flatMap(TLSMode.init) ?? .implicit
        let host = r.string("host", &self)
        if host == nil && table["host"] == nil { error(header, "\(label) needs host = \"…\" (the server's name, e.g. \"imap.example.com\")") }
        if let host, host.isEmpty || host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            error(r.line("host"), "host = \"\(host)\" is not a host name; write just the name, e.g. \"imap.example.com\"")
        }
        var port = AccountConfiguration.defaultPort(for: proto, tls: tls)
        if let p = r.integer("port", &self) {
            if p < 1 || p > 65535 { error(r.line("port"), "port = \(p) is not a TCP port (1-65535)") } else { port = UInt16(p) }
        }
        let allowPlaintext = r.boolean("allow_plaintext", &self) ?? false
        var caFile: String?
        if let s = r.string("ca_file", &self), let p = expand(s, r.line("ca_file")) {
            if access(p, R_OK) != 0 {
                error(r.line("ca_file"), "ca_file = \"\(s)\": \(String(cString: strerror(errno))); point it at a readable PEM file of CA certificates")
            }
            caFile = p
        }
        let username = r.string("username", &self)
        if username == nil && table["username"] == nil { error(header, "\(label) needs username = \"…\" (the login name, often the email address)") }
        var password: PasswordSource?
        let literal = r.string("password", &self)
        let command = r.string("password_command", &self)
        if literal != nil && command != nil {
            error(r.line("password_command"), "set either password or password_command, not both")
        }
        if let literal { password = .literal(literal) }
        if let command {
            if command.trimmingSpaces().isEmpty { error(r.line("password_command"), "password_command is empty; write the command that prints the password, e.g. \"pass show mail/work\"") }
            password = .command(command)
        }
        let auth = r.enumeration("auth", AuthMechanism.allCases.map(\.rawValue), &self).flatMap(AuthMechanism.init) ?? .auto
        if auth == .apop && proto != .pop3 {
            error(r.line("auth"), "auth = \"apop\" exists only for POP3 accounts; IMAP accounts use auto, plain, login, xoauth2 or oauthbearer")
        }
        if password == nil && table["password"] == nil && table["password_command"] == nil {
            error(header, "\(label) needs password_command = \"…\" (e.g. \"pass show mail/\(name ?? "work")\") or password = \"…\"")
        }
        if (auth == .xoauth2 || auth == .oauthbearer), case .literal = password {
            warn(r.line("password"), "\(label): auth = \"\(auth.rawValue)\" needs a fresh OAuth2 token each time; use password_command to print one")
        }
        var maildir = ""
        if let s = r.string("maildir", &self) {
            if s.isEmpty { error(r.line("maildir"), "maildir is empty; write a folder such as \"~/Mail/\(name ?? "work")\"") }
            else if let p = expand(s, r.line("maildir")) {
                maildir = p
                maildirLines[header] = r.line("maildir")
                if !p.hasPrefix("/") { error(r.line("maildir"), "maildir = \"\(s)\" must be an absolute path or start with ~") }
            }
        } else if table["maildir"] == nil {
            error(header, "\(label) needs maildir = \"…\" (where its mail is stored, e.g. \"~/Mail/\(name ?? "work")\")")
        }
        let layout = r.enumeration("layout", MaildirLayout.allCases.map(\.rawValue), &self).flatMap(MaildirLayout.init) ?? .fs

        if tls == .none && !allowPlaintext {
            error(r.line("tls"), "tls = \"none\" would send the password unencrypted; use tls = \"starttls\" or \"implicit\", or add allow_plaintext = true if you accept that")
        } else if tls == .none {
            warn(r.line("tls"), "\(label) sends its password unencrypted (tls = \"none\", allow_plaintext = true)")
        } else if allowPlaintext {
            warn(r.line("allow_plaintext"), "allow_plaintext has an effect only with tls = \"none\"")
        }

        // Settings that belong to the other protocol.
        for key in proto == .pop3 ? Self.imapOnlyKeys : Self.pop3OnlyKeys where table[key] != nil {
            if proto == .pop3 {
                error(r.line(key), "\(key) is an IMAP setting; a POP3 account has none (it drains the server's INBOX into the maildir's INBOX)")
            } else {
                error(r.line(key), "\(key) is a POP3 setting; remove it, or set protocol = \"pop3\"")
            }
            r.markUsed(key)
        }
        var folders = ["*"]
        var direction = SyncDirection.both
        var delete = DeletePolicy.both
        var keywords = KeywordMode.maildir
        var notmuchConfig: String?
        var keywordTags: [String: String] = [:]
        var idle = ["INBOX"]
        var push = PushMethod.auto
        var connections = 2
        var maxConnections: Int?
        var keepOnServer = false
        var deleteAfterDays: Int?
        if proto == .imap {
            if let f = r.stringArray("folders", &self) {
                if f.isEmpty { error(r.line("folders"), "folders is empty; write [\"*\"] for every folder") }
                for pattern in f where pattern.isEmpty || pattern == "!" {
                    error(r.line("folders"), "folders has an empty pattern; write a folder name or a pattern such as \"Archive/*\"")
                }
                folders = f
            }
            direction = r.enumeration("direction", SyncDirection.allCases.map(\.rawValue), &self).flatMap(SyncDirection.init) ?? .both
            delete = r.enumeration("delete", DeletePolicy.allCases.map(\.rawValue), &self).flatMap(DeletePolicy.init) ?? .both
            keywords = r.enumeration("keywords", KeywordMode.allCases.map(\.rawValue), &self).flatMap(KeywordMode.init) ?? .maildir
            if let path = r.string("notmuch_config", &self) { notmuchConfig = expand(path, r.line("notmuch_config")) }
            if let entry = table["keyword_tags"] {
                r.markUsed("keyword_tags")
                keywordTags = validateKeywordTags(entry)
            }
            if keywords != .notmuch {
                for key in ["notmuch_config", "keyword_tags"] where table[key] != nil {
                    warn(r.line(key), "\(key) applies only with keywords = \"notmuch\"")
                }
            }
            if let i = r.stringArray("idle", &self) { idle = i }
            push = r.enumeration("push", PushMethod.allCases.map(\.rawValue), &self).flatMap(PushMethod.init) ?? .auto
            if let c = r.integer("connections", &self) {
                if c < 1 || c > 16 { error(r.line("connections"), "connections = \(c) must be between 1 and 16") } else { connections = Int(c) }
            }
            if let m = r.integer("max_connections", &self) {
                if m < 2 || m > 1000 { error(r.line("max_connections"), "max_connections = \(m) must be between 2 and 1000 (the server's limit per user; 10 if unsure)") }
                else if m <= connections { error(r.line("max_connections"), "max_connections = \(m) must be more than connections = \(connections): the daemon's push needs a connection of its own") }
                else { maxConnections = Int(m) }
            }
        } else {
            keepOnServer = r.boolean("keep_on_server", &self) ?? false
            if let d = r.integer("delete_after_days", &self) {
                if d < 1 || d > 36500 { error(r.line("delete_after_days"), "delete_after_days = \(d) must be a number of days, 1 or more") }
                else if !keepOnServer { error(r.line("delete_after_days"), "delete_after_days applies only with keep_on_server = true (without it, messages are deleted right after download)") }
                else { deleteAfterDays = Int(d) }
            }
        }
        let pollInterval = r.duration("poll_interval", &self) ?? 300
        var compress = CompressSetting.auto
        if let entry = table["compress"] {
            r.markUsed("compress")
            switch entry.value {
            case .boolean(let b): compress = b ? .always : .never
            case .string("auto"): compress = .auto
            default: error(entry.line, "compress = \(render(entry.value)) is not one of \"auto\", true, false")
            }
        }
        var maxDeleteFraction = 0.5
        if let entry = table["max_delete_fraction"] {
            r.markUsed("max_delete_fraction")
            let value: Double? = switch entry.value {
            case .float(let d): d
            case .integer(let i): Double(i)
            default: nil
            }
            if let value, value >= 0, value <= 1 { maxDeleteFraction = value }
            else { error(entry.line, "max_delete_fraction = \(render(entry.value)) must be a number from 0 to 1 (0.5 holds a pass that would delete more than half a folder)") }
        }
        let maxAge = r.duration("max_age", &self)
        let maxMessageSize = r.size("max_message_size", &self)
        if proto == .pop3 {
            for key in ["compress", "max_delete_fraction", "max_age"] where table[key] != nil {
                warn(r.line(key), "\(key) has no effect on a POP3 account")
            }
        }
        let onNewMail = r.string("on_new_mail", &self) ?? general.onNewMail
        r.reportUnknown(&self, known: Self.accountKeys)

        guard errors.count == errorsBefore, let name, let host, let username else { return nil }
        return AccountConfiguration(
            name: name, protocol: proto, host: host, port: port, tls: tls, allowPlaintext: allowPlaintext,
            caFile: caFile, username: username, password: password, auth: auth, maildir: maildir, layout: layout,
            folders: folders, direction: direction, delete: delete, keywords: keywords, notmuchConfig: notmuchConfig, keywordTags: keywordTags, idle: idle, push: push, pollInterval: pollInterval,
            connections: connections, maxConnections: maxConnections ?? max(10, connections + 1), compress: compress, maxDeleteFraction: maxDeleteFraction, maxAge: maxAge,
            maxMessageSize: maxMessageSize, onNewMail: onNewMail, keepOnServer: keepOnServer,
            deleteAfterDays: deleteAfterDays, line: header)
    }
}

private extension Validator {
    /// `keyword_tags = { "$Junk" = "spam" }`: IMAP keyword → notmuch tag. A keyword is an
    /// IMAP atom; a system flag is carried by the file name's letters (notmuch's own
    /// `synchronize_flags` makes those tags), so it cannot be mapped here.
    mutating func validateKeywordTags(_ entry: TOMLTable.Entry) -> [String: String] {
        guard case .table(let t) = entry.value else {
            error(entry.line, "keyword_tags must be a table of keyword = tag, e.g. keyword_tags = { \"$Junk\" = \"spam\" }")
            return [:]
        }
        var result: [String: String] = [:]
        for item in t.entries {
            guard case .string(let tag) = item.value, !tag.isEmpty else {
                error(item.line, "keyword_tags: \"\(item.key)\" must map to a tag in quotes, e.g. \"\(item.key)\" = \"spam\"")
                continue
            }
            if item.key.hasPrefix("\\") {
                error(item.line, "keyword_tags: \(item.key) is an IMAP flag, carried by the file name (D F P R S T); "
                      + "set synchronize_flags = true in notmuch's config to see it as a tag, and remove this line")
                continue
            }
            if item.key.isEmpty || item.key.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || "(){%*\"\\]".utf8.contains($0) }) {
                error(item.line, "keyword_tags: \"\(item.key)\" is not an IMAP keyword (no spaces or ( ) { % * \" \\ ])")
                continue
            }
            result[item.key] = tag
        }
        return result
    }
}

/// TOML rendering of a value for messages (`tls = "ssl"`).
func render(_ value: TOMLValue) -> String {
    switch value {
    case .string(let s): return "\"\(s)\""
    case .integer(let i): return String(i)
    case .float(let d): return String(d)
    case .boolean(let b): return b ? "true" : "false"
    case .array(let items): return "[" + items.map(render).joined(separator: ", ") + "]"
    case .table: return "{…}"
    }
}

/// Typed access to one table's keys that records which were used, so the rest can be
/// reported as unknown.
private struct TableReader {
    let table: TOMLTable
    let section: String
    var used: Set<String> = []

    init(table: TOMLTable, section: String) {
        self.table = table
        self.section = section
    }

    func line(_ key: String) -> Int { table[key]?.line ?? table.line }
    mutating func markUsed(_ key: String) { used.insert(key) }

    mutating func string(_ key: String, _ v: inout Validator) -> String? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard case .string(let s) = entry.value else {
            v.error(entry.line, "\(key) must be a string in quotes, e.g. \(key) = \"\(render(entry.value))\"")
            return nil
        }
        return s
    }

    mutating func integer(_ key: String, _ v: inout Validator) -> Int64? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard case .integer(let i) = entry.value else {
            v.error(entry.line, "\(key) = \(render(entry.value)) must be a whole number without quotes")
            return nil
        }
        return i
    }

    mutating func boolean(_ key: String, _ v: inout Validator) -> Bool? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard case .boolean(let b) = entry.value else {
            v.error(entry.line, "\(key) = \(render(entry.value)) must be true or false (without quotes)")
            return nil
        }
        return b
    }

    mutating func enumeration(_ key: String, _ allowed: [String], _ v: inout Validator) -> String? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard case .string(let s) = entry.value, allowed.contains(s) else {
            v.error(entry.line, "\(key) = \(render(entry.value)) is not one of \(allowed.joined(separator: ", "))")
            return nil
        }
        return s
    }

    mutating func stringArray(_ key: String, _ v: inout Validator) -> [String]? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        if case .array(let items) = entry.value {
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else {
                    v.error(entry.line, "\(key) must be a list of strings, e.g. \(key) = [\"INBOX\", \"Archive/*\"]")
                    return nil
                }
                out.append(s)
            }
            return out
        }
        v.error(entry.line, "\(key) must be a list of strings in brackets, e.g. \(key) = [\(render(entry.value))]")
        return nil
    }

    mutating func duration(_ key: String, _ v: inout Validator) -> Int? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard let d = SettingValues.duration(entry.value) else {
            v.error(entry.line, "\(key) = \(render(entry.value)) is not a duration; write seconds (300) or a number with s, m, h or d (\"5m\", \"90d\")")
            return nil
        }
        return d
    }

    mutating func size(_ key: String, _ v: inout Validator) -> Int64? {
        guard let entry = table[key] else { return nil }
        used.insert(key)
        guard let s = SettingValues.size(entry.value) else {
            v.error(entry.line, "\(key) = \(render(entry.value)) is not a size; write bytes or a number with K, M or G (\"50M\")")
            return nil
        }
        return s
    }

    func reportUnknown(_ v: inout Validator, known: [String]) {
        for entry in table.entries where !used.contains(entry.key) {
            if known.contains(entry.key) { continue }
            let suggestion = closest(to: entry.key, in: known).map { "; did you mean \($0)?" } ?? ""
            v.error(entry.line, "unknown setting \"\(entry.key)\" in \(section)\(suggestion)")
        }
    }
}

/// The known key within edit distance 2 of `key`, for "did you mean" hints.
private func closest(to key: String, in known: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let k = Array(key.lowercased().replacingDashes())
    return known.map { ($0, distance(k, Array($0))) }.filter { $0.1 <= 2 }.min(by: { $0.1 < $1.1 })?.0
}

extension String {
    fileprivate func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
