import Config
import IMAP
import Maildir
import State
import Support

/// A message pair as the planner sees it (from the state file).
public struct PlannedPair: Sendable, Equatable {
    public var id: Int64
    /// The server UID; `UID(0)` marks "gone on the server, kept locally by policy".
    public var uid: UID?
    /// The Maildir base name; "" marks "gone locally, kept on the server by policy".
    public var localName: String?
    /// The six mirrored letters both sides last agreed on.
    public var flags: MessageFlags

    /// The planner's view of a stored pair (nil for one not stored yet, without a row id).
    public init?(_ pair: MessagePair) {
        guard let id = pair.id else { return nil }
        self.init(id: id, uid: pair.uid, localName: pair.localName, flags: MessageFlags(pair.flags))
    }

    public init(id: Int64, uid: UID?, localName: String?, flags: MessageFlags) {
        self.id = id
        self.uid = uid
        self.localName = localName
        self.flags = flags
    }

    static let goneRemote = UID(0)
    static let goneLocal = ""
}

/// What the user allows one pass to do.
public struct SyncPolicy: Sendable, Equatable {
    public var direction: SyncDirection
    public var delete: DeletePolicy
    public var maxDeleteFraction: Double
    /// `--force`: let a mass deletion through.
    public var force: Bool

    public init(direction: SyncDirection = .both, delete: DeletePolicy = .both, maxDeleteFraction: Double = 0.5, force: Bool = false) {
        self.direction = direction
        self.delete = delete
        self.maxDeleteFraction = maxDeleteFraction
        self.force = force
    }

    var writesLocal: Bool { direction != .push }
    var writesRemote: Bool { direction != .pull }
    /// A deletion on the server is carried to the Maildir.
    var propagatesRemoteDeletions: Bool { (delete == .both || delete == .pull) && writesLocal }
    /// A deletion in the Maildir is carried to the server.
    var propagatesLocalDeletions: Bool { (delete == .both || delete == .push) && writesRemote }
}

/// Everything one pass over one folder will do: the planner's output, the executor's input.
public struct FolderPlan: Sendable, Equatable {
    /// Remote-only messages to download.
    public var downloads: [UID] = []
    /// Local-only messages (base names) to upload.
    public var uploads: [String] = []
    /// Flags to add/remove on the server, per UID.
    public var remoteFlags: [RemoteFlagChange] = []
    /// New flags of local messages (by base name; unknown letters already preserved).
    public var localFlags: [LocalFlagChange] = []
    /// Pairs whose agreed flags change.
    public var agreedFlags: [AgreedFlags] = []
    /// Messages deleted locally, to expunge on the server (pair id, UID).
    public var deleteRemote: [PairUID] = []
    /// Messages expunged on the server, to remove locally (pair id, base name).
    public var deleteLocal: [PairName] = []
    /// Pairs to forget (both sides gone).
    public var forget: [Int64] = []
    /// Pairs whose remote side is gone but whose local copy stays (policy): marked, never re-uploaded.
    public var keepLocalOnly: [Int64] = []
    /// Pairs whose local side is gone but whose server copy stays (policy): marked, never re-downloaded.
    public var keepRemoteOnly: [Int64] = []
    /// Tag changes of local messages (`keywords = "notmuch"`): the tag codes after, and before.
    public var localTags: [TagChange] = []
    public struct TagChange: Sendable, Equatable {
        public var localName: String
        public var flags: MessageFlags
        public var was: MessageFlags
    }
    /// Keyword codes local messages carry that the server folder cannot keep (they stay local).
    public var keptLocal = MessageFlags()
    /// Deletions held back by the mass-deletion guard (on the server, in the Maildir).
    public var heldRemoteDeletions = 0
    public var heldLocalDeletions = 0

    public struct RemoteFlagChange: Sendable, Equatable {
        public var uid: UID
        public var add: MessageFlags
        public var remove: MessageFlags
    }
    public struct LocalFlagChange: Sendable, Equatable {
        public var localName: String
        public var flags: MessageFlags
    }
    public struct AgreedFlags: Sendable, Equatable {
        public var pairID: Int64
        public var flags: MessageFlags
    }
    public struct PairUID: Sendable, Equatable {
        public var pairID: Int64
        public var uid: UID
    }
    public struct PairName: Sendable, Equatable {
        public var pairID: Int64
        public var localName: String
    }

