/// How to reach one kind of server.
public struct ServerSettings: Sendable, Equatable {
    public enum Kind: String, Sendable { case imap, pop3, smtp }
    public enum Security: String, Sendable { case implicit, starttls }
    public var kind: Kind
    public var host: String
    public var port: UInt16
    public var security: Security
    /// What to log in with: the full address or only its local part.
    public var usernameIsLocalPart: Bool

    public init(_ kind: Kind, _ host: String, _ port: UInt16, _ security: Security, usernameIsLocalPart: Bool = false) {
        self.kind = kind
        self.host = host
        self.port = port
        self.security = security
        self.usernameIsLocalPart = usernameIsLocalPart
    }
}

/// A mail provider's settings.
public struct Provider: Sendable, Equatable {
    public var name: String
    public var domains: [String]
    public var servers: [ServerSettings]
    /// What the user must know (app passwords, OAuth2, enabling IMAP).
    public var notes: String?
    /// `auth` to write (xoauth2 where passwords no longer work).
    public var auth: String?

    public func server(_ kind: ServerSettings.Kind) -> ServerSettings? { servers.first { $0.kind == kind } }
}

/// The built-in table of large providers (step (a) of the lookup).
public enum ProviderTable {
    public static let providers: [Provider] = [
        Provider(name: "Gmail", domains: ["gmail.com", "googlemail.com"],
                 servers: [.init(.imap, "imap.gmail.com", 993, .implicit), .init(.pop3, "pop.gmail.com", 995, .implicit), .init(.smtp, "smtp.gmail.com", 465, .implicit)],
                 notes: "enable IMAP in Gmail's settings (Forwarding and POP/IMAP) and use an app password (Google Account → Security → App passwords), or auth = \"xoauth2\" with a token command"),
        Provider(name: "Outlook.com", domains: ["outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "outlook.de", "hotmail.de", "live.de", "hotmail.fr", "live.fr"],
                 servers: [.init(.imap, "outlook.office365.com", 993, .implicit), .init(.pop3, "outlook.office365.com", 995, .implicit), .init(.smtp, "smtp-mail.outlook.com", 587, .starttls)],
                 notes: "Microsoft accepts only OAuth2: set auth = \"xoauth2\" and a password_command that prints a fresh access token (e.g. from oama or mutt_oauth2.py)", auth: "xoauth2"),
        Provider(name: "Office 365", domains: ["office365.com", "onmicrosoft.com"],
                 servers: [.init(.imap, "outlook.office365.com", 993, .implicit), .init(.pop3, "outlook.office365.com", 995, .implicit), .init(.smtp, "smtp.office365.com", 587, .starttls)],
                 notes: "Microsoft 365 accepts only OAuth2: set auth = \"xoauth2\" and a password_command that prints a fresh access token", auth: "xoauth2"),
        Provider(name: "Yahoo", domains: ["yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "ymail.com", "rocketmail.com"],
                 servers: [.init(.imap, "imap.mail.yahoo.com", 993, .implicit), .init(.pop3, "pop.mail.yahoo.com", 995, .implicit), .init(.smtp, "smtp.mail.yahoo.com", 465, .implicit)],
                 notes: "generate an app password in Yahoo's account security settings"),
        Provider(name: "AOL", domains: ["aol.com", "aim.com"],
                 servers: [.init(.imap, "imap.aol.com", 993, .implicit), .init(.pop3, "pop.aol.com", 995, .implicit), .init(.smtp, "smtp.aol.com", 465, .implicit)],
                 notes: "generate an app password in AOL's account security settings"),
        Provider(name: "iCloud", domains: ["icloud.com", "me.com", "mac.com"],
                 servers: [.init(.imap, "imap.mail.me.com", 993, .implicit, usernameIsLocalPart: true), .init(.smtp, "smtp.mail.me.com", 587, .starttls)],
                 notes: "use an app-specific password (appleid.apple.com → Sign-In and Security); iCloud has no POP3"),
        Provider(name: "Yandex", domains: ["yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz", "yandex.ua"],
                 servers: [.init(.imap, "imap.yandex.com", 993, .implicit), .init(.pop3, "pop.yandex.com", 995, .implicit), .init(.smtp, "smtp.yandex.com", 465, .implicit)],
                 notes: "allow IMAP/POP3 access in Yandex Mail's settings and use an app password"),
        Provider(name: "Mail.ru", domains: ["mail.ru", "bk.ru", "inbox.ru", "list.ru", "internet.ru"],
                 servers: [.init(.imap, "imap.mail.ru", 993, .implicit), .init(.pop3, "pop.mail.ru", 995, .implicit), .init(.smtp, "smtp.mail.ru", 465, .implicit)],
                 notes: "create a password for external applications in Mail.ru's security settings"),
        Provider(name: "GMX", domains: ["gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.com", "gmx.fr"],
                 servers: [.init(.imap, "imap.gmx.net", 993, .implicit), .init(.pop3, "pop.gmx.net", 995, .implicit), .init(.smtp, "mail.gmx.net", 587, .starttls)],
                 notes: "enable POP3/IMAP access in GMX's settings first"),
        Provider(name: "WEB.DE", domains: ["web.de"],
                 servers: [.init(.imap, "imap.web.de", 993, .implicit), .init(.pop3, "pop3.web.de", 995, .implicit), .init(.smtp, "smtp.web.de", 587, .starttls)],
                 notes: "enable POP3/IMAP access in WEB.DE's settings first"),
        Provider(name: "Fastmail", domains: ["fastmail.com", "fastmail.fm", "messagingengine.com"],
                 servers: [.init(.imap, "imap.fastmail.com", 993, .implicit), .init(.pop3, "pop.fastmail.com", 995, .implicit), .init(.smtp, "smtp.fastmail.com", 465, .implicit)],
                 notes: "create an app password (Settings → Privacy & Security → Integrations)"),
        Provider(name: "Zoho", domains: ["zoho.com", "zohomail.com", "zoho.eu"],
                 servers: [.init(.imap, "imap.zoho.com", 993, .implicit), .init(.pop3, "pop.zoho.com", 995, .implicit), .init(.smtp, "smtp.zoho.com", 465, .implicit)],
                 notes: "enable IMAP/POP access in Zoho Mail's settings; with two-factor authentication use an app password"),
        Provider(name: "Proton Mail (via Proton Mail Bridge)", domains: ["proton.me", "protonmail.com", "protonmail.ch", "pm.me"],
                 servers: [.init(.imap, "127.0.0.1", 1143, .starttls), .init(.smtp, "127.0.0.1", 1025, .starttls)],
                 notes: "Proton Mail is reached through Proton Mail Bridge on this machine: use the username and password the Bridge shows, and ca_file = the Bridge's exported certificate"),
    ]

    /// The provider of an address's domain (or of a parent domain: `mail.yahoo.com` → Yahoo).
    public static func provider(for email: String) -> Provider? {
        guard let domain = domain(of: email) else { return nil }
        var candidate = Substring(domain)
        while true {
            if let p = providers.first(where: { $0.domains.contains(String(candidate)) }) { return p }
            guard let dot = candidate.firstIndex(of: ".") else { return nil }
            candidate = candidate[candidate.index(after: dot)...]
            if !candidate.contains(".") { return nil }
        }
    }

    /// The lowercased domain of an address, nil when it is not one.
    public static func domain(of email: String) -> String? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else { return nil }
        return parts[1].lowercased()
    }

    /// MX hosts that reveal a provider (step (d)): suffix → provider name.
    public static let mxProviders: [(suffix: String, provider: String)] = [
        ("google.com", "Gmail"), ("googlemail.com", "Gmail"), ("outlook.com", "Office 365"), ("protection.outlook.com", "Office 365"),
        ("yahoodns.net", "Yahoo"), ("messagingengine.com", "Fastmail"), ("zoho.com", "Zoho"), ("zoho.eu", "Zoho"),
        ("mail.ru", "Mail.ru"), ("yandex.net", "Yandex"), ("yandex.ru", "Yandex"), ("gmx.net", "GMX"), ("web.de", "WEB.DE"),
        ("icloud.com", "iCloud"), ("protonmail.ch", "Proton Mail (via Proton Mail Bridge)"),
    ]

    /// The provider whose mail exchangers `mx` is one of.
    public static func provider(forMX mx: String) -> Provider? {
        let host = mx.lowercased().trimmingDot()
        guard let entry = mxProviders.first(where: { host == $0.suffix || host.hasSuffix("." + $0.suffix) }) else { return nil }
        return providers.first { $0.name == entry.provider }
    }
}

extension String {
    func trimmingDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}
