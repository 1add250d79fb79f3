import Testing
@testable import Sync
import Support

/// The pure half of upload recovery: which server message is which lost upload.
@Suite struct ArrivalMatchingTests {
    func sent(_ body: String, id: String?) -> WireFingerprint {
        let bytes = Array(body.utf8)
        return WireFingerprint(size: Int64(bytes.count), messageID: id.map { Array($0.utf8) }, digest: SHA256.digest(bytes))
    }
    func candidate(_ uid: UInt32, _ f: WireFingerprint) -> ArrivalMatching.Candidate {
        .init(uid: UID(uid), size: f.size, messageID: f.messageID)
    }
    func run(_ wanted: [ArrivalMatching.Wanted], _ candidates: [ArrivalMatching.Candidate],
             bodies: [UInt32: WireFingerprint]) -> (result: [Int: UID], hashed: [UID]) {
        let first = ArrivalMatching.settle(wanted, among: candidates)
        var digests: [UID: [UInt8]] = [:]
        for uid in first.toHash { digests[uid] = bodies[uid.rawValue]?.digest }
        return (ArrivalMatching.finish(wanted, among: candidates, settled: first.settled, digests: digests), first.toHash)
    }

    @Test func uniqueMessageIDAndSizeSettleWithoutBodies() {
        let a = sent("a", id: "<a@x>"), b = sent("bb", id: "<b@x>")
        let wanted = [a, b].map { ArrivalMatching.Wanted(sent: $0, from: UID(10)) }
        let other = sent("zz", id: "<z@x>")   // another client's message of the same size
        let (result, hashed) = run(wanted, [candidate(10, a), candidate(11, other), candidate(12, b)], bodies: [:])
        #expect(result == [0: UID(10), 1: UID(12)])
        #expect(hashed.isEmpty, "no body fetched")
    }

    @Test func withoutMessageIDTheDigestDecides() {
        let a = sent("hello", id: nil), lookalike = sent("HELLO", id: nil)
        let (result, hashed) = run([.init(sent: a, from: UID(1))], [candidate(3, lookalike), candidate(4, a)], bodies: [3: lookalike, 4: a])
        #expect(result == [0: UID(4)])
        #expect(hashed == [UID(3), UID(4)], "only the equal-size candidates")
    }

    /// Two byte-identical files uploaded once each are two messages, each paired once;
    /// if only one arrived, only one upload is settled (the other is sent again).
    @Test func identicalUploadsPairOneToOne() {
        let a = sent("same", id: "<same@x>")
        let wanted = [ArrivalMatching.Wanted(sent: a, from: UID(5)), ArrivalMatching.Wanted(sent: a, from: UID(5))]
        let both = run(wanted, [candidate(5, a), candidate(6, a)], bodies: [5: a, 6: a]).result
        #expect(both == [0: UID(5), 1: UID(6)])
        let one = run(wanted, [candidate(6, a)], bodies: [6: a]).result
        #expect(one == [0: UID(6)])
        let three = run(wanted, [candidate(5, a), candidate(6, a), candidate(7, a)], bodies: [5: a, 6: a, 7: a]).result
        #expect(three.count == 2 && Set(three.values).count == 2)
    }

    @Test func candidatesBelowTheJournaledUIDNextAreNeverTaken() {
        let a = sent("a", id: "<a@x>")
        #expect(run([.init(sent: a, from: UID(8))], [candidate(7, a)], bodies: [7: a]).result.isEmpty)
    }

    /// A server copy whose Message-ID this side reads differently (a header spelled in a way
    /// one parser misses) is still found by size and digest.
    @Test func aMessageIDReadDifferentlyFallsBackToTheDigest() {
        let a = sent("body", id: "<a@x>")
        let seen = ArrivalMatching.Candidate(uid: UID(2), size: a.size, messageID: nil)
        #expect(run([.init(sent: a, from: UID(1))], [seen], bodies: [2: a]).result == [0: UID(2)])
    }

    @Test func sameMessageIDOtherBytesIsNoMatchWhenAmbiguous() {
        let a = sent("body1", id: "<a@x>"), b = sent("body2", id: "<a@x>")
        let wanted = [ArrivalMatching.Wanted(sent: a, from: UID(1))]
        // Two candidates with the same Message-ID and size: the digest picks the right one.
        #expect(run(wanted, [candidate(2, b), candidate(3, a)], bodies: [2: b, 3: a]).result == [0: UID(3)])
    }

    @Test func fingerprintOfWireBytesFindsTheMessageID() {
        var f = WireFingerprinter()
        let bytes = Array("From: a\r\nMessage-ID:\r\n <folded@x>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n".utf8)
        f.feed(Array(bytes[0..<7]))
        f.feed(Array(bytes[7...]))
        let print = f.finish()
        #expect(print.messageID == Array("<folded@x>".utf8))
        #expect(print.size == Int64(bytes.count) && print.digest == SHA256.digest(bytes))
        var none = WireFingerprinter()
        none.feed(Array("Subject: s\r\n\r\nMessage-ID: <in-body@x>\r\n".utf8))
        #expect(none.finish().messageID == nil, "a Message-ID line in the body is not the header's")
    }
}
