#if canImport(Glibc)
import Glibc
#endif
import IMAP
import Support
import Transport
import TestSupport

/// A test message (CRLF line endings, as on the wire) with dot-starting lines.
func pop3Message(_ i: Int, bodyLines: Int = 5) -> [UInt8] {
    var text = "From: sender\(i)@example.com\r\nTo: me@example.com\r\nSubject: message \(i)\r\nMessage-ID: <pop-\(i)@mailmirror.test>\r\n\r\n"
    for l in 0..<bodyLines { text += "line \(l) of message \(i)\r\n" }
    text += ".starts with a dot\r\n..two dots\r\n.\r\n"   // the last one is a lone dot inside the body
    text += "end\r\n"
    return Array(text.utf8)
}

/// CRLF → LF, what a Maildir file must contain.
func lf(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for (i, b) in bytes.enumerated() where !(b == 13 && i + 1 < bytes.count && bytes[i + 1] == 10) { out.append(b) }
    return out
}

extension MailTestServer {
    /// Puts messages into the user's INBOX over IMAP (MULTIAPPEND batches).
    func fill(user: (name: String, password: String), _ messages: [[UInt8]]) async throws {
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: caFile)
        let s = try await IMAPSession.connect(host: host, port: imapsPort, security: .implicitTLS(tls))
        try await s.login(username: user.name, secret: user.password)
        for start in stride(from: 0, to: messages.count, by: 50) {
            let batch = messages[start..<min(start + 50, messages.count)].map {
                AppendMessage(flags: [], internalDate: nil, source: BytesMessageSource($0))
            }
            _ = try await s.append(Array(batch), to: .inbox)
        }
        await s.logout()
    }

    /// Messages in the user's INBOX on the server.
    func serverCount(user: (name: String, password: String)) async throws -> Int {
        let tls = TLSClientConfiguration(verifyName: "127.0.0.1", caFile: caFile)
        let s = try await IMAPSession.connect(host: host, port: imapsPort, security: .implicitTLS(tls))
        try await s.login(username: user.name, secret: user.password)
        let count = try await s.status(.inbox).messages ?? -1
        await s.logout()
        return count
    }

    /// A config file for a POP3 account of `user`; returns its path.
    func pop3Config(in dir: String, user: (name: String, password: String), starttls: Bool = false,
                    password: String? = nil, extra: String = "") -> String {
        let path = dir + "/config.toml"
        writeFile(path, """
        [general]
        state_dir = "\(dir)/state"

        [[account]]
        name = "isp"
        protocol = "pop3"
        host = "127.0.0.1"
        port = \((starttls ? pop3PortIfAny : pop3sPortIfAny) ?? 0)
        tls = "\(starttls ? "starttls" : "implicit")"
        ca_file = "\(caFile)"
        username = "\(user.name)"
        password_command = "echo \(password ?? user.password)"
        maildir = "\(dir)/mail"
        \(extra)
        """, mode: 0o600)
        return path
    }
}

/// Every message file in the Maildir's INBOX (fs layout), as bytes.
func localMessages(_ maildir: String) -> [[UInt8]] {
    var result: [[UInt8]] = []
    for sub in ["new", "cur"] {
        for name in listDirectory("\(maildir)/INBOX/\(sub)") {
            if let bytes = readBytes("\(maildir)/INBOX/\(sub)/\(name)") { result.append(bytes) }
        }
    }
    return result
}
