#if canImport(Glibc)
import Glibc
#endif
import Maildir
import Support

/// A Maildir folder as a `FolderStore`: keys are base names, flags are the info letters.
final class MaildirFolderStore: FolderStore {
    let folder: MaildirFolder
    let sideName = "Maildir"
    /// The folder's keywords (the pass sets them).
    var keywords = FolderKeywords.none
    /// The last scan, so renames and deletions find the current file names: shared with the
    /// listing `list` returned (never changed, so never copied), and what changed since.
    private var scanned = MessageListing()
    private var changed: [String: MaildirMessage?] = [:]
    private var files: Files { Files(store: self) }
    /// `files[name]` reads through the changes to the scan; a write is a change.
    private struct Files {
        let store: MaildirFolderStore
        subscript(name: String) -> MaildirMessage? {
            get { store.changed[name] ?? store.scanned.file(named: name) }
            nonmutating set { store.changed[name] = .some(newValue) }
        }
    }
    /// Files whose names are not UTF-8 (left alone).
    private(set) var skippedNames = 0

    init(folder: MaildirFolder) { self.folder = folder }

    /// Watches the folder from the first listing on, so the pass can tell at its end whether
    /// anyone else changed it (nil when inotify is not available: the pass lists again).
    private(set) var witness: FolderChangeWitness?
    private var watching = false

    /// Starts the folder's watch (once; a no-op when the folder does not exist yet).
    func startWatching() {
        if !watching && folder.exists {
            watching = true
            witness = FolderChangeWitness(folder: folder)
        }
    }

    /// The file of a message as the last listing (or adoption) found it.
    func file(named baseName: String) -> MaildirMessage? { files[baseName] }

    /// Takes these files as the folder's known messages without scanning it (an incremental
    /// pass found them where their pairs say they are).
    func adopt(_ messages: [MaildirMessage]) {
        for m in messages { changed[m.baseName] = m }
    }

    func list() async throws -> MessageListing {
        startWatching()
        var scan = folder.exists ? try folder.scan() : MaildirScan.empty
        skippedNames = scan.skippedNames
        changed = [:]
        scanned = MessageListing()   // the last scan goes before the next one is sorted
        let messages = scan.messages
        scan.messages = []
        scanned = MessageListing(files: consume messages)
        return scanned
    }

    /// The folder's messages as they are now (base name → flags), without touching what
    /// `list` noted: to check what a pass left behind.
    func currentFlags() throws -> [String: MessageFlags] {
        let scan = folder.exists ? try folder.scan() : MaildirScan.empty
        var result: [String: MessageFlags] = [:]
        result.reserveCapacity(scan.messages.count)
        for m in scan.messages { result[m.baseName] = m.flags }
        return result
    }

    func apply(_ changes: [FlagChange]) async throws {
        for change in changes {
            guard case .name(let name) = change.key, var file = files[name] else { continue }
            var renamed: MaildirMessage
            do {
                renamed = try folder.setFlags(file, to: Self.flags(file.flags, changedBy: change))
            } catch {
                guard error.errno == ENOENT else { throw error }
                // A mail reader renamed it since the listing (its own flag change): this
                // change goes on top of that one, which the next pass carries to the server.
                guard let current = folder.find(baseName: name) else { files[name] = nil; continue }   // deleted: the next pass sees it
                file = current
                renamed = try folder.setFlags(current, to: Self.flags(current.flags, changedBy: change))
            }
            if renamed.relativePath != file.relativePath {
                witness?.expectRemoved(file.fileName, from: file.subdirectory)
                witness?.expectAdded(renamed.fileName, to: renamed.subdirectory)
            }
            files[name] = renamed
        }
    }

    static func flags(_ current: MessageFlags, changedBy change: FlagChange) -> MessageFlags {
        var flags = current
        for l in change.add.letters { flags.insert(l) }
        for l in change.remove.letters { flags.remove(l) }
        return flags
    }

    func delete(_ keys: [MessageKey]) async throws {
        for key in keys {
            guard case .name(let name) = key, let file = files[name] else { continue }
            try folder.remove(file)
            witness?.expectRemoved(file.fileName, from: file.subdirectory)
            files[name] = nil
        }
    }