    /// Whether the pass changes anything.
    public var isEmpty: Bool {
        downloads.isEmpty && uploads.isEmpty && remoteFlags.isEmpty && localFlags.isEmpty && agreedFlags.isEmpty && localTags.isEmpty
            && deleteRemote.isEmpty && deleteLocal.isEmpty && forget.isEmpty && keepLocalOnly.isEmpty && keepRemoteOnly.isEmpty
    }
}

/// The server's side of a folder as the planner reads it: the mirrored letters by UID (a
/// dictionary, a pass's `MessageListing` read in place, or only what changed since the last
/// pass, `ServerChanges`).
public protocol ServerFlags {
    /// The letters of `uid` on the server, nil when it is not there. `agreed`, what its pair
    /// last agreed on, answers for a message that a view of only the changes does not list.
    func flags(of uid: UID, agreed: MessageFlags) -> MessageFlags?
    /// How many messages the view lists.
    var count: Int { get }
    /// Every UID listed, in any order.
    var uids: [UID] { get }
}

extension Dictionary: ServerFlags where Key == UID, Value == MessageFlags {
    public func flags(of uid: UID, agreed: MessageFlags) -> MessageFlags? { self[uid] }
    public var uids: [UID] { Array(keys) }
}

/// A Maildir's messages in `ByteOrder` of their base names, read by position: what the
/// planner walks beside the pairs the state hands out in the same order.
public struct NameOrder {
    public let count: Int
    public let name: (Int) -> String
    public let flags: (Int) -> MessageFlags

    public init(count: Int, name: @escaping (Int) -> String, flags: @escaping (Int) -> MessageFlags) {
        self.count = count
        self.name = name
        self.flags = flags
    }

    /// These entries, sorted here (their names are distinct).
    public init(_ entries: [(name: String, flags: MessageFlags)]) {
        let sorted = entries.sorted { ByteOrder.precedes($0.name, $1.name) }
        self.init(count: sorted.count, name: { sorted[$0].name }, flags: { sorted[$0].flags })
    }
}

/// A walk through a `NameOrder` beside names that come in the same order (the merge of a
/// sorted scan with the pairs the state hands out): the planner's and local moves' one way.
public struct NameCursor {
    public let order: NameOrder
    private var next = 0

    public init(_ order: NameOrder) { self.order = order }

    /// Moves past every name before `name`, handing each position to `passed`; the position
    /// of `name` itself when it is there (moved past too), else nil.
    public mutating func seek(_ name: String, passed: (Int) -> Void) -> Int? {
        while next < order.count {
            let c = ByteOrder.compare(order.name(next), name)
            if c > 0 { return nil }
            next += 1
            if c == 0 { return next - 1 }
            passed(next - 1)
        }
        return nil
    }

    /// Hands every position not passed yet to `passed`.
    public mutating func finish(passed: (Int) -> Void) {
        while next < order.count {
            passed(next)
            next += 1
        }
    }
}

/// The Maildir's side as the planner reads it: all letters by base name.
public protocol LocalFlags {
    func flags(of name: String) -> MessageFlags?
    var count: Int { get }
    /// Every base name, in any order.
    var names: [String] { get }
    /// Every base name with its letters, in byte order.
    var nameOrder: NameOrder { get }
}

extension Dictionary: LocalFlags where Key == String, Value == MessageFlags {
    public func flags(of name: String) -> MessageFlags? { self[name] }
    public var names: [String] { Array(keys) }
    public var nameOrder: NameOrder { NameOrder(map { ($0.key, $0.value) }) }
}

/// Which codes of `MessageFlags` a folder mirrors (the six flags and its keywords'), which
/// of them live in the state only, and which its server cannot keep.
public struct FlagScope {
    public var mirrored: MessageFlags
    /// Codes no file carries: the Maildir side holds what was agreed.
    public var stateOnly: MessageFlags
    /// Codes whose flag the server folder cannot keep: they stay local, never sent.
    public var unstorable: MessageFlags
    /// Codes that are notmuch tags locally (`keywords = "notmuch"`).
    public var tagged = MessageFlags()
    /// The tag codes of a local message whose tags changed since the last pass (by base
    /// name); nil: unchanged, it holds what was agreed.
    public var localTags: ((String) -> MessageFlags?)?

    public init(mirrored: MessageFlags = FlagMapping.six, stateOnly: MessageFlags = MessageFlags(), unstorable: MessageFlags = MessageFlags()) {
        self.mirrored = mirrored
        self.stateOnly = stateOnly
        self.unstorable = unstorable
    }

