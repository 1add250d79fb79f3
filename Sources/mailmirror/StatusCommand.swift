#if canImport(Glibc)
import Glibc
#endif
import Config
import Maildir
import State
import Support
import Sync

/// `mailmirror status [--config PATH] [--json]`: per account and folder, from the state file
/// (and a scan of each Maildir folder): message counts on each side, last successful pass,
/// pending journal entries, last error. Reads only; contacts no server.
enum StatusCommand {
    struct FolderStatus {
        var name: String
        var local: Int?
        var remote: Int?
        var lastSync: Int64?
        var pending: Int
        var lastError: String?
        /// Left on the server on purpose (max_message_size): UID and size.
        var skipped: [(uid: UInt32, size: Int64?)] = []
        /// Local messages the server refused: base name, size, the server's words.
        var refused: [(name: String, size: Int64, reason: String)] = []
        /// Server messages the server could not send (its FETCH failed alone): UID, its words.
        var unfetchable: [(uid: UInt32, reason: String)] = []
        /// Keywords kept in the state only (a Maildir folder's 27th and on, docs/keywords.md).
        var keywordsInState: [String] = []
        /// Keywords local messages carry that the server folder cannot keep.
        var unstorableKeywords: [String] = []
    }

    /// What a running daemon reports of an account (from `state_dir/daemon.status`).
    struct DaemonView {
        var state: String
        var push: String
        var backoffUntil: Int64?
        var lastEvent: String?
        var lastEventTime: Int64?
        var lastError: String?
    }

    struct AccountStatus {
        var daemon: DaemonView?
        var name: String
        var proto: String
        var state: String
        var lastSync: Int64?
        var lastError: String?
        var folders: [FolderStatus]
    }

    static func run(_ args: Arguments, configuration config: Configuration) -> Int32 {
        var accounts: [AccountStatus] = []
        let daemon = readDaemonStatus(config.general.stateDirectory)
        let stateFile = config.general.stateDirectory + "/" + StateStore.fileName
        let state: StateStore? = access(stateFile, R_OK) == 0 ? (try? StateStore.scratchCopy(of: config.general.stateDirectory)) : nil
        for account in config.accounts {
            let store = MaildirStore(root: account.maildir, layout: account.layout)
            var status = AccountStatus(daemon: daemon[account.name], name: account.name, proto: account.protocol.rawValue, state: "never synced", folders: [])
            guard let state, let id = try? state.existingAccount(named: account.name) else {
                accounts.append(status)
                continue
            }
            let summary = try? state.accountSummary(id)
            status.lastSync = summary?.lastSync
            status.lastError = summary?.lastError
            status.state = status.lastError != nil ? "error" : status.lastSync != nil ? "synced" : "never synced"
            let pendingAll = (try? state.pendingJournalEntries(of: id)) ?? []
            if account.protocol == .pop3 {
                let records = (try? state.pop3Messages(of: id)) ?? []
                let inbox = store.folder(["INBOX"])
                status.folders.append(FolderStatus(name: "INBOX", local: (try? inbox.scan().messages.count),
                                                   remote: records.filter { $0.deletedAt == nil }.count,
                                                   lastSync: status.lastSync, pending: pendingAll.count, lastError: status.lastError))
            } else {
                for record in (try? state.folders(of: id)) ?? [] {
                    guard let folder = MaildirLayout.fs.folder(forRelativePath: record.localName) else { continue }
                    let pairs = (try? state.pairs(in: record.id)) ?? []
                    let local = store.folder(folder)
                    let codes = account.keywords == .maildir ? ((try? state.keywords(in: record.id)) ?? [:]) : [:]
                    // The state-only keywords some message carries (a code once given stays named).
                    var held = MessageFlags()
                    if !codes.isEmpty { for p in pairs { held = held.union(MessageFlags(p.flags)) } }
                    let keywordsInState = held.stateSlots.compactMap { codes[$0] }
                    let noted: String? = (try? state.unstorableKeywords(in: record.id)) ?? nil
                    let unstorable = noted.map { $0.split(separator: " ").map(String.init) } ?? []
                    status.folders.append(FolderStatus(
                        name: FolderNaming.displayName(folder), local: local.exists ? (try? local.scan().messages.count) : 0,
                        remote: pairs.filter { ($0.uid?.rawValue ?? 0) != 0 }.count, lastSync: record.lastSync,
                        pending: pendingAll.filter { $0.folder == record.id }.count, lastError: record.lastError,
                        skipped: ((try? state.skipped(in: record.id)) ?? []).map { ($0.uid.rawValue, $0.size) },
                        refused: ((try? state.refused(in: record.id)) ?? [:]).map { ($0.key, $0.value.size, $0.value.reason) }.sorted { $0.name < $1.name },
                        unfetchable: ((try? state.unfetchable(in: record.id)) ?? [:]).filter(\.value.failed)
                            .map { ($0.key.rawValue, $0.value.reason) }.sorted { $0.uid < $1.uid },
                        keywordsInState: keywordsInState, unstorableKeywords: unstorable))
                }
                for (path, reason) in ((try? state.unmirrorable(of: id)) ?? [:]).sorted(by: { $0.key < $1.key }) {
                    guard let folder = MaildirLayout.fs.folder(forRelativePath: path) else { continue }
                    let local = store.folder(folder)
                    status.folders.append(FolderStatus(name: FolderNaming.displayName(folder), local: local.exists ? (try? local.scan().messages.count) : 0,
                                                       remote: nil, lastSync: nil, pending: 0, lastError: "not mirrored: " + reason))
                }
            }
            accounts.append(status)
        }
        StandardStream.output.write(args.json ? json(accounts) : text(accounts))
        return 0
    }

