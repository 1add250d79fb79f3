/// A piece of an encoded command: bytes to send as they are, or a literal whose data may
/// only follow the server's `+` (synchronizing) or follows at once (LITERAL+).
public enum CommandPart: Sendable {
    case bytes([UInt8])
    /// `{n}` or `{n+}` has been written at the end of the preceding bytes; the data follows.
    case literalData([UInt8], synchronizing: Bool)
    /// Message data streamed from a source (APPEND).
    case messageData(MessageSource, synchronizing: Bool)
}

/// Turns commands into bytes: chooses atom, quoted string or literal for every string
/// argument, uses LITERAL+ / LITERAL- when offered, and writes dates and sets in the
/// server's syntax.
public struct CommandEncoder: Sendable {
    /// Server offers LITERAL+ (RFC 7888): every literal may be non-synchronizing.
    public var literalPlus = false
    /// Server offers LITERAL- (RFC 7888): literals up to 4096 bytes may be non-synchronizing.
    public var literalMinus = false
    /// UTF8=ACCEPT is enabled: UTF-8 may appear in quoted strings.
    public var utf8Accept = false

    public init(literalPlus: Bool = false, literalMinus: Bool = false, utf8Accept: Bool = false) {
        self.literalPlus = literalPlus
        self.literalMinus = literalMinus
        self.utf8Accept = utf8Accept
    }

    /// Builds parts; consecutive byte runs are merged.
    final class Builder {
        var parts: [CommandPart] = []
        var current: [UInt8] = []
        func add(_ s: String) { current.append(contentsOf: s.utf8) }
        func add(_ b: [UInt8]) { current.append(contentsOf: b) }
        func flush() { if !current.isEmpty { parts.append(.bytes(current)); current = [] } }
    }

    func isNonSynchronizing(_ size: Int64) -> Bool { literalPlus || (literalMinus && size <= 4096) }

    /// Appends `bytes` as an astring: atom when possible, else quoted, else literal.
    func appendString(_ bytes: [UInt8], to b: Builder, atomAllowed: Bool = true) {
        if atomAllowed && !bytes.isEmpty && bytes.allSatisfy({ ResponseGrammar.isAtomChar($0) || $0 == 93 }) {
            b.add(bytes)
            return
        }
        let quotable = bytes.count <= 1000 && bytes.allSatisfy { $0 != 0 && $0 != 10 && $0 != 13 && ($0 < 128 || utf8Accept) }
        if quotable {
            b.add([34])
            for c in bytes {
                if c == 34 || c == 92 { b.add([92]) }
                b.add([c])
            }
            b.add([34])
            return
        }
        let sync = !isNonSynchronizing(Int64(bytes.count))
        b.add("{\(bytes.count)\(sync ? "" : "+")}\r\n")
        b.flush()
        b.parts.append(.literalData(bytes, synchronizing: sync))
    }

    func appendMailbox(_ name: MailboxName, to b: Builder) {
        appendString(name.bytes, to: b)
    }

