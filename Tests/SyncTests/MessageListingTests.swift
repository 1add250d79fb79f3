import Testing
@testable import Sync
import Maildir
import Support
import TestSupport

/// `MessageListing`, the compact listing a pass plans from: it must answer exactly as the
/// dictionary it replaced, whatever order the server reports in.
@Suite struct MessageListingTests {
    func message(_ uid: UInt32, _ flags: String = "S", date: Int64? = 1_700_000_000, size: Int64? = 100) -> StoreMessage {
        StoreMessage(key: .uid(UID(uid)), flags: MessageFlags(flags), date: date, size: size)
    }

    @Test func answersLikeADictionaryInAnyOrder() {
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<200 {
            var listing = MessageListing()
            var table: [MessageKey: StoreMessage] = [:]
            var uid: UInt32 = 0
            for _ in 0..<Int(rng.next() % 60) {
                // Mostly ascending (a FETCH 1:*), sometimes out of order or a repeat.
                let roll = rng.next() % 10
                let u: UInt32 = roll < 7 ? { uid += 1 + UInt32(rng.next() % 3); return uid }() : UInt32(1 + rng.next() % UInt64(uid + 1))
                // "XS": a letter outside the six, which the compact columns cannot hold.
                let flags = ["", "S", "FS", "DRS", "XS", "DFPRST"][Int(rng.next() % 6)]
                let m = message(u, flags, date: rng.next() % 2 == 0 ? nil : Int64(u), size: rng.next() % 3 == 0 ? nil : Int64(u) * 10)
                listing.insert(m)
                table[m.key] = m
            }
            #expect(listing.count == table.count)
            for u in 0...(uid + 2) {
                #expect(listing[.uid(UID(u))] == table[.uid(UID(u))])
                #expect(listing.flags(of: UID(u)) == table[.uid(UID(u))]?.flags)
            }
            var seen: [MessageKey: StoreMessage] = [:]
            for (key, value) in listing {
                #expect(seen[key] == nil, "\(key) listed twice")
                seen[key] = value
            }
            #expect(seen == table)
            #expect(Set(listing.uids) == Set(table.keys.compactMap(\.uid)))
        }
    }

    @Test func aMaildirListingIsReadInPlace() {
        let files = [
            "1.a,S=5": MaildirMessage(baseName: "1.a,S=5", flags: MessageFlags("S"), subdirectory: .cur, fileName: "1.a,S=5:2,S", size: 5),
            "2.b": MaildirMessage(baseName: "2.b", flags: MessageFlags(), subdirectory: .new, fileName: "2.b", size: 9),
        ]
        let listing = MessageListing(files: files)
        #expect(listing.count == 2)
        #expect(listing[.name("1.a,S=5")] == StoreMessage(key: .name("1.a,S=5"), flags: MessageFlags("S"), date: nil, size: 5))
        #expect(listing.flags(of: "2.b") == MessageFlags())
        #expect(listing[.name("3.c")] == nil)
        #expect(Set(listing.names) == ["1.a,S=5", "2.b"])
    }