    static func text(_ accounts: [AccountStatus]) -> String {
        var out = ""
        for a in accounts {
            out += "\(a.name) (\(a.proto)): \(a.state)\(a.lastSync.map { ", last sync \(iso8601($0))" } ?? "")\(a.lastError.map { ", last error: \($0)" } ?? "")\n"
            if let d = a.daemon {
                var line = "  daemon: \(d.state)"
                if d.state == "connected" { line += " (push: \(d.push))" }
                if let until = d.backoffUntil, d.state == "backing off" { line += " until \(iso8601(until))" }
                if let e = d.lastEvent { line += ", last event: \(e)\(d.lastEventTime.map { " at \(iso8601($0))" } ?? "")" }
                if let e = d.lastError { line += ", last error: \(e)" }
                out += line + "\n"
            }
            for f in a.folders {
                out += "  \(f.name): \(f.local.map(String.init) ?? "?") local, \(f.remote.map { "\($0) on the server" } ?? "not on the server")"
                if f.pending > 0 { out += ", \(f.pending) pending" }
                if let e = f.lastError { out += ", error: \(e)" }
                if !f.skipped.isEmpty {
                    out += ", \(f.skipped.count) too large left on the server (" + f.skipped.prefix(10).map { "UID \($0.uid): \($0.size ?? 0) bytes" }.joined(separator: ", ") + (f.skipped.count > 10 ? ", …" : "") + ")"
                }
                if !f.unfetchable.isEmpty {
                    out += ", \(f.unfetchable.count) the server could not send, left there (" + f.unfetchable.prefix(10).map { "UID \($0.uid): \($0.reason)" }.joined(separator: "; ") + (f.unfetchable.count > 10 ? "; …" : "") + "; `mailmirror sync --force` tries again)"
                }
                if !f.refused.isEmpty {
                    out += ", \(f.refused.count) refused by the server, kept here (" + f.refused.prefix(10).map { "\($0.name): \($0.size) bytes, \($0.reason)" }.joined(separator: "; ") + (f.refused.count > 10 ? "; …" : "") + "; `mailmirror sync --force` tries again)"
                }
                if !f.keywordsInState.isEmpty {
                    out += ", \(f.keywordsInState.count) keyword(s) kept in the state, not in file names (more than 26 in the folder): "
                        + f.keywordsInState.joined(separator: " ")
                }
                if !f.unstorableKeywords.isEmpty {
                    out += ", keyword(s) the server folder cannot keep, kept here only: " + f.unstorableKeywords.joined(separator: " ")
                }
                out += "\n"
            }
        }
        return out.isEmpty ? "no accounts configured\n" : out
    }

