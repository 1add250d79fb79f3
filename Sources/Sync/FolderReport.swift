#if canImport(Glibc)
import Glibc
#endif
import Maildir
import State
import Support

/// What one pass did to one folder.
public struct FolderReport: Sendable {
    public var folder: [String]
    public var downloaded = 0
    public var uploaded = 0
    public var flagChanges = 0
    public var deleted = 0
    public var heldDeletions = 0
    public var recovered = 0
    /// Messages re-matched after a UIDVALIDITY change (nil when it did not change).
    public var rematched: Int?
    /// Messages a first pass found on both sides and paired (not copied both ways).
    public var paired = 0
    /// What the pass left in a Maildir it wrote to just now, for noting its marker later.
    var settle: (record: FolderID, expected: [String: MessageFlags]?, trustedFrom: Int64, marker: String, witness: FolderChangeWitness?)?
    /// The pass worked from the server's changes alone (the Maildir had not changed): no
    /// scan of the folder, no load of every pair.
    public var incremental = false
    /// The folder's SELECT flight went out while the previous folder's pass on the same
    /// session made its downloads durable (see `IMAPFolderStore.sendOpenAhead`).
    public var selectedAhead = false
    /// Local messages the server refused one by one (its NO, e.g. a size limit): kept
    /// here, tried again when the folder changes.
    public var refusedUploads = 0
    /// Server messages left there because the server could not send them (listed by
    /// `status`; `sync --force` tries again).
    public var unfetchable = 0
    /// Messages moved into this folder on the server, renamed here instead of downloaded.
    public var movedHere = 0
    /// Local files that could not be read (permissions): not uploaded, tried again next pass.
    public var unreadable = 0
    /// Left on the server by max_message_size.
    public var skippedTooLarge = 0
    public var created: String?
    public var error: String?
    /// Why this local folder cannot exist on the server (its name holds the server's
    /// hierarchy delimiter): left alone, listed by `status`, until it is renamed.
    public var cannotMirror: String?

    public init(folder: [String]) { self.folder = folder }

    /// "12 down, 1 up, 3 flag changes, 2 deleted", or nil when nothing happened.
    public var summary: String? {
        var parts: [String] = []
        if let created { parts.append(created) }
        if let cannotMirror { parts.append("not mirrored: \(cannotMirror)") }
        if downloaded > 0 { parts.append("\(downloaded) down") }
        if movedHere > 0 { parts.append("\(movedHere) moved here on the server") }
        if uploaded > 0 { parts.append("\(uploaded) up") }
        if flagChanges > 0 { parts.append("\(flagChanges) flag change\(flagChanges == 1 ? "" : "s")") }
        if deleted > 0 { parts.append("\(deleted) deleted") }
        if recovered > 0 { parts.append("\(recovered) recovered after an interruption") }
        if let rematched { parts.append("\(rematched) re-matched after a UIDVALIDITY change") }
        if paired > 0 { parts.append("\(paired) already on both sides, paired") }
        if skippedTooLarge > 0 { parts.append("\(skippedTooLarge) too large, left on the server") }
        if refusedUploads > 0 { parts.append("\(refusedUploads) refused by the server, kept here") }
        if unfetchable > 0 { parts.append("\(unfetchable) the server could not send, left there") }
        if unreadable > 0 { parts.append("\(unreadable) not readable here, not uploaded") }
        if heldDeletions > 0 { parts.append("\(heldDeletions) deletion\(heldDeletions == 1 ? "" : "s") held") }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}

/// A folder pass that failed, with what it did before (downloads and uploads recorded).
struct FolderPassFailed: Error, CustomStringConvertible {
    var report: FolderReport
    var underlying: any Error
    var description: String { "\(underlying)" }
}

/// Failures of the sync engine that are not protocol or file errors.
public enum SyncError: Error, Sendable, CustomStringConvertible {
    /// A POP3 account now names another mailbox than the one its remembered UIDLs came from.
    case mailboxChanged(account: String, was: String, now: String, remembered: Int)
    /// One side of an account looks wiped out (a Maildir on a disk that is not mounted, a
    /// server listing no INBOX): nothing is done rather than recreating or deleting it all.
    case sideLooksGone(account: String, what: String, advice: String)
    /// A POP3 server gave one UIDL to several messages: its UIDLs cannot tell delivered
    /// messages from new ones, so trusting them could delete a message unread.
    case repeatedUIDLs(account: String, repeated: Int, example: String)

    public var description: String {
        switch self {
        case let .mailboxChanged(account, was, now, remembered):
            return "the account now names another mailbox (\(was) → \(now)) than the one its \(remembered) remembered message(s) came from. "
                + "If it is the same mailbox under a new name, run `mailmirror sync --force \(account)` once: they carry over. "
                + "If it is another mailbox, give the account a new name (a state of its own): otherwise a message of it that shares "
                + "an id with one already delivered would be skipped, or deleted from the server unread"
        case let .sideLooksGone(_, what, advice):
            return "\(what); nothing was done — \(advice)"
        case let .repeatedUIDLs(_, repeated, example):
            return "the POP3 server gives the same UIDL to several messages (\(repeated) repeated, e.g. \"\(example)\"): "
                + "its UIDLs cannot tell a delivered message from a new one, so nothing was downloaded or deleted. "
                + "Report it to the mail provider; meanwhile another client (or the server's web mail) can move the mail off"
        }
    }
}

/// 96 random bits as hex: names of spooled uploads.
func randomToken() -> String {
    var bytes = [UInt8](repeating: 0, count: 12)
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    if fd >= 0 { _ = read(fd, &bytes, bytes.count); close(fd) }
    return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
