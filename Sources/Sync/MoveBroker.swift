import IMAP
import Maildir
import State
import Support

/// Server moves (a message gone from folder A that arrived in folder B with the same
/// Message-ID and size) met during the folder passes themselves, so they are carried to the
/// Maildir as a rename instead of a download plus a deletion — without a look at the
/// folders of its own before the passes.
///
/// A pass of a folder that lost messages *parks* its gone files here instead of deleting
/// them (and does not note the server's new position for that folder yet, so that a crash
/// brings the gone messages back to the next pass); a pass of a folder that gained messages
/// waits until every losing folder queued before it has parked, then *claims* the files
/// that match its arrivals (renamed, not downloaded). Once every pass is over, the account
/// deletes what nobody claimed and notes the losing folders' positions (`settle`).
///
/// Parking waits on nothing and a pass only waits on passes queued before it, so no wait
/// goes round in a circle. Losing folders are queued first, so the usual move (A only lost,
/// B only gained) is always found; a move between two folders that both lost and gained,
/// the target queued first, is a download plus a deletion instead: nothing is lost either way.
actor MoveBroker {
    /// A gone message's file, waiting for a claim.
    struct Parked: Sendable {
        var source: FolderID
        var folder: MaildirFolder
        var pair: MessagePair
        var file: MaildirMessage
        /// The source folder's watch, told when a claim renames the file away.
        var witness: FolderChangeWitness?
        /// The Message-ID field, and the size in CRLF form (what RFC822.SIZE says).
        var messageID: [UInt8]
        var wireSize: Int64
    }

    /// What a losing folder's pass would have noted, had it not parked messages.
    struct Position: Sendable {
        var uidNext: UID?
        var highestModSeq: ModSeq?
    }

    /// Folders that lost messages (per LIST-STATUS) and folders that gained some.
    let sources: Set<FolderID>
    let targets: Set<FolderID>
    /// Each folder's place in the queue of passes.
    private let queueIndex: [FolderID: Int]
    private var parkingDone: Set<FolderID> = []
    private var parked: [Int64: [Parked]] = [:]   // by size in CRLF form
    private var taken: Set<Int64> = []
    private var positions: [FolderID: Position] = [:]
    private var waiters: [(folders: Set<FolderID>, continuation: CheckedContinuation<Void, Never>)] = []

    /// - Parameter order: the folders in the order their passes are queued.
    init(order: [FolderID], sources: Set<FolderID>, targets: Set<FolderID>) {
        self.sources = sources
        self.targets = targets
        queueIndex = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The gone messages of `folder` wait for claims.
    func park(_ folder: FolderID, _ items: [Parked]) {
        for p in items { parked[p.wireSize, default: []].append(p) }
        parkingDone.insert(folder)
        wake()
    }

    /// Notes the server position a losing folder's pass saw, for `settle` to record.
    func hold(_ folder: FolderID, at p: Position) { positions[folder] = p }

    /// Waits until every losing folder queued before `folder` has parked its gone messages.
    func waitForParking(by folder: FolderID) async {
        let mine = queueIndex[folder] ?? Int.max
        let awaited = Set(sources.filter { $0 != folder && (queueIndex[$0] ?? Int.max) < mine })
        if awaited.isSubset(of: parkingDone) { return }
        await withCheckedContinuation { waiters.append((awaited, $0)) }
    }

    /// Parked messages from other folders of this size (CRLF form): sizes first, so that a
    /// Message-ID is fetched only for an arrival that may match.
    func candidates(size: Int64, for folder: FolderID) -> [Parked] {
        (parked[size] ?? []).filter { $0.source != folder && !taken.contains($0.pair.id ?? -1) }
    }

    /// Takes a parked message for a rename; false when another pass took it first.
    func take(_ p: Parked) -> Bool {
        guard let id = p.pair.id, !taken.contains(id) else { return false }
        taken.insert(id)
        return true
    }

    /// Gives back a message taken for a rename that failed: it is deleted after all.
    func release(_ p: Parked) {
        if let id = p.pair.id { taken.remove(id) }
    }

    /// The pass of `folder` is over (or failed): nobody waits on its parking any more.
    func finish(_ folder: FolderID) {
        parkingDone.insert(folder)
        wake()
    }

    /// Once every pass is over: per losing folder, its parked messages split into the
    /// claimed ones (renamed away) and the rest (to delete), and the position to note.
    func settle() -> [(folder: FolderID, claimed: [Parked], unclaimed: [Parked], position: Position?)] {
        var byFolder: [FolderID: (claimed: [Parked], unclaimed: [Parked])] = [:]
        for list in parked.values {
            for p in list {
                if taken.contains(p.pair.id ?? -1) { byFolder[p.source, default: ([], [])].claimed.append(p) }
                else { byFolder[p.source, default: ([], [])].unclaimed.append(p) }
            }
        }
        parked = [:]
        return byFolder.map { ($0.key, $0.value.claimed, $0.value.unclaimed, positions[$0.key]) }
    }

    private func wake() {
        var still: [(folders: Set<FolderID>, continuation: CheckedContinuation<Void, Never>)] = []
        for w in waiters {
            if w.folders.isSubset(of: parkingDone) { w.continuation.resume() } else { still.append(w) }
        }
        waiters = still
    }
}
