import Support
import Maildir

/// The validated configuration of one config file: general settings and accounts, with
/// every default applied and every path expanded.
public struct Configuration: Sendable {
    /// The file it was read from.
    public var path: String
    public var general: GeneralSettings
    public var accounts: [AccountConfiguration]
    /// Non-fatal findings (a password in a world-readable file, a setting that has no effect).
    public var warnings: [ConfigDiagnostic]

    /// The account called `name`, if any.
    public func account(named name: String) -> AccountConfiguration? {
        accounts.first(where: { $0.name == name })
    }
}

/// The `[general]` table.
public struct GeneralSettings: Sendable, Equatable {
    /// Folder of `state.sqlite3`, expanded (default `$XDG_STATE_HOME/mailmirror`).
    public var stateDirectory: String
    public var logLevel: LogLevel
    /// Default hook for accounts that set none.
    public var onNewMail: String?
}

/// `protocol`: what the account speaks.
public enum MailProtocol: String, Sendable, CaseIterable { case imap, pop3 }

/// `tls`: how the connection is secured.
public enum TLSMode: String, Sendable, CaseIterable { case implicit, starttls, none }

/// `auth`: the login mechanism (auto picks the best the server offers). For POP3, `login`
/// is USER/PASS and `apop` (POP3 only) is used only when asked for.
public enum AuthMechanism: String, Sendable, CaseIterable { case auto, plain, login, xoauth2, oauthbearer, apop }

/// `layout`: how folder names map to Maildir directories (DESIGN.md, "Maildir").
public typealias MaildirLayout = Maildir.MaildirLayout

/// `direction`: which side mailmirror may write.
public enum SyncDirection: String, Sendable, CaseIterable { case both, pull, push }

/// `delete`: whose deletions propagate to the other side.
public enum DeletePolicy: String, Sendable, CaseIterable { case both, pull, push, none }

/// `keywords`: where a message's IMAP keywords live locally (docs/keywords.md).
public enum KeywordMode: String, Sendable, CaseIterable {
    /// Dovecot's scheme: the folder's `dovecot-keywords` and letters `a`…`z` in file names.
    case maildir
    /// notmuch tags of the message's file.
    case notmuch
    /// Not mirrored.
    case none
}

/// `push`: how the daemon learns of server changes.
public enum PushMethod: String, Sendable, CaseIterable {
    /// NOTIFY (RFC 5465) when the server offers it, else IDLE.
    case auto
    /// IDLE on the `idle` folders even when NOTIFY is offered.
    case idle
}

/// `compress`: COMPRESS=DEFLATE use.
public enum CompressSetting: String, Sendable, CaseIterable {
    /// Only when the server is neither on loopback nor on a private network.
    case auto
    case always = "true"
    case never = "false"
}

/// Where the account's secret comes from.
public enum PasswordSource: Sendable, Equatable {
    /// `password = "..."` in the file.
    case literal(String)
    /// `password_command = "..."`: the first line of its output.
    case command(String)
}

/// One `[[account]]`.
public struct AccountConfiguration: Sendable, Equatable {
    public var name: String
    public var `protocol`: MailProtocol
    public var host: String
    public var port: UInt16
    public var tls: TLSMode
    public var allowPlaintext: Bool
    /// Expanded path of a PEM CA bundle to trust instead of the system store.
    public var caFile: String?
    public var username: String
    public var password: PasswordSource?
    public var auth: AuthMechanism
    /// Expanded Maildir root.
    public var maildir: String
    public var layout: MaildirLayout
    /// Folder patterns, later ones win; `!` excludes (IMAP only).
    public var folders: [String]
    public var direction: SyncDirection
    public var delete: DeletePolicy
    /// Where keywords live locally (IMAP only).
    public var keywords: KeywordMode
    /// `keywords = "notmuch"`: the notmuch config file (`NOTMUCH_CONFIG`; nil: notmuch's default).
    public var notmuchConfig: String?
    /// `keyword_tags`: IMAP keyword → notmuch tag, where they differ.
    public var keywordTags: [String: String]
    public var idle: [String]
    /// How the daemon learns of server changes.
    public var push: PushMethod
    /// Seconds between checks in the daemon.
    public var pollInterval: Int
    public var connections: Int
    /// The most connections open to the server at once (`max_connections`): the sync
    /// pass's `connections` plus the daemon's push (one for NOTIFY, one per IDLE folder).
    /// Servers cap connections per user (Dovecot 10 per address, Gmail 15, Exchange 16).
    public var maxConnections: Int
    /// How many folders the daemon may IDLE on, each on its own connection.
    public var idleConnections: Int { max(1, maxConnections - connections) }
    public var compress: CompressSetting
    public var maxDeleteFraction: Double
    /// Seconds; only newer messages are pulled.
    public var maxAge: Int?
    /// Bytes; larger messages are skipped.
    public var maxMessageSize: Int64?
    public var onNewMail: String?
    /// POP3: leave messages on the server.
    public var keepOnServer: Bool
    /// POP3 with keep_on_server: delete what was delivered this many days ago.
    public var deleteAfterDays: Int?
    /// Line of the `[[account]]` header, for messages.
    public var line: Int

    /// The port a protocol and TLS mode use when none is set.
    public static func defaultPort(for proto: MailProtocol, tls: TLSMode) -> UInt16 {
        switch (proto, tls) {
        case (.imap, .implicit): 993
        case (.imap, _): 143
        case (.pop3, .implicit): 995
        case (.pop3, _): 110
        }
    }
}

/// One finding about a config file, printed compiler-style: `PATH:LINE: message`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var message: String

    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(path):\(line): \(message)" : "\(path): \(message)" }
}

/// A config file that cannot be used; `diagnostics` lists every problem found, in order.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
