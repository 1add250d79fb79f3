/// An IMAP message UID (RFC 3501 §2.3.1.1): non-zero, strictly ascending in a mailbox.
public struct UID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }
    public static func < (a: UID, b: UID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A mailbox's UIDVALIDITY: when it changes, every UID known for the mailbox is void.
public struct UIDValidity: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }
    public var description: String { String(rawValue) }
}

/// A CONDSTORE modification sequence (RFC 7162): 63-bit, grows with every change.
public struct ModSeq: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ value: UInt64) { rawValue = value }
    public static func < (a: ModSeq, b: ModSeq) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}
