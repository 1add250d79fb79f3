import Support

/// How a message sent to a store is found there again when the outcome was lost (a crash,
/// a cut connection, an APPEND whose reply never came): journaled before the message can
/// become visible at its destination. See docs/recovery.md.
public struct ArrivalMark: Sendable, Equatable {
    /// A Maildir delivery: the unique part of the file name it gets.
    public var uniqueName: String?
    /// An upload: what was sent…
    public var sent: WireFingerprint?
    /// …into the mailbox with this UIDVALIDITY, where it can only have a UID from `uidNext` on.
    public var uidValidity: UIDValidity?
    public var uidNext: UID?
    /// An upload journaled by a version before 7: the `X-Mailmirror-Token:` header value its
    /// server copy carries.
    public var legacyToken: String?

    public init(uniqueName: String? = nil, sent: WireFingerprint? = nil, uidValidity: UIDValidity? = nil, uidNext: UID? = nil,
                legacyToken: String? = nil) {
        self.uniqueName = uniqueName
        self.sent = sent
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.legacyToken = legacyToken
    }
}

/// Pairs uploads (their journaled fingerprints) with the server messages that arrived from
/// their UIDNEXT on, one to one. Pure: the IMAP store fetches, this decides.
///
/// A message whose Message-ID and size are shared by exactly one wanted upload and one
/// candidate is settled by those alone. Everything else — no Message-ID, several equal
/// uploads (two identical files), several equal candidates, or no candidate with the same
/// Message-ID (a header the two sides read differently) — is settled by comparing the
/// SHA-256 of the equal-size candidates' bodies, lowest UID first. Each candidate is taken
/// at most once, so two identical files uploaded once each are two messages, each paired once.
enum ArrivalMatching {
    /// A server message that may be one of the uploads.
    struct Candidate: Equatable {
        var uid: UID
        var size: Int64
        var messageID: [UInt8]?
    }

    /// An upload looked for, with the lowest UID it can have.
    struct Wanted: Equatable {
        var sent: WireFingerprint
        var from: UID
    }

    /// The first round: uploads settled by size and Message-ID alone (index → UID), and the
    /// candidates whose bodies must be hashed to settle the rest.
    static func settle(_ wanted: [Wanted], among candidates: [Candidate]) -> (settled: [Int: UID], toHash: [UID]) {
        struct Key: Hashable { var size: Int64; var messageID: [UInt8]? }
        var wantedPerKey: [Key: Int] = [:]
        for w in wanted {
            for form in w.sent.storedForms { wantedPerKey[Key(size: form.size, messageID: w.sent.messageID), default: 0] += 1 }
        }
        var bySize: [Int64: [Candidate]] = [:]
        for c in candidates.sorted(by: { $0.uid < $1.uid }) { bySize[c.size, default: []].append(c) }
        var settled: [Int: UID] = [:]
        var hash = Set<UID>()
        for (i, w) in wanted.enumerated() {
            // A copy in the normalized form (Courier: bare CRs dropped, an open last line
            // ended) counts, but only by its digest, never by size and Message-ID alone.
            let completed = w.sent.storedForms.dropFirst().flatMap { form in (bySize[form.size] ?? []).filter { $0.uid >= w.from } }
            let sameSize = (bySize[w.sent.size] ?? []).filter { $0.uid >= w.from }
            guard !sameSize.isEmpty || !completed.isEmpty else { continue }
            let exact = sameSize.filter { $0.messageID == w.sent.messageID }
            if w.sent.messageID != nil, exact.count == 1, completed.isEmpty,
               wantedPerKey[Key(size: w.sent.size, messageID: w.sent.messageID)] == 1 {
                settled[i] = exact[0].uid
            } else {
                for c in sameSize + completed { hash.insert(c.uid) }
            }
        }
        let taken = Set(settled.values)
        return (settled, hash.subtracting(taken).sorted())
    }

    /// The second round: the unsettled uploads, in order, each take the lowest untaken
    /// candidate of their size whose body has their digest.
    static func finish(_ wanted: [Wanted], among candidates: [Candidate], settled: [Int: UID], digests: [UID: [UInt8]]) -> [Int: UID] {
        var result = settled
        var taken = Set(settled.values)
        let ordered = candidates.sorted { $0.uid < $1.uid }
        for (i, w) in wanted.enumerated() where result[i] == nil {
            guard let match = ordered.first(where: { c in
                c.uid >= w.from && !taken.contains(c.uid)
                    && w.sent.storedForms.contains { $0.size == c.size && digests[c.uid] == $0.digest }
            }) else { continue }
            result[i] = match.uid
            taken.insert(match.uid)
        }
        return result
    }
}
