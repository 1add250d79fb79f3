extension Configuration {
    /// The resolved configuration as TOML, every default filled in and secrets masked:
    /// what `mailmirror check-config` prints.
    public func renderResolved() -> String {
        var lines: [String] = ["# \(path), resolved", "[general]"]
        lines.append("state_dir = \(quote(general.stateDirectory))")
        lines.append("log_level = \(quote(general.logLevel.name))")
        if let hook = general.onNewMail { lines.append("on_new_mail = \(quote(hook))") }
        for a in accounts {
            lines.append("")
            lines.append("[[account]]")
            lines.append("name = \(quote(a.name))")
            lines.append("protocol = \(quote(a.protocol.rawValue))")
            lines.append("host = \(quote(a.host))")
            lines.append("port = \(a.port)")
            lines.append("tls = \(quote(a.tls.rawValue))")
            lines.append("allow_plaintext = \(a.allowPlaintext)")
            if let ca = a.caFile { lines.append("ca_file = \(quote(ca))") }
            lines.append("username = \(quote(a.username))")
            switch a.password {
            case .literal: lines.append("password = \"********\"")
            case .command(let c): lines.append("password_command = \(quote(c))")
            case nil: break
            }
            lines.append("auth = \(quote(a.auth.rawValue))")
            lines.append("maildir = \(quote(a.maildir))")
            lines.append("layout = \(quote(a.layout.rawValue))")
            if a.protocol == .imap {
                lines.append("folders = [\(a.folders.map(quote).joined(separator: ", "))]")
                if ["imap.gmail.com", "imap.googlemail.com"].contains(a.host.lowercased()) {
                    lines.append("# Gmail: \"[Gmail]/All Mail\", \"Important\" and \"Starred\" are views of the label folders and are not mirrored"
                                 + " unless named in folders (`check-config --connect` lists them)")
                }
                lines.append("direction = \(quote(a.direction.rawValue))")
                lines.append("delete = \(quote(a.delete.rawValue))")
                lines.append("keywords = \(quote(a.keywords.rawValue))")
                if a.keywords == .notmuch {
                    if let c = a.notmuchConfig { lines.append("notmuch_config = \(quote(c))") }
                    if !a.keywordTags.isEmpty {
                        lines.append("keyword_tags = { " + a.keywordTags.sorted { $0.key < $1.key }.map { "\(quote($0.key)) = \(quote($0.value))" }.joined(separator: ", ") + " }")
                    }
                }
                lines.append("idle = [\(a.idle.map(quote).joined(separator: ", "))]")
                lines.append("push = \(quote(a.push.rawValue))")
                lines.append("connections = \(a.connections)")
                lines.append("max_connections = \(a.maxConnections)")
                lines.append("compress = \(a.compress == .auto ? "\"auto\"" : a.compress.rawValue)")
                lines.append("max_delete_fraction = \(a.maxDeleteFraction)")
            } else {
                lines.append("keep_on_server = \(a.keepOnServer)")
                if let d = a.deleteAfterDays { lines.append("delete_after_days = \(d)") }
            }
            lines.append("poll_interval = \(quote(formatDuration(a.pollInterval)))")
            if let age = a.maxAge { lines.append("max_age = \(quote(formatDuration(age)))") }
            if let size = a.maxMessageSize { lines.append("max_message_size = \(size)") }
            if let hook = a.onNewMail { lines.append("on_new_mail = \(quote(hook))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A TOML basic string with the escapes it needs.
public func quote(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Seconds as the largest whole unit: 300 -> "5m", 7776000 -> "90d", 90 -> "90s".
public func formatDuration(_ seconds: Int) -> String {
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where seconds % size == 0 {
        return "\(seconds / size)\(unit)"
    }
    return "\(seconds)s"
}
