#if canImport(Glibc)
import Glibc
#endif
import Config
import Maildir
import Support

/// notmuch, as `keywords = "notmuch"` uses it (docs/keywords.md): the `notmuch` command
/// (never linked: the build does not need it), with `NOTMUCH_CONFIG` set when the account
/// names a config file. Changed tags are found by the database's revision (`lastmod:`), never
/// by listing every message; downloads are indexed (`notmuch new --no-hooks`) before their
/// tags are set.
public struct Notmuch: Sendable {
    /// `notmuch_config`, or nil for notmuch's default.
    public let config: String?
    /// For messages: the account's name.
    public let account: String

    public init(config: String?, account: String) {
        self.config = config
        self.account = account
    }

    /// A database revision: notmuch's UUID of the database (a rebuilt one has another) and
    /// its counter.
    public struct Revision: Sendable, Equatable {
        public var uuid: String
        public var number: Int64

        /// The state's form: "uuid number".
        public var stored: String { "\(uuid) \(number)" }

        public init(uuid: String, number: Int64) {
            self.uuid = uuid
            self.number = number
        }

        public init?(stored: String) {
            let parts = stored.split(separator: " ")
            guard parts.count == 2, let n = Int64(parts[1]) else { return nil }
            self.init(uuid: String(parts[0]), number: n)
        }
    }

    /// A message notmuch reports: its id and tags, and its files.
    public struct Message: Sendable, Equatable {
        public var id: String
        public var tags: [String]
    }

    /// Why notmuch failed, with what to do.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var account: String
        public var what: String
        public var detail: String
        public var description: String {
            "\(account): notmuch \(what) failed (\(detail)); check that notmuch is installed and its config "
                + "(notmuch_config, or ~/.notmuch-config) names the database that holds this Maildir — `notmuch count` should work"
        }
    }

    static func quote(_ s: String) -> String { "'" + s.replacingAll("'", with: "'\\''") + "'" }

    /// Runs `notmuch ARGS`; its standard output.
    func run(_ arguments: [String], what: String, timeout: Double = 300, outputLimit: Int = 1 << 20) async throws -> [UInt8] {
        Trace.mark("\(account): notmuch \(what)")
        let env = config.map { "NOTMUCH_CONFIG=\(Self.quote($0)) " } ?? ""
        let command = env + "notmuch " + arguments.map(Self.quote).joined(separator: " ")
        let result: SubprocessResult
        do { result = try await Subprocess.runShell(command, timeout: timeout, outputLimit: outputLimit) } catch {
            throw Failure(account: account, what: what, detail: "\(error)")
        }
        guard result.succeeded else {
            let words = String(decoding: result.standardError.prefix(400), as: UTF8.self).split(separator: "\n").first.map(String.init)
            throw Failure(account: account, what: what,
                          detail: result.timedOut ? "no answer in \(Int(timeout)) s" : result.exitStatus == 127 ? "the notmuch command was not found"
                          : words ?? "exit status \(result.exitStatus ?? -1)")
        }
        return result.standardOutput
    }

    /// The database's revision now (`notmuch count --lastmod '*'`).
    public func revision() async throws -> Revision {
        let out = try await run(["count", "--lastmod", "*"], what: "count --lastmod")
        let fields = String(decoding: out, as: UTF8.self).split(whereSeparator: { $0 == "\t" || $0 == "\n" })
        guard fields.count >= 3, let n = Int64(fields[2]) else {
            throw Failure(account: account, what: "count --lastmod", detail: "unexpected answer \"\(String(decoding: out.prefix(80), as: UTF8.self))\"")
        }
        return Revision(uuid: String(fields[1]), number: n)
    }

    /// The messages whose tags or files changed after `since` (every message when nil: a
    /// first pass, or a database rebuilt since), by the real path of their folder and the
    /// base name of each file.
    public func changes(since: Revision?, now: Revision) async throws -> Changes {
        let query = since.map { "lastmod:\($0.number + 1)..\(now.number)" } ?? "*"
        var changes = Changes(query: query)
        if let since, since.number >= now.number { return changes }
        let out = try await run(["show", "--format=json", "--entire-thread=false", "--body=false", "--exclude=false", query],
                                what: "show", outputLimit: 1 << 28)
        guard let json = JSONValue.parse(out) else { throw Failure(account: account, what: "show", detail: "its output is not JSON") }
        var folders: [String: String] = [:]   // directory as notmuch names it → real path
        func visit(_ value: JSONValue) {
            switch value {
            case .array(let items): items.forEach(visit)
            case .object:
                guard let id = value["id"]?.string, let files = value["filename"]?.array else { return }
                let tags = value["tags"]?.array?.compactMap(\.string) ?? []
                for file in files.compactMap(\.string) {
                    let parts = file.split(separator: "/", omittingEmptySubsequences: false)
                    guard parts.count >= 3, ["cur", "new"].contains(parts[parts.count - 2]) else { continue }
                    let dir = parts.dropLast(2).joined(separator: "/")
                    let real = folders[dir] ?? Self.realPath(dir)
                    folders[dir] = real
                    let base = MessageFileName(parsing: String(parts[parts.count - 1])).baseName
                    changes.byFolder[real, default: [:]][base] = Message(id: id, tags: tags)
                }
            default: return
            }
        }
        visit(json)
        return changes
    }

    /// What changed in notmuch since the last pass.
    public struct Changes: Sendable {
        /// The query that found them (for traces and tests).
        public var query: String
        /// Real path of a folder → base name → the message.
        public var byFolder: [String: [String: Message]] = [:]

        /// The changes in one folder (nil: none).
        public func changes(in folder: MaildirFolder) -> [String: Message]? {
            byFolder[Notmuch.realPath(folder.path)]
        }
    }

    /// The directory of the Xapian database (what changes when tags do): `.notmuch/xapian`
    /// under `database.path`, else notmuch's XDG location for its profile.
    public func databaseDirectory() async throws -> String? {
        let root = String(decoding: try await run(["config", "get", "database.path"], what: "config get"), as: UTF8.self)
            .split(separator: "\n").first.map(String.init) ?? ""
        var candidates = [root + "/.notmuch/xapian"]
        let env = { (name: String) in getenv(name).map { String(cString: $0) } }
        let data = env("XDG_DATA_HOME") ?? ((env("HOME") ?? "") + "/.local/share")
        candidates.append(data + "/notmuch/" + (env("NOTMUCH_PROFILE") ?? "default") + "/xapian")
        return candidates.first { path in
            var st = stat()
            return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
    }

    /// Indexes new and renamed files (`notmuch new --no-hooks --quiet`: a pre-new hook that
    /// runs mailmirror would wait on this very pass).
    public func index() async throws {
        _ = try await run(["new", "--no-hooks", "--quiet"], what: "new")
    }

    /// One tag change: tags to add and remove on the message `id`.
    public struct TagChange: Sendable {
        public var id: String
        public var add: [String]
        public var remove: [String]
    }

    /// Applies tag changes in one `notmuch tag --batch` (its input in a file: the child's
    /// stdin is /dev/null).
    public func tag(_ changes: [TagChange], scratch directory: String) async throws {
        let lines = changes.filter { !$0.add.isEmpty || !$0.remove.isEmpty }.map { c in
            (c.add.map { "+" + Self.encode($0) } + c.remove.map { "-" + Self.encode($0) }).joined(separator: " ")
                + " -- id:\"" + c.id.replacingAll("\"", with: "\"\"") + "\""   // the query is not hex-encoded
        }
        guard !lines.isEmpty else { return }
        let path = directory + "/notmuch-tags.\(getpid())"
        do { try TextFile.replace(path, with: Array((lines.joined(separator: "\n") + "\n").utf8), durable: false) } catch {
            throw Failure(account: account, what: "tag", detail: "could not write \(path): \(String(cString: strerror(error.code)))")
        }
        defer { unlink(path) }
        _ = try await run(["tag", "--batch", "--input=" + path], what: "tag")
    }

    /// notmuch's batch encoding of a tag: bytes outside `[A-Za-z0-9@=.,_+-/:]` as `%XX`.
    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "@"), UInt8(ascii: "="), UInt8(ascii: "."), UInt8(ascii: ","), UInt8(ascii: "_"), UInt8(ascii: "+"),
                 UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: ":"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// `realpath(3)` of a directory, or the path itself when it cannot be resolved.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Keyword ⇄ tag, under `keyword_tags` (docs/keywords.md): without a mapping a keyword is
