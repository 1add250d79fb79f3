import Config
import IMAP
import Maildir
import State
import Support

/// A folder's keywords as the engine carries them: each keyword the folder has met gets a
/// code in `MessageFlags`, so that keywords are merged, stored, journaled and moved exactly
/// like the six flags (docs/keywords.md).
///
/// - `keywords = "maildir"`: the codes `a`…`z` are the letters of the folder's
///   `dovecot-keywords` (a file name carries them, as Dovecot writes them); a folder's 27th
///   keyword and on get codes 128…255, which no file carries: the state keeps them, and the
///   Maildir side is read as holding what was last agreed (a server change wins).
/// - `keywords = "notmuch"`: every keyword gets a code 128…255; the Maildir side holds them
///   as notmuch tags.
/// - `keywords = "none"`: no codes; only the six flags are mirrored.
///
/// One table per folder pass, filled while the server is listed (`letters`), written to the
/// state (and `dovecot-keywords`) by `save` before anything that uses a new code is written.
public final class FolderKeywords: @unchecked Sendable {   // used by one folder pass at a time
    public let mode: KeywordMode
    /// The name of each code (nil: free).
    private var names: [String?] = Array(repeating: nil, count: 256)
    /// Lower-cased name → code: IMAP keywords compare without case (RFC 3501 §2.3.2).
    private var codes: [String: UInt8] = [:]
    /// Codes given out since the last `save`.
    private var added: [UInt8] = []
    /// The six flags and every code with a name: what the engine mirrors.
    public private(set) var mirrored = FlagMapping.six
    /// Named codes that no file carries (maildir mode's 27th keyword and on): the Maildir side
    /// holds what was agreed for them.
    public private(set) var stateOnly = MessageFlags()
    /// Named codes that are notmuch tags (`keywords = "notmuch"`): the Maildir side holds them
    /// as the tags of the message's file.
    public private(set) var tagged = MessageFlags()
    /// Keyword ⇄ tag (`keywords = "notmuch"`).
    public let tags: TagMapping
    /// Keywords no code was left for (more than 26 + 128 in one folder): not mirrored.
    public private(set) var unassignable: Set<String> = []

    /// A table with no keywords yet.
    public init(mode: KeywordMode, tags: TagMapping = TagMapping([:])) {
        self.mode = mode
        self.tags = tags
    }

    /// No keywords mirrored (`keywords = "none"`, and what tests use by default).
    public static var none: FolderKeywords { FolderKeywords(mode: .none) }

    /// A table with these codes (from the state and the folder's `dovecot-keywords`).
    public convenience init(mode: KeywordMode, names known: [UInt8: String], tags: TagMapping = TagMapping([:])) {
        self.init(mode: mode, tags: tags)
        for (code, name) in known.sorted(by: { $0.key < $1.key }) where Self.usable(code, in: mode) { take(code, name) }
    }

    /// The folder's table: the state's codes, with the letters of `dovecot-keywords` winning
    /// for the letters it names (a Dovecot serving the same Maildir may have added some).
    public static func load(mode: KeywordMode, state: StateStore, folder: FolderID, maildir: MaildirFolder,
                            tags: TagMapping = TagMapping([:])) throws -> FolderKeywords {
        guard mode != .none else { return .none }
        var known = try state.keywords(in: folder)
        if mode == .maildir {
            let file = try MaildirKeywords.read(in: maildir)
            for (index, name) in file.names.enumerated() {
                let letter = UInt8(ascii: "a") + UInt8(index)
                if let name {
                    // A name the file gives another letter than the state did takes the file's.
                    for (code, other) in known where other.lowercased() == name.lowercased() && code != letter { known[code] = nil }
                    known[letter] = name
                }
            }
        }
        let table = FolderKeywords(mode: mode, names: known, tags: tags)
        // Letters the state knows but the file lacks (it was removed, or never written) go back.
        if mode == .maildir {
            let file = try MaildirKeywords.read(in: maildir)
            table.added = (UInt8(ascii: "a")...UInt8(ascii: "z")).filter { table.names[Int($0)] != nil && file.keyword(for: $0) == nil }
        }
        return table
    }

