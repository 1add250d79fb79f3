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

    func fingerprint(_ chunks: [String]) -> WireFingerprint {
        var f = WireFingerprinter()
        for c in chunks { f.feed(Array(c.utf8)) }
        return f.finish()
    }

    /// The normalized form (Courier's: bare CRs dropped, an open last line ended) whatever
    /// the chunking, and none when the bytes are already in it.
    @Test(arguments: [
        ("Subject: s\r\n\r\nends well\r\n", nil),
        ("Subject: s\r\n\r\nopen", "Subject: s\r\n\r\nopen\r\n"),
        ("Subject: s\r\n\r\nbefore\rafter\r\n", "Subject: s\r\n\r\nbeforeafter\r\n"),
        ("Subject: s\r\n\r\ntwo\r\r\n", "Subject: s\r\n\r\ntwo\r\n"),
        ("Subject: s\r\n\r\nends in CR\r\n\r", "Subject: s\r\n\r\nends in CR\r\n"),
        ("Subject: s\r\n\r\nopen\r", "Subject: s\r\n\r\nopen\r\n"),
    ] as [(String, String?)])
    func normalizedForm(sent: String, stored: String?) {
        let bytes = Array(sent.utf8)
        for cut in 0...bytes.count {
            let f = fingerprint([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)])
            #expect(f.size == Int64(bytes.count) && f.digest == SHA256.digest(bytes), "cut at \(cut)")
            let expected = stored.map { WireFingerprint.Form(size: Int64($0.utf8.count), digest: SHA256.digest(Array($0.utf8))) }
            #expect(f.normalized == expected, "cut at \(cut)")
        }
    }

    /// An upload stored in the normalized form is found by that form's digest — nothing
    /// else of that size passes for it.
    @Test func aNormalizedCopyIsFoundByItsDigest() {
        let open = fingerprint(["Message-ID: <o@x>\r\n\r\nno newline at the end"])
        let stored = sent("Message-ID: <o@x>\r\n\r\nno newline at the end\r\n", id: "<o@x>")
        let otherSameSize = sent("Message-ID: <o@x>\r\n\r\nno newline at the END\r\n", id: "<o@x>")
        let wanted = [ArrivalMatching.Wanted(sent: open, from: UID(1))]
        let (result, hashed) = run(wanted, [candidate(2, otherSameSize), candidate(3, stored)], bodies: [2: otherSameSize, 3: stored])
        #expect(result == [0: UID(3)])
        #expect(hashed == [UID(2), UID(3)], "a normalized copy is settled by its digest only")
        #expect(run(wanted, [candidate(2, otherSameSize)], bodies: [2: otherSameSize]).result.isEmpty)
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
