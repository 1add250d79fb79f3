#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Sync
import Maildir
import TestSupport

/// A mail reader changes a message file between the pass's listing and its own change to
/// the same file: the pass's change goes on top of the reader's, never fails the folder.
@Suite struct ReaderRaceTests {
    func folderWithOneMessage(_ dir: TemporaryDirectory, flags: MessageFlags) throws -> (MaildirFolder, MaildirMessage) {
        let folder = try MaildirStore(root: dir.path, layout: .fs).createFolder(["INBOX"])
        let w = try folder.beginDelivery()
        try w.write(Array("Message-ID: <race@x>\n\nbody\n".utf8))
        return (folder, try folder.deliver(w, flags: flags))
    }

    /// The folder's store after the pass's listing, as a flag change would find it.
    func listedStore(_ dir: TemporaryDirectory) async throws -> (MaildirFolder, MaildirMessage, MaildirFolderStore) {
        let (folder, message) = try folderWithOneMessage(dir, flags: MessageFlags("S"))
        let store = MaildirFolderStore(folder: folder)
        _ = try await store.list()
        return (folder, message, store)
    }

    @Test func serverFlagChangeLandsOnTopOfAReadersRename() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (folder, message, store) = try await listedStore(dir)
        // The reader marks it replied (R) after the listing; the server flagged it (F).
        rename(folder.filePath(of: message), folder.path + "/cur/" + message.baseName + ":2,RS")
        try await store.apply([FlagChange(key: .name(message.baseName), add: MessageFlags("F"), remove: MessageFlags())])
        let now = try folder.scan().messages
        #expect(now.count == 1 && now[0].baseName == message.baseName)
        #expect(now[0].flags == MessageFlags("FRS"), "both changes kept")
    }

    @Test func aMessageTheReaderDeletedIsLeftToTheNextPass() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (folder, message, store) = try await listedStore(dir)
        unlink(folder.filePath(of: message))
        try await store.apply([FlagChange(key: .name(message.baseName), add: MessageFlags("F"), remove: MessageFlags())])
        #expect(try folder.scan().messages.isEmpty)
    }

    @Test func anUploadReadsTheFileUnderItsNewName() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (folder, message) = try folderWithOneMessage(dir, flags: MessageFlags())
        let listedPath = folder.filePath(of: message)   // new/NAME, as the listing saw it
        rename(listedPath, folder.path + "/cur/" + message.baseName + ":2,S")   // the reader opened it
        let source = try MaildirUploadSource(path: listedPath, token: "t1")
        var sent: [UInt8] = []
        while let chunk = try source.nextChunk() { sent += chunk }
        #expect(String(decoding: sent, as: UTF8.self) == "X-Mailmirror-Token: t1\r\nMessage-ID: <race@x>\r\n\r\nbody\r\n")
        #expect(source.size == Int64(sent.count))
        unlink(folder.path + "/cur/" + message.baseName + ":2,S")
        #expect(throws: MaildirError.self) { _ = try MaildirUploadSource(path: listedPath, token: nil) }
    }
}
