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
        let (fingerprint, used) = try WireFingerprint.ofFile(listedPath)
        #expect(used == folder.path + "/cur/" + message.baseName + ":2,S")
        let source = try MaildirUploadSource(path: listedPath, expecting: fingerprint)
        var sent: [UInt8] = []
        while let chunk = try source.nextChunk() { sent += chunk }
        #expect(String(decoding: sent, as: UTF8.self) == "Message-ID: <race@x>\r\n\r\nbody\r\n", "the file's bytes, CRLF, nothing added")
        #expect(source.size == Int64(sent.count) && fingerprint.size == Int64(sent.count))
        #expect(fingerprint.messageID == Array("<race@x>".utf8) && fingerprint.digest == SHA256.digest(sent))
        unlink(folder.path + "/cur/" + message.baseName + ":2,S")
        #expect(throws: MaildirError.self) { _ = try MaildirUploadSource(path: listedPath, expecting: fingerprint) }
    }

    /// A file rewritten after its fingerprint was journaled (same size or not) fails the
    /// upload before the command can end: the server never stores other bytes than those
    /// the journal describes.
    @Test func anUploadOfAFileChangedSinceItsFingerprintFails() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (folder, message) = try folderWithOneMessage(dir, flags: MessageFlags())
        let path = folder.filePath(of: message)
        let (fingerprint, _) = try WireFingerprint.ofFile(path)
        for replacement in ["Message-ID: <race@x>\n\nBODY\n", "Message-ID: <race@x>\n\nbody, longer\n", "Message-ID: <race@x>\n\nbo\n"] {
            writeFile(path, replacement)
            let source = try MaildirUploadSource(path: path, expecting: fingerprint)
            #expect(throws: (any Error).self, "\(replacement)") { while try source.nextChunk() != nil {} }
        }
    }
}
