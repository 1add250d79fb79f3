#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Maildir
import TestSupport

/// `FolderChangeWitness`: a pass's own announced changes leave the folder "untouched by
/// others"; anything else (a foreign delivery, rename or deletion, even of a file the pass
/// itself made) does not.
@Suite struct WitnessTests {
    private func deliver(_ folder: MaildirFolder, flags: MessageFlags = MessageFlags()) throws -> MaildirMessage {
        let writer = try folder.beginDelivery()
        try writer.writeWireBytes(Array("Subject: w\r\n\r\nbody\r\n".utf8))
        return try folder.deliver(writer, flags: flags)
    }

    @Test func ownChangesOnlyAreUntouched() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path + "/mail", layout: .fs)
        let folder = try store.createFolder(["INBOX"])
        let old = try deliver(folder)
        let gone = try deliver(folder, flags: MessageFlags("S"))
        let witness = try #require(FolderChangeWitness(folder: folder))
        #expect(witness.untouchedByOthers())
        // The pass renames one, deletes one and delivers one, announcing each.
        let renamed = try folder.setFlags(old, to: MessageFlags("FS"))
        witness.expectRemoved(old.fileName, from: old.subdirectory)
        witness.expectAdded(renamed.fileName, to: renamed.subdirectory)
        try folder.remove(gone)
        witness.expectRemoved(gone.fileName, from: gone.subdirectory)
        let fresh = try deliver(folder)
        witness.expectAdded(fresh.fileName, to: fresh.subdirectory)
        #expect(witness.untouchedByOthers())
        #expect(witness.untouchedByOthers())   // asking again changes nothing
        // Someone else deletes the file the pass just delivered: no longer untouched.
        unlink(folder.filePath(of: fresh))
        #expect(!witness.untouchedByOthers())
    }

    /// A first pass delivers 100,000 messages: more events than the kernel queues for one
    /// inotify instance (`max_queued_events`, 16,384 by default). The witness reads the queue
    /// as the pass announces, so it neither overflows (which would cost a listing of the
    /// whole folder at the end) nor keeps every name.
    @Test func aPassLargerThanTheKernelQueueStaysVouchedFor() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path + "/mail", layout: .fs)
        let folder = try store.createFolder(["INBOX"])
        var queued = 16384
        let limitFile = open("/proc/sys/fs/inotify/max_queued_events", O_RDONLY | O_CLOEXEC)
        if limitFile >= 0 {
            var bytes = [UInt8](repeating: 0, count: 32)
            let n = read(limitFile, &bytes, bytes.count)
            close(limitFile)
            if n > 0, let value = Int(String(decoding: bytes[..<n].filter { $0 >= 48 && $0 <= 57 }, as: UTF8.self)) { queued = value }
        }
        let count = min(queued, 200_000) + 2000
        let witness = try #require(FolderChangeWitness(folder: folder))
        var most = 0
        for i in 0..<count {
            let name = "\(i).witness-test,S=0"
            let fd = open(folder.path + "/new/" + name, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            close(fd)
            witness.expectAdded(name, to: .new)
            if i % 1000 == 999 { most = max(most, witness.unsettledCount) }
        }
        #expect(most <= 1000, "the witness kept \(most) names while the pass ran")
        #expect(witness.untouchedByOthers())
        #expect(witness.unsettledCount == 0)
    }

    @Test func foreignChangesAreSeen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path + "/mail", layout: .fs)
        let a = try store.createFolder(["A"])
        let b = try store.createFolder(["B"])
        let message = try deliver(a)
        let watchA = try #require(FolderChangeWitness(folder: a))
        let watchB = try #require(FolderChangeWitness(folder: b))
        #expect(FolderChangeWitness(folder: a) == nil)   // one witness per folder
        // A reader marks the message seen (new/ → cur/): A is touched, B is not.
        _ = try a.setFlags(message, to: MessageFlags("S"))
        #expect(!watchA.untouchedByOthers())
        #expect(watchB.untouchedByOthers())
        // An announced change that did not happen is a doubt too.
        watchB.expectAdded("nothing", to: .new)
        #expect(!watchB.untouchedByOthers())
    }

    @Test func aWitnessGoneLeavesTheFolderFreeForTheNext() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path + "/mail", layout: .fs)
        let folder = try store.createFolder(["INBOX"])
        do {
            let first = try #require(FolderChangeWitness(folder: folder))
            _ = try deliver(folder)
            #expect(!first.untouchedByOthers())
        }
        let second = try #require(FolderChangeWitness(folder: folder))
        #expect(second.untouchedByOthers())   // the first one's events are not the second's
    }
}
