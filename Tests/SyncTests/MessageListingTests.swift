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
                let flags = ["", "S", "FS", "DRS"][Int(rng.next() % 4)]
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
}
