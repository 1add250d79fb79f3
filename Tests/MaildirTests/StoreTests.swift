#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Maildir
import TestSupport

func fileNames(_ dir: String) -> [String] {
    (FS.entries(dir) ?? []).map { String(decoding: $0.name, as: UTF8.self) }.sorted()
}

@Suite struct StoreTests {
    @Test func deliveryIsExactAndInTheRightPlace() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path + "/mail", layout: .fs)
        let inbox = try store.createFolder(["INBOX"])
        // Wire bytes arrive in chunks that split a CRLF.
        let wire = Array("From: a@b\r\nSubject: x\r\n\r\nbody\r\nlast line\r\n".utf8)
        let writer = try inbox.beginDelivery()
        try writer.writeWireBytes(wire[..<12])
        try writer.writeWireBytes(wire[12...])
        let unflagged = try inbox.deliver(writer, flags: MessageFlags(), modificationTime: 1_700_000_000)
        #expect(unflagged.subdirectory == .new)
        #expect(!unflagged.fileName.contains(":2,"))
        let content = readFile(inbox.filePath(of: unflagged))
        #expect(content == "From: a@b\nSubject: x\n\nbody\nlast line\n")
        #expect(unflagged.size == Int64(content!.utf8.count))
        var st = stat()
        stat(inbox.filePath(of: unflagged), &st)
        #expect(st.st_mtim.tv_sec == 1_700_000_000)
        #expect(st.st_mode & 0o777 == 0o600)

        let w2 = try inbox.beginDelivery()
        try w2.write(Array("x\n".utf8))
        let flagged = try inbox.deliver(w2, flags: MessageFlags("SF"), modificationTime: nil)
        #expect(flagged.subdirectory == .cur)
        #expect(flagged.fileName.hasSuffix(":2,FS"))
        #expect(fileNames(inbox.path + "/tmp").isEmpty)

        let scan = try inbox.scan()
        #expect(Set(scan.messages) == [unflagged, flagged])
    }

    @Test func batchDeliveryCommitsAll() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: .maildirPlusPlus)
        let folder = try store.createFolder(["Archive"])
        #expect(folder.path == dir.path + "/.Archive")
        let batch = DeliveryBatch(folder: folder)
        for i in 0..<50 {
            let w = try folder.beginDelivery()
            try w.writeWireBytes(Array("Message-ID: <\(i)@x>\r\n\r\nbody \(i)\r\n".utf8))
            try batch.add(w, flags: i % 2 == 0 ? MessageFlags("S") : MessageFlags())
        }
        // Nothing is visible before the commit.
        #expect(try folder.scan().messages.isEmpty)
        let delivered = try batch.commit()
        #expect(delivered.count == 50)
        #expect(Set(delivered.map(\.baseName)).count == 50)
        #expect(fileNames(folder.path + "/tmp").isEmpty)
        #expect(fileNames(folder.path + "/cur").count == 25 && fileNames(folder.path + "/new").count == 25)
        #expect(readFile(folder.filePath(of: delivered[7])) == "Message-ID: <7@x>\n\nbody 7\n")
    }

    /// A message with an old received date keeps a fresh tmp/ file until it is in place (a
    /// reader's clean-up of stale tmp/ files must not take it for a crashed delivery's
    /// leftover), then gets that date.
    @Test func oldReceivedDateIsGivenOnlyInPlace() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        let old: time_t = 1_700_000_000
        let batch = DeliveryBatch(folder: folder)
        let w = try folder.beginDelivery()
        try w.writeWireBytes(Array("Message-ID: <old@x>\r\n\r\nbody\r\n".utf8))
        try batch.add(w, flags: MessageFlags(), modificationTime: old)
        let scan = try folder.scan()   // what a reader does: removes tmp/ files older than 36 hours
        #expect(scan.removedStaleTemporaryFiles == 0)
        let delivered = try batch.commit()
        var st = stat()
        #expect(stat(folder.filePath(of: delivered[0]), &st) == 0)
        #expect(st.st_mtim.tv_sec == old)

        let single = try folder.beginDelivery()
        try single.write(Array("x\n".utf8))
        let m = try folder.deliver(single, flags: MessageFlags("S"), modificationTime: old)
        #expect(stat(folder.filePath(of: m), &st) == 0 && st.st_mtim.tv_sec == old)
    }

    @Test func abortedDeliveryLeavesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        let w = try folder.beginDelivery()
        try w.write(Array("partial".utf8))
        w.abort()
        #expect(fileNames(folder.path + "/tmp").isEmpty)
        #expect(try folder.scan().messages.isEmpty)
    }

    @Test func flagsByRenameKeepIdentity() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        let w = try folder.beginDelivery()
        try w.write(Array("x\n".utf8))
        let m = try folder.deliver(w, flags: MessageFlags())
        let seen = try folder.setFlags(m, to: MessageFlags("S"))
        #expect(seen.subdirectory == .cur && seen.baseName == m.baseName && seen.fileName == m.baseName + ":2,S")
        let none = try folder.setFlags(seen, to: MessageFlags())
        #expect(none.subdirectory == .cur && none.fileName == m.baseName + ":2,")
        #expect(try folder.scan().messages == [none])
        // A reader renamed it meanwhile: a clear ENOENT, nothing else touched.
        rename(folder.filePath(of: none), folder.path + "/cur/" + m.baseName + ":2,R")
        #expect(throws: MaildirError.self) { _ = try folder.setFlags(none, to: MessageFlags("F")) }
        let rescanned = try folder.scan().messages
        #expect(rescanned.count == 1 && rescanned[0].flags == MessageFlags("R") && rescanned[0].baseName == m.baseName)
        try folder.remove(rescanned[0])
        #expect(try folder.scan().messages.isEmpty)
    }

    /// A message a mail reader renamed (a flag change) after the pass listed it is still
    /// removed, under its new name; another message whose name merely starts the same stays.
    @Test func removalFollowsAFlagChangeByAReader() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        let w = try folder.beginDelivery()
        try w.write(Array("Message-ID: <r@x>\n\nbody\n".utf8))
        let listed = try folder.deliver(w, flags: MessageFlags())
        let other = folder.path + "/cur/" + listed.baseName + "0:2,S"   // same prefix, another message
        writeFile(other, "other\n", mode: 0o600)
        rename(folder.filePath(of: listed), folder.path + "/cur/" + listed.baseName + ":2,FS")
        try folder.remove(listed)
        #expect(fileNames(folder.path + "/cur") == [listed.baseName + "0:2,S"])
        #expect(fileNames(folder.path + "/new").isEmpty)
        try folder.remove(listed)   // gone under every name: no failure
    }

    /// Folder names whose components begin with a combining mark (a "/" or "." before one
    /// is a single Character with it): created, listed, renamed and their empty parents
    /// removed exactly like any other name, in both layouts.
    @Test(arguments: MaildirLayout.allCases)
    func combiningMarkAfterSeparator(layout: MaildirLayout) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: layout)
        let names: [[String]] = [["\u{5A0}x"], ["a", "\u{301}b"], ["a", "\u{301}b", ".\u{301}c"]]
        for name in names { _ = try store.createFolder(name) }
        let listed = store.listFolders().filter(\.isMaildir).map(\.name)
        #expect(Set(listed) == Set(names))
        _ = try store.renameFolder(["a", "\u{301}b"], to: ["\u{300}z"])
        let after = Set(store.listFolders().filter(\.isMaildir).map(\.name))
        #expect(after == Set([["\u{5A0}x"], ["\u{300}z"], ["\u{300}z", ".\u{301}c"]]))
        // The plain parent "a" of fs is left empty by the rename, and goes.
        #expect(!listDirectory(dir.path).contains("a"))
    }

    /// Messages of several folders removed at once: all go, one already gone is no failure,
    /// and one that cannot be removed fails the call with its path once the rest are gone.
    @Test func removalAcrossFolders() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = MaildirStore(root: dir.path, layout: .fs)
        var all: [(folder: MaildirFolder, message: MaildirMessage)] = []
        for name in ["A", "B", "C"] {
            let folder = try store.createFolder([name])
            for i in 0..<20 {
                let w = try folder.beginDelivery()
                try w.write(Array("Message-ID: <\(name)\(i)@x>\n\nbody\n".utf8))
                all.append((folder, try folder.deliver(w, flags: MessageFlags("S"))))
            }
        }
        try MaildirFolder.remove(Array(all.prefix(30)))
        try MaildirFolder.remove([all[0]])   // already gone
        #expect(try store.folder(["A"]).scan().messages.isEmpty)
        #expect(try store.folder(["B"]).scan().messages.count == 10)

        // A file that cannot be removed (a directory took its name): the other removals
        // still happen, and the error names it.
        let c = all[40].folder
        let blocked = c.filePath(of: all[45].message)
        unlink(blocked)
        mkdir(blocked, 0o700)
        let error = #expect(throws: MaildirError.self) { try MaildirFolder.remove(Array(all[30...])) }
        #expect(error?.description.contains(blocked) == true)
        #expect(try store.folder(["B"]).scan().messages.isEmpty)
        #expect(fileNames(c.path + "/cur") == [all[45].message.fileName])
        rmdir(blocked)
        try MaildirFolder.remove(Array(all[30...]))
        #expect(fileNames(c.path + "/cur").isEmpty)
    }

    @Test func scanOfTenThousandFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["Big"])
        for i in 0..<10_000 {
            let name = i % 3 == 0 ? "new/\(i).M1P1.host,S=\(i)" : i % 3 == 1 ? "cur/\(i).M1P1.host,S=\(i):2,S" : "cur/\(i).M1P1.host:2,RS"
            writeFile(folder.path + "/" + name, "abc")
        }
        writeFile(folder.path + "/new/.hidden-by-some-tool", "x")
        let scan = try folder.scan()
        #expect(scan.messages.count == 10_000)
        let byBase = Dictionary(uniqueKeysWithValues: scan.messages.map { ($0.baseName, $0) })
        #expect(byBase["3.M1P1.host,S=3"]?.subdirectory == .new)
        #expect(byBase["4.M1P1.host,S=4"]?.flags == MessageFlags("S"))
        #expect(byBase["5.M1P1.host"]?.size == 3)          // no ,S=: stat
        #expect(byBase["7.M1P1.host,S=7"]?.size == 7)      // from the name
    }

    @Test func staleTemporaryFilesAreRemoved() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        writeFile(folder.path + "/tmp/old", "x")
        writeFile(folder.path + "/tmp/fresh", "x")
        var times = [timespec(tv_sec: time(nil) - 37 * 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 37 * 3600, tv_nsec: 0)]
        utimensat(AT_FDCWD, folder.path + "/tmp/old", &times, 0)
        let scan = try folder.scan()
        #expect(scan.removedStaleTemporaryFiles == 1)
        #expect(fileNames(folder.path + "/tmp") == ["fresh"])
    }

    @Test func listAndDeleteFoldersInBothLayouts() throws {
        for layout in MaildirLayout.allCases {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let store = MaildirStore(root: dir.path, layout: layout)
            try store.createFolder(["INBOX"])
            try store.createFolder(["Archive", "2024"])
            try store.createFolder(["v1.0 notes"])
            try store.createFolder(["Entwürfe"])
            // Things that are not folders of this layout.
            mkdir(dir.path + "/.notmuch", 0o700)
            mkdir(dir.path + "/.notmuch/xapian", 0o700)
            symlink("/tmp", dir.path + "/link")
            symlink("/tmp", dir.path + "/.link")
            let listed = store.listFolders()
            var expected: [MaildirFolderEntry] = [
                .init(name: ["Archive", "2024"], isMaildir: true), .init(name: ["Entwürfe"], isMaildir: true),
                .init(name: ["INBOX"], isMaildir: true), .init(name: ["v1.0 notes"], isMaildir: true),
            ]
            if layout == .fs { expected.insert(.init(name: ["Archive"], isMaildir: false), at: 0) }
            #expect(listed == expected, "\(layout)")

            // A folder with a message is not deleted; an empty one is.
            let archive = store.folder(["Archive", "2024"])
            let w = try archive.beginDelivery()
            try w.write(Array("x\n".utf8))
            _ = try archive.deliver(w, flags: MessageFlags())
            #expect(throws: MaildirError.self) { try store.deleteFolder(["Archive", "2024"]) }
            #expect(archive.exists)
            try store.deleteFolder(["v1.0 notes"])
            #expect(!store.folder(["v1.0 notes"]).exists)
            #expect(!store.listFolders().contains { $0.name == ["v1.0 notes"] })
        }
    }

    /// No server-supplied name makes the store create, read or delete anything outside
    /// its root: a sibling directory and the root's parent stay exactly as they were.
    @Test func hostileNamesStayInsideTheRoot() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let outside = dir.path + "/outside"
        mkdir(outside, 0o700)
        writeFile(outside + "/keep", "precious")
        mkdir(outside + "/cur", 0o700); mkdir(outside + "/new", 0o700); mkdir(outside + "/tmp", 0o700)
        let hostile: [[String]] = [
            [".."], ["..", "outside"], ["..", "..", "etc"], ["../outside"], ["/etc/passwd"], ["a/../../outside"],
            ["."], [""], ["", ""], ["\u{0}"], ["..\u{0}"], ["%2E%2E"], ["%2e%2e/outside"], ["cur"], ["INBOX", ".."],
            [".", ".."], ["..", ".."], ["outside"], ["~"], ["$HOME"], [".notmuch"], ["a\nb"], [String(repeating: "x", count: 200)],
        ]
        for layout in MaildirLayout.allCases {
            let root = dir.path + "/root-\(layout.rawValue)"
            let store = MaildirStore(root: root, layout: layout)
            for name in hostile {
                let folder = store.folder(name)
                #expect(folder.path.hasPrefix(root), "\(name) -> \(folder.path)")
                #expect(!folder.path.dropFirst(root.count).split(separator: "/").contains(where: { $0 == ".." || $0 == "." }))
                try store.createFolder(name)
                let w = try folder.beginDelivery()
                try w.write(Array("x\n".utf8))
                let m = try folder.deliver(w, flags: MessageFlags("S"))
                _ = try folder.scan()
                try folder.remove(m)
                try store.deleteFolder(name)
            }
        }
        #expect(fileNames(dir.path).sorted() == ["outside", "root-fs", "root-maildir++"])
        #expect(fileNames(outside) == ["cur", "keep", "new", "tmp"])
        #expect(readFile(outside + "/keep") == "precious")
        #expect(fileNames(outside + "/cur").isEmpty && fileNames(outside + "/new").isEmpty)
    }
}