    /// A folder's scope under its keyword table and its PERMANENTFLAGS.
    public init(_ keywords: FolderKeywords, permanentFlags: [Flag]) {
        self.init(mirrored: keywords.mirrored, stateOnly: keywords.stateOnly, unstorable: keywords.unstorable(permanentFlags))
        tagged = keywords.tagged
    }
}

/// The pure planner: (remote view, local view, last agreed state, policy) → plan. No I/O.
///
/// Flags merge three ways per letter against the agreed flags: a letter changed on one side
/// takes that side's value; changed on both, both agree (a flag is either set or not).
/// Letters without an IMAP meaning stay local. A message gone from one side since the last
/// agreed state is deleted on the other when the policy carries that side's deletions;
/// otherwise the surviving copy is kept and marked so it is never copied back.
public enum FolderPlanner {
    /// - Parameters:
    ///   - remote: UID → mirrored letters of every message on the server.
    ///   - local: base name → all letters of every message file.
    ///   - totals: how many messages each side holds, when `remote`, `local` and `pairs` are
    ///     only the part that changed (an incremental pass): the mass-deletion guard weighs
    ///     deletions against the whole folder.
    ///   - unstorable: letters whose flag the server folder cannot keep: they stay local.
    public static func plan(remote: some ServerFlags, local: some LocalFlags,
                            pairs: [PlannedPair], policy: SyncPolicy, totals: (remote: Int, local: Int)? = nil,
                            unstorable: MessageFlags = MessageFlags(), scope: FlagScope? = nil) -> FolderPlan {
        let ordered = pairs.sorted { ByteOrder.precedes($0.localName ?? "", $1.localName ?? "") }
        return plan(remote: remote, local: local, policy: policy, totals: totals, unstorable: unstorable, scope: scope) { visit in
            for pair in ordered { visit(pair) }
        }
    }

    /// The same, with the pairs handed out one at a time (from the state, never all held):
    /// those without a local name first, then in `ByteOrder` of their local names, which
    /// the planner merges with `local.nameOrder` to find each pair's file and the files no
    /// pair names (uploads) without a set of every paired name (docs/scale.md). A name out
    /// of that order is still planned right (looked up, never uploaded), only slower.
    public static func plan(remote: some ServerFlags, local: some LocalFlags, policy: SyncPolicy,
                            totals: (remote: Int, local: Int)? = nil, unstorable: MessageFlags = MessageFlags(), scope: FlagScope? = nil,
                            pairsInNameOrder pairs: ((PlannedPair) -> Void) throws -> Void) rethrows -> FolderPlan {
        var plan = FolderPlan()
        var scope = scope ?? FlagScope()
        scope.unstorable = scope.unstorable.union(unstorable)
        var pairedUIDs: [UInt32] = []
        var unpairedNames: [String] = []
        var lateNames = Set<String>()
        let order = local.nameOrder
        var cursor = NameCursor(order)
        var lastName: String?
        var remoteDeletions: [FolderPlan.PairUID] = []
        var localDeletions: [FolderPlan.PairName] = []

        try pairs { pair in
            if let uid = pair.uid { pairedUIDs.append(uid.rawValue) }
            // The pair's file: the merge walks the names up to this one; those passed are unpaired.
            var l: MessageFlags?
            if let name = pair.localName, !name.isEmpty {
                if let lastName, ByteOrder.compare(name, lastName) <= 0 {
                    lateNames.insert(name)
                    l = local.flags(of: name)
                } else {
                    l = cursor.seek(name) { unpairedNames.append(order.name($0)) }.map(order.flags)
                    lastName = name
                }
            }
            // A pair still waiting for an upload's UID or a download's file is the
            // recovery step's business; it is never planned over.
            guard let uid = pair.uid, let name = pair.localName else { return }
            let remoteGoneByPolicy = uid == PlannedPair.goneRemote
            let localGoneByPolicy = name == PlannedPair.goneLocal
            let r = remoteGoneByPolicy ? nil : remote.flags(of: uid, agreed: pair.flags)

            switch (r, l) {
            case let (r?, l?):
                mergeFlags(pair: pair, uid: uid, name: name, remote: r, local: l, policy: policy, scope: scope, into: &plan)
            case (nil, _?) where remoteGoneByPolicy:
                break   // kept locally on purpose
            case (_?, nil) where localGoneByPolicy:
                break   // kept on the server on purpose
            case (nil, _?):
                // Expunged on the server since the last pass.
                if policy.propagatesRemoteDeletions { localDeletions.append(.init(pairID: pair.id, localName: name)) }
                else { plan.keepLocalOnly.append(pair.id) }
            case (_?, nil):
                // Removed from the Maildir since the last pass.
                if policy.propagatesLocalDeletions { remoteDeletions.append(.init(pairID: pair.id, uid: uid)) }
                else { plan.keepRemoteOnly.append(pair.id) }
            case (nil, nil):
                plan.forget.append(pair.id)
            }
        }
        cursor.finish { unpairedNames.append(order.name($0)) }

        // Mass-deletion guard, per direction, against the side's count before the pass.
        if heldBack(remoteDeletions.count, of: totals?.remote ?? remote.count, policy) {
            plan.heldRemoteDeletions = remoteDeletions.count
        } else {
            plan.deleteRemote = remoteDeletions
        }
        if heldBack(localDeletions.count, of: totals?.local ?? local.count, policy) {
            plan.heldLocalDeletions = localDeletions.count
        } else {
            plan.deleteLocal = localDeletions
        }

        if policy.writesLocal {
            pairedUIDs.sort()
            plan.downloads = remote.uids.filter { !contains(pairedUIDs, $0.rawValue) }.sorted()
        }
        if policy.writesRemote {
            plan.uploads = lateNames.isEmpty ? unpairedNames : unpairedNames.filter { !lateNames.contains($0) }
        }
        return plan
    }