    /// Encodes `command` with `tag`, ending in CRLF.
    public func encode(_ command: Command, tag: String) -> [CommandPart] {
        let b = Builder()
        b.add(tag + " ")
        switch command {
        case .capability: b.add("CAPABILITY")
        case .noop: b.add("NOOP")
        case .logout: b.add("LOGOUT")
        case .startTLS: b.add("STARTTLS")
        case .namespace: b.add("NAMESPACE")
        case .expunge: b.add("EXPUNGE")
        case .close: b.add("CLOSE")
        case .unselect: b.add("UNSELECT")
        case .idle: b.add("IDLE")
        case .compressDeflate: b.add("COMPRESS DEFLATE")
        case .notify(let spec): b.add("NOTIFY " + spec)
        case let .login(user, password):
            b.add("LOGIN ")
            appendString(user, to: b)
            b.add(" ")
            appendString(password, to: b)
        case let .authenticate(mechanism, initial):
            b.add("AUTHENTICATE \(mechanism)")
            if let initial { b.add(" "); b.add(initial.isEmpty ? Array("=".utf8) : initial) }
        case .enable(let capabilities):
            b.add("ENABLE " + capabilities.joined(separator: " "))
        case .id(let parameters):
            b.add("ID ")
            if let parameters {
                b.add("(")
                for (i, (k, v)) in parameters.enumerated() {
                    if i > 0 { b.add(" ") }
                    appendString(Array(k.utf8), to: b, atomAllowed: false)
                    b.add(" ")
                    appendString(Array(v.utf8), to: b, atomAllowed: false)
                }
                b.add(")")
            } else {
                b.add("NIL")
            }
        case let .list(reference, pattern, specialUse, returnStatus):
            b.add("LIST ")
            appendString(reference, to: b, atomAllowed: !reference.isEmpty)
            b.add(" ")
            // list-mailbox allows % and * unquoted; quote otherwise.
            if !pattern.isEmpty && pattern.allSatisfy({ ResponseGrammar.isAtomChar($0) || $0 == 37 || $0 == 42 || $0 == 93 }) {
                b.add(pattern)
            } else {
                appendString(pattern, to: b, atomAllowed: false)
            }
            var returns: [String] = []
            if specialUse { returns.append("SPECIAL-USE") }
            if !returnStatus.isEmpty { returns.append("STATUS (" + returnStatus.map(\.rawValue).joined(separator: " ") + ")") }
            if !returns.isEmpty { b.add(" RETURN (" + returns.joined(separator: " ") + ")") }
        case let .select(mailbox, condstore, qresync), let .examine(mailbox, condstore, qresync):
            if case .select = command { b.add("SELECT ") } else { b.add("EXAMINE ") }
            appendMailbox(mailbox, to: b)
            if let q = qresync {
                b.add(" (QRESYNC (\(q.uidValidity) \(q.modSeq)")
                if let known = q.knownUIDs, !known.isEmpty { b.add(" \(known)") }
                b.add("))")
            } else if condstore {
                b.add(" (CONDSTORE)")
            }
        case let .status(mailbox, items):
            b.add("STATUS ")
            appendMailbox(mailbox, to: b)
            b.add(" (" + items.map(\.rawValue).joined(separator: " ") + ")")
        case .create(let m): b.add("CREATE "); appendMailbox(m, to: b)
        case .delete(let m): b.add("DELETE "); appendMailbox(m, to: b)
        case .subscribe(let m): b.add("SUBSCRIBE "); appendMailbox(m, to: b)
        case let .rename(from, to):
            b.add("RENAME ")
            appendMailbox(from, to: b)
            b.add(" ")
            appendMailbox(to, to: b)
        case let .uidFetch(set, items, changedSince, vanished):
            b.add("UID FETCH \(set) (" + items.map(\.text).joined(separator: " ") + ")")
            if let changedSince { b.add(" (CHANGEDSINCE \(changedSince)\(vanished ? " VANISHED" : ""))") }
        case let .fetch(set, items):
            b.add("FETCH \(set) (" + items.map(\.text).joined(separator: " ") + ")")
        case let .uidSearch(criteria, returnAll):
            b.add("UID SEARCH ")
            if returnAll { b.add("RETURN (ALL) ") }
            appendKeys(criteria, to: b)
        case let .uidStore(set, operation, flags, silent, unchangedSince):
            b.add("UID STORE \(set) ")
            if let unchangedSince { b.add("(UNCHANGEDSINCE \(unchangedSince)) ") }
            b.add("\(operation.prefix)FLAGS\(silent ? ".SILENT" : "") (" + flags.map(\.rawValue).joined(separator: " ") + ")")
        case let .uidCopy(set, mailbox):
            b.add("UID COPY \(set) ")
            appendMailbox(mailbox, to: b)
        case let .uidMove(set, mailbox):
            b.add("UID MOVE \(set) ")
            appendMailbox(mailbox, to: b)
        case .uidExpunge(let set):
            b.add("UID EXPUNGE \(set)")
        case let .append(mailbox, messages):
            b.add("APPEND ")
            appendMailbox(mailbox, to: b)
            for message in messages {
                b.add(" ")
                if !message.flags.isEmpty { b.add("(" + message.flags.map(\.rawValue).joined(separator: " ") + ") ") }
                if let date = message.internalDate { b.add("\"" + IMAPDate.format(date) + "\" ") }
                let size = message.source.size
                let sync = !isNonSynchronizing(size)
                b.add("{\(size)\(sync ? "" : "+")}\r\n")
                b.flush()
                b.parts.append(.messageData(message.source, synchronizing: sync))
            }
        }
        b.add("\r\n")
        b.flush()
        return b.parts
    }

    func appendKeys(_ keys: [SearchKey], to b: Builder) {
        for (i, key) in keys.enumerated() {
            if i > 0 { b.add(" ") }
            switch key {
            case .all: b.add("ALL")
            case .uid(let set): b.add("UID \(set)")
            case let .header(name, value):
                b.add("HEADER ")
                appendString(Array(name.utf8), to: b)
                b.add(" ")
                appendString(value, to: b, atomAllowed: false)
            case .since(let seconds):
                let formatted = IMAPDate.format(seconds)   // " 7-Jul-2024 …": date part only
                b.add("SINCE " + formatted.split(separator: " ")[0])
            case .not(let inner):
                b.add("NOT ")
                appendKeys([inner], to: b)
            case .and(let inner):
                b.add("(")
                appendKeys(inner, to: b)
                b.add(")")
            }
        }
    }
}
