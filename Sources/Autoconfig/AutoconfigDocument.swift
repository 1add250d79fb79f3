/// Reads the incoming servers of a Thunderbird autoconfig document
/// (`clientConfig` / `emailProvider` / `incomingServer type="imap|pop3"` with `hostname`,
/// `port`, `socketType` SSL|STARTTLS|plain, `username`). A small tag reader, not a general
/// XML parser: it understands exactly the elements it needs and ignores the rest.
public enum AutoconfigDocument {
    /// The servers listed, in document order; plain-text ones are dropped (mailmirror never
    /// proposes `tls = "none"`).
    public static func incomingServers(_ xml: String, email: String) -> [ServerSettings] {
        var servers: [ServerSettings] = []
        var rest = Substring(xml)
        while let open = rest.range(ofTag: "<incomingServer") {
            guard let tagEnd = rest[open.upperBound...].firstIndex(of: ">"),
                  let close = rest[tagEnd...].range(ofTag: "</incomingServer>") else { break }
            let attributes = rest[open.upperBound..<tagEnd]
            let body = rest[rest.index(after: tagEnd)..<close.lowerBound]
            rest = rest[close.upperBound...]
            guard let type = attribute("type", in: attributes), let kind = ServerSettings.Kind(rawValue: type.lowercased()),
                  kind != .smtp, let host = element("hostname", in: body), !host.isEmpty,
                  let port = element("port", in: body).flatMap({ UInt16($0) }) else { continue }
            let security: ServerSettings.Security
            switch element("socketType", in: body)?.uppercased() {
            case "SSL": security = .implicit
            case "STARTTLS": security = .starttls
            default: continue
            }
            let username = element("username", in: body) ?? "%EMAILADDRESS%"
            let resolvedHost = host.replacingPlaceholder("%EMAILDOMAIN%", with: ProviderTable.domain(of: email) ?? "")
            servers.append(ServerSettings(kind, resolvedHost, port, security, usernameIsLocalPart: username == "%EMAILLOCALPART%"))
        }
        return servers
    }

    static func element(_ name: String, in body: Substring) -> String? {
        guard let open = body.range(ofTag: "<\(name)>"), let close = body[open.upperBound...].range(ofTag: "</\(name)>") else { return nil }
        return String(body[open.upperBound..<close.lowerBound]).trimmingWhitespace().xmlUnescaped()
    }

    static func attribute(_ name: String, in tag: Substring) -> String? {
        for quote in ["\"", "'"] {
            if let r = tag.range(ofTag: "\(name)=\(quote)"), let end = tag[r.upperBound...].firstIndex(of: Character(quote)) {
                return String(tag[r.upperBound..<end])
            }
        }
        return nil
    }
}

extension StringProtocol where SubSequence == Substring {
    /// The first occurrence of `needle` (ASCII, case-sensitive), without Foundation.
    func range(ofTag needle: String) -> Range<Index>? {
        let n = Array(needle)
        guard !n.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i] == n[0] {
                var j = i
                var k = 0
                while k < n.count, j < endIndex, self[j] == n[k] { j = index(after: j); k += 1 }
                if k == n.count { return i..<j }
            }
            i = index(after: i)
        }
        return nil
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }

    func xmlUnescaped() -> String {
        var s = self
        for (entity, value) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&amp;", "&")] {
            s = s.replacingPlaceholder(entity, with: value)
        }
        return s
    }

    func replacingPlaceholder(_ target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(ofTag: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