    /// Whether the sorted `values` hold `value` (binary search).
    static func contains(_ values: [UInt32], _ value: UInt32) -> Bool {
        var low = 0, high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low < values.count && values[low] == value
    }

    static func heldBack(_ deletions: Int, of count: Int, _ policy: SyncPolicy) -> Bool {
        !policy.force && count >= 10 && Double(deletions) > policy.maxDeleteFraction * Double(count)
    }

    static func mergeFlags(pair: PlannedPair, uid: UID, name: String, remote server: MessageFlags, local fullLocal: MessageFlags,
                           policy: SyncPolicy, scope: FlagScope = FlagScope(), into plan: inout FolderPlan) {
        // The local side: the file's mirrored letters, for codes no file carries what was
        // agreed, and for tags those of the message when they changed (else what was agreed).
        var l = fullLocal.intersection(scope.mirrored).union(pair.flags.intersection(scope.stateOnly))
        if !scope.tagged.isEmpty || scope.localTags != nil {
            l = l.union(scope.localTags?(name) ?? pair.flags.intersection(scope.tagged))
        }
        let codes = scope.mirrored.letters
        // A flag the server cannot keep is read as the Maildir has it: never taken from the
        // file because the server lacks it, never sent.
        var r = server.intersection(scope.mirrored)
        for code in codes where scope.unstorable.contains(code) {
            if l.contains(code) { r.insert(code) } else { r.remove(code) }
        }
        plan.keptLocal = plan.keptLocal.union(l.intersection(scope.unstorable))
        let a = pair.flags
        var merged = MessageFlags()
        for code in codes {
            let inA = a.contains(code), inR = r.contains(code), inL = l.contains(code)
            let value = inR == inA ? inL : inR   // a side that changed wins; both changed → they agree
            if value { merged.insert(code) }
        }
        var remoteAfter = r
        var localAfter = l
        if merged != l && policy.writesLocal {
            var full = fullLocal   // keep letters without an IMAP meaning
            for code in codes { if merged.contains(code) { full.insert(code) } else { full.remove(code) } }
            // Codes that live in the state only are agreed, not written: no rename for them alone.
            if full.fileLetters != fullLocal.fileLetters { plan.localFlags.append(.init(localName: name, flags: full)) }
            let tagsNow = l.intersection(scope.tagged), tagsAfter = merged.intersection(scope.tagged)
            if tagsNow != tagsAfter { plan.localTags.append(.init(localName: name, flags: tagsAfter, was: tagsNow)) }
            localAfter = merged
        }
        if merged != r && policy.writesRemote {
            var add = MessageFlags(), remove = MessageFlags()
            for code in codes {
                if merged.contains(code) && !r.contains(code) { add.insert(code) }
                if !merged.contains(code) && r.contains(code) { remove.insert(code) }
            }
            plan.remoteFlags.append(.init(uid: uid, add: add, remove: remove))
            remoteAfter = merged
        }
        // Agree only on what both sides will hold; a one-way policy leaves the rest pending.
        if remoteAfter == merged && localAfter == merged && merged != a {
            plan.agreedFlags.append(.init(pairID: pair.id, flags: merged))
        }
    }
}
