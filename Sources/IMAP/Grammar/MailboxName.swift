/// A mailbox name as the server spells it on the wire: bytes (modified UTF-7, or UTF-8
/// once UTF8=ACCEPT is enabled). Decoded only to show it, or to map it to a folder.
public struct MailboxName: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// The wire form of a Unicode name (modified UTF-7, or UTF-8 when `utf8` is enabled).
    public init(_ name: String, utf8: Bool = false) {
        bytes = utf8 ? Array(name.utf8) : ModifiedUTF7.encode(name)
    }

    public static let inbox = MailboxName(bytes: Array("INBOX".utf8))

    /// Whether this is INBOX (case-insensitive, RFC 3501 §5.1).
    public var isInbox: Bool { bytes.count == 5 && String(decoding: bytes, as: UTF8.self).uppercased() == "INBOX" }

    /// The Unicode name: modified UTF-7 decoded, or UTF-8 as is (`utf8`), or nil when the
    /// bytes are neither.
    public func decoded(utf8: Bool = false) -> String? {
        if utf8 { return String(validating: bytes, as: UTF8.self) }
        return ModifiedUTF7.decode(bytes)
    }

    /// For messages: the decoded name, or the raw bytes when they do not decode.
    public var description: String { decoded() ?? String(decoding: bytes, as: UTF8.self) }

    /// The name split at the hierarchy delimiter.
    public func components(delimiter: UInt8?) -> [[UInt8]] {
        guard let delimiter else { return [bytes] }
        return bytes.split(separator: delimiter, omittingEmptySubsequences: false).map(Array.init)
    }
}