    static func json(_ accounts: [AccountStatus]) -> String {
        func str(_ s: String?) -> String { s.map { jsonString($0) } ?? "null" }
        func num(_ n: Int?) -> String { n.map(String.init) ?? "null" }
        let items = accounts.map { a in
            let folders = a.folders.map { f in
                "{\"name\":\(jsonString(f.name)),\"local_messages\":\(num(f.local)),\"remote_messages\":\(num(f.remote)),\"last_sync\":\(str(f.lastSync.map(iso8601))),\"pending\":\(f.pending),\"last_error\":\(str(f.lastError)),\"skipped\":[\(f.skipped.map { "{\"uid\":\($0.uid),\"size\":\(num($0.size.map { Int($0) }))}" }.joined(separator: ","))],\"refused\":[\(f.refused.map { "{\"name\":\(jsonString($0.name)),\"size\":\($0.size),\"reason\":\(jsonString($0.reason))}" }.joined(separator: ","))],\"unfetchable\":[\(f.unfetchable.map { "{\"uid\":\($0.uid),\"reason\":\(jsonString($0.reason))}" }.joined(separator: ","))],"
                    + "\"keywords_in_state\":[\(f.keywordsInState.map(jsonString).joined(separator: ","))],"
                    + "\"unstorable_keywords\":[\(f.unstorableKeywords.map(jsonString).joined(separator: ","))]}"
            }
            let daemon = a.daemon.map { d in
                ",\"daemon\":{\"state\":\(jsonString(d.state)),\"push\":\(jsonString(d.push)),\"backoff_until\":\(str(d.backoffUntil.map(iso8601))),\"last_event\":\(str(d.lastEvent)),\"last_event_time\":\(str(d.lastEventTime.map(iso8601))),\"last_error\":\(str(d.lastError))}"
            } ?? ""
            return "{\"name\":\(jsonString(a.name)),\"protocol\":\(jsonString(a.proto)),\"state\":\(jsonString(a.state)),\"last_sync\":\(str(a.lastSync.map(iso8601))),\"last_error\":\(str(a.lastError)),\"folders\":[\(folders.joined(separator: ","))]\(daemon)}"
        }
        return "{\"accounts\":[\(items.joined(separator: ","))]}\n"
    }
}

/// The running daemon's per-account state, when a daemon runs (its pid is alive).
func readDaemonStatus(_ stateDirectory: String) -> [String: StatusCommand.DaemonView] {
    guard let text = try? ConfigurationLoader.readTextFile(stateDirectory + "/daemon.status") else { return [:] }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard let pid = lines.first.flatMap({ Int32($0) }), kill(pid, 0) == 0 else { return [:] }
    var result: [String: StatusCommand.DaemonView] = [:]
    for line in lines.dropFirst() where !line.isEmpty {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 7 else { continue }
        func opt(_ s: String) -> String? { s.isEmpty ? nil : s }
        result[f[0]] = StatusCommand.DaemonView(state: f[1], push: f[2], backoffUntil: Int64(f[3]), lastEvent: opt(f[4]),
                                                lastEventTime: Int64(f[5]), lastError: opt(f[6]))
    }
    return result
}

/// A JSON string literal: TOML basic-string escaping (`Config.quote`) is valid JSON too
/// (`\" \\ \n \r \t \uXXXX`).
func jsonString(_ s: String) -> String { quote(s) }

/// Unix seconds as ISO 8601 UTC ("2026-11-27T21:28:39Z").
func iso8601(_ seconds: Int64) -> String {
    var t = time_t(seconds)
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
}