    /// The planner gives the same plan from a listing as from the dictionaries.
    @Test func thePlannerReadsAListingAsADictionary() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<100 {
            var listing = MessageListing()
            var remote: [UID: MessageFlags] = [:]
            var files: [String: MaildirMessage] = [:]
            var local: [String: MessageFlags] = [:]
            var pairs: [PlannedPair] = []
            for u in 1...UInt32(1 + rng.next() % 40) {
                let flags = MessageFlags(["", "S", "FS"][Int(rng.next() % 3)])
                let name = "\(u).m,S=1"
                switch rng.next() % 4 {
                case 0: listing.insert(message(u, flags.description)); remote[UID(u)] = flags
                case 1: files[name] = MaildirMessage(baseName: name, flags: flags, subdirectory: .cur, fileName: name + ":2," + flags.description, size: 1)
                        local[name] = flags
                default:
                    listing.insert(message(u, flags.description)); remote[UID(u)] = flags
                    files[name] = MaildirMessage(baseName: name, flags: flags, subdirectory: .cur, fileName: name + ":2,", size: 1)
                    local[name] = flags
                    pairs.append(PlannedPair(id: Int64(u), uid: UID(u), localName: name, flags: MessageFlags("S")))
                }
            }
            let a = FolderPlanner.plan(remote: listing, local: MessageListing(files: files), pairs: pairs, policy: SyncPolicy())
            let b = FolderPlanner.plan(remote: remote, local: local, pairs: pairs, policy: SyncPolicy())
            #expect(a == b)
        }
    }

    /// Two files of one base name (a copy left in `new/`): the listing keeps one, the one in
    /// `new/`, as the dictionary filled in scan order did.
    @Test func aScanWithTwoFilesOfOneNameListsOne() {
        let scan = [
            MaildirMessage(baseName: "2.b", flags: MessageFlags("S"), subdirectory: .cur, fileName: "2.b:2,S", size: 9),
            MaildirMessage(baseName: "1.a", flags: MessageFlags(), subdirectory: .new, fileName: "1.a", size: 5),
            MaildirMessage(baseName: "2.b", flags: MessageFlags(), subdirectory: .new, fileName: "2.b", size: 9),
            MaildirMessage(baseName: "0.c", flags: MessageFlags("RS"), subdirectory: .cur, fileName: "0.c:2,RS", size: 1),
        ]
        let listing = MessageListing(files: scan)
        #expect(listing.count == 3)
        #expect(listing.files.map(\.baseName) == ["0.c", "1.a", "2.b"])
        #expect(listing.file(named: "2.b")?.subdirectory == .new)
        #expect(Array(listing).count == 3)
        let order = listing.nameOrder
        #expect((0..<order.count).map(order.name) == ["0.c", "1.a", "2.b"])
        #expect(order.flags(0) == MessageFlags("RS"))
    }

    /// The planner merges pairs handed out in name order with the sorted listing. It must
    /// find what sets of every paired UID and name found: each pair's file, and as uploads
    /// and downloads exactly the messages no pair names. Pairs out of order (never from the
    /// state) are planned the same.
    @Test func theMergeFindsWhatSetsFound() {
        var rng = SeededGenerator(seed: 11)
        for round in 0..<300 {
            var remote: [UID: MessageFlags] = [:]
            var files: [String: MaildirMessage] = [:]
            var pairs: [PlannedPair] = []
            let n = UInt32(1 + rng.next() % 50)
            for u in 1...n {
                let flags = MessageFlags(["", "S", "FS", "RS"][Int(rng.next() % 4)])
                // Names of several lengths and one non-ASCII, so byte order is not length order.
                let name = ["\(u).m", "x\(u)", "\u{E9}\(u)", "\(u % 7).\(u)"][Int(rng.next() % 4)]
                let onServer = rng.next() % 5 != 0, onDisk = rng.next() % 5 != 0
                if onServer { remote[UID(u)] = flags }
                if onDisk { files[name] = MaildirMessage(baseName: name, flags: flags, subdirectory: .cur, fileName: name + ":2," + flags.description, size: 1) }
                switch rng.next() % 6 {
                case 0: break   // not paired: a new message on the side(s) that have it
                case 1: pairs.append(PlannedPair(id: Int64(u), uid: nil, localName: name, flags: MessageFlags()))       // upload waiting for its UID
                case 2: pairs.append(PlannedPair(id: Int64(u), uid: UID(u), localName: nil, flags: MessageFlags()))     // download not committed
                case 3: pairs.append(PlannedPair(id: Int64(u), uid: UID(u), localName: "", flags: MessageFlags("S")))   // gone locally, kept
                default: pairs.append(PlannedPair(id: Int64(u), uid: UID(u), localName: name, flags: MessageFlags("S")))
                }
            }
            // A pair names a file at most once (the state's unique index).
            var named = Set<String>()
            pairs = pairs.filter { p in p.localName.map { $0.isEmpty || named.insert($0).inserted } ?? true }
            let listing = MessageListing(files: files)
            let policy = SyncPolicy(maxDeleteFraction: 1)
            let plan = FolderPlanner.plan(remote: remote, local: listing, pairs: pairs, policy: policy)
            let pairedUIDs = Set(pairs.compactMap(\.uid)), pairedNames = Set(pairs.compactMap(\.localName))
            #expect(plan.downloads == remote.keys.filter { !pairedUIDs.contains($0) }.sorted(), "round \(round)")
            #expect(Set(plan.uploads) == Set(files.keys.filter { !pairedNames.contains($0) }), "round \(round)")
            #expect(plan.uploads.count == Set(plan.uploads).count)
            var shuffled = pairs
            for i in shuffled.indices.reversed() where i > 0 { shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let unordered = FolderPlanner.plan(remote: remote, local: listing, policy: policy) { visit in shuffled.forEach(visit) }
            #expect(Set(unordered.uploads) == Set(plan.uploads) && unordered.downloads == plan.downloads, "round \(round)")
            #expect(Set(unordered.deleteLocal.map(\.pairID)) == Set(plan.deleteLocal.map(\.pairID)))
            #expect(Set(unordered.deleteRemote.map(\.pairID)) == Set(plan.deleteRemote.map(\.pairID)))
            #expect(Set(unordered.localFlags.map(\.localName)) == Set(plan.localFlags.map(\.localName)))
            #expect(Set(unordered.forget) == Set(plan.forget))
        }
    }

    /// A CONDSTORE pass's view of the server: what it lists, else gone if it vanished, else
    /// what the pair agreed on.
    @Test func serverChangesAnswerForTheUnlistedWithTheAgreedFlags() {
        var listed = MessageListing()
        listed.insert(message(5, "FS"))
        let changes = ServerChanges(listed: listed, vanished: { $0 == UID(3) }, count: 10)
        #expect(changes.flags(of: UID(5), agreed: MessageFlags("S")) == MessageFlags("FS"))
        #expect(changes.flags(of: UID(3), agreed: MessageFlags("S")) == nil)
        #expect(changes.flags(of: UID(4), agreed: MessageFlags("RS")) == MessageFlags("RS"))
        #expect(changes.count == 10 && changes.uids == [UID(5)])
        let whole = ServerChanges(complete: listed)
        #expect(whole.flags(of: UID(4), agreed: MessageFlags("RS")) == nil)
        #expect(whole.count == 1)
    }
}
