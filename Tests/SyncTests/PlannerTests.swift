import Testing
@testable import Sync
import Config
import IMAP
import Maildir
import Support

/// Table tests of the pure planner: every combination of {paired, only remote, only local}
/// × {flags changed here / there / both / neither} × {deleted here / there} × policies.
@Suite struct PlannerTests {
    let uid = UID(7)
    let name = "1.M1P1.host,S=10"

    func pair(_ flags: String = "S") -> PlannedPair { PlannedPair(id: 1, uid: uid, localName: name, flags: MessageFlags(flags)) }

    func plan(remote: String?, local: String?, pair p: PlannedPair?, policy: SyncPolicy = SyncPolicy()) -> FolderPlan {
        FolderPlanner.plan(remote: remote.map { [uid: MessageFlags($0)] } ?? [:],
                           local: local.map { [name: MessageFlags($0)] } ?? [:],
                           pairs: p.map { [$0] } ?? [], policy: policy)
    }

    /// (agreed, remote, local) → (expected remote after, expected local after), policy both.
    @Test(arguments: [
        ("S", "S", "S", "S", "S"),           // neither changed
        ("S", "FS", "S", "FS", "FS"),        // changed there
        ("S", "S", "RS", "RS", "RS"),        // changed here
        ("S", "FS", "R", "FR", "FR"),        // both changed different flags: both apply
        ("", "F", "F", "F", "F"),            // both set the same flag
        ("FS", "S", "S", "S", "S"),          // both cleared the same flag
        ("S", "", "S", "", ""),              // cleared there
        ("DFPRST", "", "DFPRST", "", ""),    // all six mapped letters
    ])
    func flagMerge(agreed: String, remote: String, local: String, remoteAfter: String, localAfter: String) {
        let p = plan(remote: remote, local: local, pair: pair(agreed))
        let pushed = p.remoteFlags.first
        var r = MessageFlags(remote)
        if let pushed {
            for l in pushed.add.letters { r.insert(l) }
            for l in pushed.remove.letters { r.remove(l) }
        }
        #expect(r == MessageFlags(remoteAfter))
        let l = p.localFlags.first?.flags ?? MessageFlags(local)
        #expect(l == MessageFlags(localAfter))
        if remoteAfter != agreed { #expect(p.agreedFlags.first?.flags == MessageFlags(remoteAfter)) }
        #expect(p.downloads.isEmpty && p.uploads.isEmpty && p.deleteLocal.isEmpty && p.deleteRemote.isEmpty)
    }

    /// A folder whose PERMANENTFLAGS lacks `$Forwarded` (and `\*`): `P` stays local — not
    /// taken from the file because the server never kept it, not sent again and again.
    @Test func flagsTheServerCannotKeepStayLocal() {
        let unstorable = FlagMapping.unstorable([.seen, .answered, .flagged, .deleted, .draft])
        #expect(unstorable == MessageFlags("P"))
        #expect(FlagMapping.unstorable([.seen, .wildcard]).letters.isEmpty)
        #expect(FlagMapping.unstorable([]).letters.isEmpty, "no PERMANENTFLAGS: every flag is kept")
        func run(agreed: String, remote: String, local: String) -> FolderPlan {
            FolderPlanner.plan(remote: [uid: MessageFlags(remote)], local: [name: MessageFlags(local)],
                               pairs: [pair(agreed)], policy: SyncPolicy(), unstorable: unstorable)
        }
        // Agreed with P, the server lost it (session-only): the file keeps P, nothing is sent.
        let kept = run(agreed: "PS", remote: "S", local: "PS")
        #expect(kept.localFlags.isEmpty && kept.remoteFlags.isEmpty, "\(kept)")
        // Set here: not sent; a flag the server keeps still goes, in the same pass.
        let set = run(agreed: "S", remote: "S", local: "FPS")
        #expect(set.remoteFlags.first?.add == MessageFlags("F") && set.remoteFlags.first?.remove.letters.isEmpty == true, "\(set)")
        #expect(set.localFlags.isEmpty)
        // A server change still reaches the file, and P stays on it.
        let there = run(agreed: "PS", remote: "", local: "PS")
        #expect(there.localFlags.first?.flags == MessageFlags("P") && there.remoteFlags.isEmpty, "\(there)")
    }

    @Test func lettersWithoutIMAPMeaningStayLocal() {
        let p = plan(remote: "FS", local: "Sab", pair: pair("S"))
        #expect(p.localFlags.first?.flags == MessageFlags("FSab"))
        #expect(p.remoteFlags.isEmpty)
    }

    @Test(arguments: [
        // (direction, delete, deletedWhere, expect: "deleteLocal" | "deleteRemote" | "keepLocal" | "keepRemote")
        (SyncDirection.both, DeletePolicy.both, "remote", "deleteLocal"),
        (.both, .both, "local", "deleteRemote"),
        (.both, .pull, "remote", "deleteLocal"),
        (.both, .pull, "local", "keepRemote"),
        (.both, .push, "remote", "keepLocal"),
        (.both, .push, "local", "deleteRemote"),
        (.both, .none, "remote", "keepLocal"),
        (.both, .none, "local", "keepRemote"),
        (.pull, .both, "remote", "deleteLocal"),
        (.pull, .both, "local", "keepRemote"),
        (.push, .both, "remote", "keepLocal"),
        (.push, .both, "local", "deleteRemote"),
    ])
    func deletions(direction: SyncDirection, delete: DeletePolicy, deletedWhere: String, expect: String) {
        let policy = SyncPolicy(direction: direction, delete: delete)
        let p = plan(remote: deletedWhere == "remote" ? nil : "S", local: deletedWhere == "local" ? nil : "S", pair: pair(), policy: policy)
        #expect(p.deleteLocal == (expect == "deleteLocal" ? [.init(pairID: 1, localName: name)] : []))
        #expect(p.deleteRemote == (expect == "deleteRemote" ? [.init(pairID: 1, uid: uid)] : []))
        #expect(p.keepLocalOnly == (expect == "keepLocal" ? [1] : []))
        #expect(p.keepRemoteOnly == (expect == "keepRemote" ? [1] : []))
        #expect(p.downloads.isEmpty && p.uploads.isEmpty, "a kept survivor is never copied back")
    }

    @Test func keptSurvivorsStayQuiet() {
        let keptLocal = PlannedPair(id: 1, uid: PlannedPair.goneRemote, localName: name, flags: MessageFlags("S"))
        #expect(plan(remote: nil, local: "S", pair: keptLocal).isEmpty)
        let keptRemote = PlannedPair(id: 1, uid: uid, localName: PlannedPair.goneLocal, flags: MessageFlags("S"))
        #expect(plan(remote: "S", local: nil, pair: keptRemote).isEmpty)
        // Once the kept side goes too, the pair is forgotten.
        #expect(plan(remote: nil, local: nil, pair: keptLocal).forget == [1])
    }

    @Test(arguments: [
        (SyncDirection.both, true, true), (.pull, true, false), (.push, false, true),
    ])
    func newMessagesByDirection(direction: SyncDirection, downloads: Bool, uploads: Bool) {
        let p = FolderPlanner.plan(remote: [UID(9): MessageFlags()], local: ["new.x.host": MessageFlags("S")], pairs: [],
                                   policy: SyncPolicy(direction: direction))
        #expect(p.downloads == (downloads ? [UID(9)] : []))
        #expect(p.uploads == (uploads ? ["new.x.host"] : []))
    }

    @Test func bothSidesGoneForgetsThePair() {
        #expect(plan(remote: nil, local: nil, pair: pair()).forget == [1])
    }

    @Test func pendingPairsAreLeftToRecovery() {
        let pending = PlannedPair(id: 1, uid: nil, localName: name, flags: MessageFlags())
        let p = plan(remote: nil, local: "S", pair: pending)
        #expect(p.isEmpty, "an upload waiting for its UID is neither re-uploaded nor deleted")
    }

    @Test(arguments: [
        (12, 6, false), (12, 7, true), (9, 9, false), (10, 6, true), (100, 50, false), (100, 51, true),
    ])
    func massDeletionGuard(count: Int, deleted: Int, held: Bool) {
        var remote: [UID: MessageFlags] = [:]
        var local: [String: MessageFlags] = [:]
        var pairs: [PlannedPair] = []
        for i in 1...count {
            let u = UID(UInt32(i))
            if i > deleted { remote[u] = MessageFlags() }   // the server expunged the first `deleted`
            local["m\(i)"] = MessageFlags()
            pairs.append(PlannedPair(id: Int64(i), uid: u, localName: "m\(i)", flags: MessageFlags()))
        }
        let p = FolderPlanner.plan(remote: remote, local: local, pairs: pairs, policy: SyncPolicy())
        #expect(p.heldLocalDeletions == (held ? deleted : 0))
        #expect(p.deleteLocal.count == (held ? 0 : deleted))
        #expect(p.uploads.isEmpty, "held survivors are not re-uploaded")
        let forced = FolderPlanner.plan(remote: remote, local: local, pairs: pairs, policy: SyncPolicy(force: true))
        #expect(forced.deleteLocal.count == deleted && forced.heldLocalDeletions == 0)
        // The other direction, measured against the server's count.
        var r2: [UID: MessageFlags] = [:]
        var l2: [String: MessageFlags] = [:]
        for i in 1...count {
            r2[UID(UInt32(i))] = MessageFlags()
            if i > deleted { l2["m\(i)"] = MessageFlags() }
        }
        let p2 = FolderPlanner.plan(remote: r2, local: l2, pairs: pairs, policy: SyncPolicy())
        #expect(p2.heldRemoteDeletions == (held ? deleted : 0))
        #expect(p2.downloads.isEmpty, "held survivors are not re-downloaded")
    }

    @Test(arguments: [
        (["*"], ["INBOX"], true), (["*"], ["Archive", "2024"], true), (["%"], ["Archive", "2024"], false),
        (["%"], ["Archive"], true), (["*", "!Spam"], ["Spam"], false), (["*", "!Spam"], ["Spam", "x"], true),
        (["*", "!Spam*"], ["Spam", "x"], false), (["!Spam", "*"], ["Spam"], true), (["INBOX"], ["Sent"], false),
        (["Archive/*"], ["Archive", "2024"], true), (["Archive/%"], ["Archive", "2024", "Q1"], false), ([], ["INBOX"], false),
    ])
    func folderPatterns(patterns: [String], folder: [String], included: Bool) {
        #expect(FolderFilter(patterns).includes(folder) == included)
    }

    @Test func namespaceMapping() {
        let courier = FolderNaming(prefix: Array("INBOX.".utf8), delimiter: UInt8(ascii: "."))
        #expect(courier.folder(for: MailboxName("INBOX.Sent")) == ["Sent"])
        #expect(courier.folder(for: MailboxName("INBOX.Archive.2024")) == ["Archive", "2024"])
        #expect(courier.folder(for: .inbox) == ["INBOX"])
        #expect(courier.mailbox(for: ["Archive", "2024"]) == MailboxName("INBOX.Archive.2024"))
        #expect(courier.mailbox(for: ["v1.0"]) == nil, "a name with the server's delimiter cannot exist there")
        let dovecot = FolderNaming()
        #expect(dovecot.folder(for: MailboxName("Entwürfe")) == ["Entwürfe"])
        #expect(dovecot.mailbox(for: ["Entwürfe"])?.bytes == Array("Entw&APw-rfe".utf8))
        #expect(dovecot.folder(for: MailboxName("inbox")) == ["INBOX"])
    }
}