    private static func usable(_ code: UInt8, in mode: KeywordMode) -> Bool {
        switch mode {
        case .none: false
        case .maildir: (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(code) || code >= MessageFlags.firstStateSlot
        case .notmuch: code >= MessageFlags.firstStateSlot
        }
    }

    private func take(_ code: UInt8, _ name: String) {
        guard codes[name.lowercased()] == nil else { return }
        names[Int(code)] = name
        codes[name.lowercased()] = code
        mirrored.insert(code)
        if code >= MessageFlags.firstStateSlot && mode == .maildir { stateOnly.insert(code) }
        if mode == .notmuch {
            // A keyword without a tag (one of notmuch's own names) is held by the state.
            if tags.tag(for: name) != nil { tagged.insert(code) } else { stateOnly.insert(code) }
        }
    }

    /// The keyword a code stands for.
    public func name(of code: UInt8) -> String? { names[Int(code)] }

    /// Every keyword with its code.
    public var all: [(code: UInt8, name: String)] {
        names.enumerated().compactMap { i, n in n.map { (UInt8(i), $0) } }
    }

    /// The code of `keyword`, given one if it has none yet (nil: `keywords = "none"`, or no
    /// code left).
    public func code(for keyword: String) -> UInt8? {
        if let code = codes[keyword.lowercased()] { return code }
        guard mode != .none else { return nil }
        let free: [ClosedRange<UInt8>] = mode == .maildir
            ? [UInt8(ascii: "a")...UInt8(ascii: "z"), MessageFlags.firstStateSlot...255]
            : [MessageFlags.firstStateSlot...255]
        for range in free {
            if let code = range.first(where: { names[Int($0)] == nil }) {
                take(code, keyword)
                added.append(code)
                return code
            }
        }
        unassignable.insert(keyword)
        return nil
    }

    /// Whether a server flag is a keyword this table mirrors (not a system flag, not
    /// `$Forwarded`, which is the letter `P`).
    static func isKeyword(_ flag: Flag) -> Bool {
        !flag.rawValue.hasPrefix("\\") && flag != .forwarded && !flag.rawValue.isEmpty
    }

    /// The codes of a message's server flags (keywords met for the first time get one).
    public func letters(_ flags: [Flag]) -> MessageFlags {
        var result = FlagMapping.letters(flags)
        guard mode != .none else { return result }
        for flag in flags where Self.isKeyword(flag) {
            if let code = code(for: flag.rawValue) { result.insert(code) }
        }
        return result
    }

    /// The server flags of the mirrored codes in `codes`.
    public func imapFlags(_ codes: MessageFlags) -> [Flag] {
        var result = FlagMapping.imapFlags(codes)
        guard mode != .none else { return result }
        for code in codes.letters where !FlagMapping.six.contains(code) {
            if let name = names[Int(code)] { result.append(Flag(name)) }
        }
        return result
    }

    /// Only the mirrored codes of `flags` (letters no keyword has stay out).
    public func mirroredPart(_ flags: MessageFlags) -> MessageFlags { flags.intersection(mirrored) }

    /// The codes whose flag or keyword a server folder cannot keep: its PERMANENTFLAGS lists
    /// neither it nor `\*`. No PERMANENTFLAGS at all: every one is kept.
    public func unstorable(_ permanentFlags: [Flag]) -> MessageFlags {
        var result = FlagMapping.unstorable(permanentFlags)
        guard !permanentFlags.isEmpty, !permanentFlags.contains(.wildcard) else { return result }
        let kept = Set(permanentFlags.map { $0.rawValue.lowercased() })
        for (code, name) in all where !kept.contains(name.lowercased()) { result.insert(code) }
        return result
    }

    /// The codes of a message's notmuch tags (keywords met for the first time get one).
    public func codes(ofTags names: [String]) -> MessageFlags {
        var result = MessageFlags()
        for tag in names {
            if let keyword = tags.keyword(for: tag), let code = code(for: keyword), tagged.contains(code) { result.insert(code) }
        }
        return result
    }

    /// The notmuch tags of these codes.
    public func tagNames(of codes: MessageFlags) -> [String] {
        codes.intersection(tagged).letters.compactMap { names[Int($0)].flatMap(tags.tag(for:)) }
    }

    /// The names of these codes (for messages and `status`), in code order.
    public func names(of codes: MessageFlags) -> [String] {
        codes.letters.compactMap { FlagMapping.six.contains($0) ? nil : names[Int($0)] }
    }

    /// Whether codes were given out that are not saved yet.
    public var needsSaving: Bool { !added.isEmpty }

    /// Writes the codes given out to the state and, for letters, the folder's
    /// `dovecot-keywords`: before any file or pair
    /// uses them, so that a crash never leaves a letter without its name.
    public func save(state: StateStore, folder: FolderID, maildir: MaildirFolder) throws {
        guard !added.isEmpty else { return }
        if mode == .maildir, added.contains(where: { $0 < MessageFlags.firstStateSlot }) {
            var file = try MaildirKeywords.read(in: maildir)
            for code in added where code < MessageFlags.firstStateSlot {
                if let name = names[Int(code)] { file.set(letter: code, to: name) }
            }
            if maildir.exists { try file.write(to: maildir) }   // else the next load finds the letters missing and writes them
        }
        try state.saveKeywords(in: folder, added.compactMap { code in names[Int(code)].map { (code, $0) } })
        added = []
    }
}