    func export(_ keys: [MessageKey], flags: [MessageKey: MessageFlags], into batch: IncomingBatch) async throws {
        for key in keys {
            guard case .name(let name) = key, let file = files[name] else { continue }
            let path = folder.filePath(of: file)
            var info = stat()
            // The flags the engine sends (it leaves out those the destination cannot keep).
            let sentFlags = flags[key] ?? file.flags
            if stat(path, &info) == 0, try batch.adopt(file: path, for: key, flags: sentFlags, date: Int64(info.st_mtim.tv_sec)) { continue }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw MaildirError(operation: "read message", path: path, errno: errno) }
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            try batch.begin(key, flags: sentFlags, date: Int64(st.st_mtim.tv_sec))
            var buffer = [UInt8](repeating: 0, count: 65536)
            var converter = LFToCRLFConverter()   // invariant 5: the only change
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 { throw MaildirError(operation: "read message", path: path, errno: errno) }
                if n == 0 { break }
                try batch.write(converter.convert(buffer[0..<n]))
            }
            try batch.end()
        }
    }

    func incoming() throws -> IncomingBatch { MaildirIncomingBatch(folder: folder, witness: witness) }

    /// Finds deliveries by the unique part of their file names: one scan for all of them.
    func locate(_ marks: [ArrivalMark], excluding: Set<MessageKey>) async throws -> [MessageKey?] {
        guard marks.contains(where: { $0.uniqueName != nil }), folder.exists else { return marks.map { _ in nil } }
        var byUnique: [Substring: String] = [:]
        for m in try folder.scan().messages where !excluding.contains(.name(m.baseName)) {
            // A base name is the unique part, then ",S=…"-style fields (or nothing).
            let unique = m.baseName.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)[0]
            if byUnique[unique] == nil { byUnique[unique] = m.baseName }
        }
        return marks.map { mark in
            guard let unique = mark.uniqueName, let name = byUnique.removeValue(forKey: Substring(unique)) else { return nil }
            return .name(name)
        }
    }
}

/// Messages arriving into a Maildir: one `MessageWriter` per message in `tmp/`, prepared
/// before the transfer (their unique names are their arrival marks), delivered together
/// by one `DeliveryBatch` (one syncfs, renames, one directory fsync).
final class MaildirIncomingBatch: IncomingBatch, @unchecked Sendable {   // fed by one transfer at a time
    let folder: MaildirFolder
    let batch: DeliveryBatch
    var writers: [MessageKey: MessageWriter] = [:]
    var current: MessageKey?
    var completed: [MessageKey] = []

    let witness: FolderChangeWitness?

    init(folder: MaildirFolder, witness: FolderChangeWitness? = nil) {
        self.folder = folder
        self.witness = witness
        batch = DeliveryBatch(folder: folder)
    }

    func prepare(_ keys: [MessageKey]) throws {
        for key in keys {
            let writer = try folder.beginDelivery()
            writers[key] = writer
            uniqueNames[key] = writer.uniquePart
        }
    }
    private var uniqueNames: [MessageKey: String] = [:]

    /// The unique part of each received message's file name: what recovery looks for.
    var marks: [MessageKey: ArrivalMark] {
        var result: [MessageKey: ArrivalMark] = [:]
        for key in completed { if let name = uniqueNames[key] { result[key] = ArrivalMark(uniqueName: name) } }
        return result
    }

    func begin(_ key: MessageKey, flags: MessageFlags, date: Int64?) throws {
        current = writers[key] == nil ? nil : key
        pendingFlags = flags.fileLetters   // what a file name can carry; the pair keeps the rest
        pendingDate = date
    }
    private var pendingFlags = MessageFlags()
    private var pendingDate: Int64?

    func write(_ wireBytes: [UInt8]) throws {
        guard let key = current, let writer = writers[key] else { return }
        try writer.writeWireBytes(wireBytes)
    }

    func end() throws {
        guard let key = current, let writer = writers[key] else { return }
        try batch.add(writer, flags: pendingFlags, modificationTime: pendingDate.map { time_t($0) })
        writers[key] = nil
        completed.append(key)
        current = nil
    }

    func commit() async throws -> [MessageKey: MessageKey] {
        let delivered = try batch.commit()
        for message in delivered { witness?.expectAdded(message.fileName, to: message.subdirectory) }
        abortUnused()
        var mapping: [MessageKey: MessageKey] = [:]
        for (key, message) in zip(completed, delivered) { mapping[key] = .name(message.baseName) }
        return mapping
    }

    /// `DeliveryBatch.commit` flushes the file with the messages, before the renames.
    func alsoFlush(_ path: String) -> Bool {
        batch.alsoFlush.append(path)
        return true
    }

    private func abortUnused() {
        for writer in writers.values { writer.abort() }
        writers = [:]
    }

    func abort() {
        batch.abort()
        abortUnused()
    }
}
