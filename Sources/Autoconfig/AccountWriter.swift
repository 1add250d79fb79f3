#if canImport(Glibc)
import Glibc
#endif
import Config

/// Appends an `[[account]]` to a config file: created (with a `[general]` section, mode
/// 0600, folder 0700) when missing; otherwise appended after what is there, comments and
/// all. Never overwrites an account of the same name.
public enum AccountWriter {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The TOML text of the account.
    public static func accountText(name: String, email: String, settings: DiscoveredSettings, maildir: String) -> String {
        let s = settings.server
        let username = s.usernameIsLocalPart ? String(email.split(separator: "@")[0]) : email
        var lines = [
            "",
            "# Added by `mailmirror init \(email)`: found via \(settings.source).",
        ]
        if let notes = settings.notes { lines.append("# Note: \(notes)") }
        lines += [
            "[[account]]",
            "name = \(quote(name))",
            "protocol = \(quote(s.kind.rawValue))",
            "host = \(quote(s.host))",
            "port = \(s.port)",
            "tls = \(quote(s.security.rawValue))",
            "username = \(quote(username))",
            "# Replace with a command that prints the password (or OAuth2 token), e.g. \"pass show mail/\(name)\":",
            "password_command = \(quote("echo 'set password_command for account \(name) in the mailmirror config' >&2; exit 1"))",
        ]
        if let auth = settings.auth { lines.append("auth = \(quote(auth))") }
        lines.append("maildir = \(quote(maildir))")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Appends `text` (an account named `name`) to `path`.
    public static func append(_ text: String, name: String, to path: String) throws(Failure) {
        if access(path, F_OK) == 0 {
            if let existing = try? ConfigurationLoader.load(path: path), existing.account(named: name) != nil {
                throw Failure(description: "\(path) already has an account named \"\(name)\"; choose another name with --name")
            }
            if let raw = try? ConfigurationLoader.readTextFile(path), raw.contains("name = \(quote(name))") {
                throw Failure(description: "\(path) already has an account named \"\(name)\"; choose another name with --name")
            }
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            // Start on a line of its own even if the file lacks a final newline.
            var st = stat()
            fstat(fd, &st)
            let prefix = st.st_size > 0 && !endsWithNewline(path) ? "\n" : ""
            try writeAll(fd, prefix + text, path: path)
        } else {
            try makeParent(of: path)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let header = """
            # mailmirror configuration (see config.example.toml for every setting).
            [general]
            # state_dir = "~/.local/state/mailmirror"
            # log_level = "info"

            """
            try writeAll(fd, header + text, path: path)
        }
    }

    static func endsWithNewline(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var last: UInt8 = 10
        if lseek(fd, -1, SEEK_END) >= 0 { _ = read(fd, &last, 1) }
        return last == 10
    }

    static func writeAll(_ fd: Int32, _ text: String, path: String) throws(Failure) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    static func makeParent(of path: String) throws(Failure) {
        var current = ""
        for part in path.split(separator: "/").dropLast() {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw Failure(description: "cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}