/// the tag of the same name. notmuch's own tags are never keywords unless mapped, and a
/// tag that is not an IMAP atom (a space in it, say) is left alone.
public struct TagMapping: Sendable, Equatable {
    /// Tags notmuch sets itself (`new.tags`, its `synchronize_flags` names, what `notmuch new` finds).
    public static let notmuchOwn: Set<String> = ["inbox", "unread", "attachment", "signed", "encrypted", "replied", "draft", "flagged", "passed",
                                                  "deleted"]
    let toTag: [String: String]
    let toKeyword: [String: String]

    public init(_ keywordTags: [String: String]) {
        var toTag: [String: String] = [:]
        var toKeyword: [String: String] = [:]
        for (keyword, tag) in keywordTags {
            toTag[keyword.lowercased()] = tag
            toKeyword[tag] = keyword
        }
        self.toTag = toTag
        self.toKeyword = toKeyword
    }

    /// The tag a keyword is (nil: none — one of notmuch's own names, unmapped).
    public func tag(for keyword: String) -> String? {
        if let tag = toTag[keyword.lowercased()] { return tag }
        if Self.notmuchOwn.contains(keyword) || toKeyword[keyword] != nil { return nil }
        return keyword
    }

    /// The keyword a tag is (nil: none).
    public func keyword(for tag: String) -> String? {
        if let keyword = toKeyword[tag] { return keyword }
        if Self.notmuchOwn.contains(tag) || toTag[tag.lowercased()] != nil { return nil }
        guard !tag.isEmpty, !tag.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || "(){%*\"\\]".utf8.contains($0) }), !tag.hasPrefix("\\") else {
            return nil
        }
        return tag
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
