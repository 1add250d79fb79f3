#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// One message file found by a scan.
public struct MaildirMessage: Sendable, Hashable {
    /// The identity: the file name before `:2,`.
    public private(set) var baseName: String
    /// (Fixed at init: the file name is kept as its difference from the one these make.)
    public private(set) var flags: MessageFlags
    public private(set) var subdirectory: MaildirSubdirectory
    /// The name in `subdirectory`, as it is on disk now.
    public private(set) var fileName: String {
        get { unusualName ?? MessageFileName.fileName(baseName: baseName, flags: flags, in: subdirectory) }
        set { unusualName = newValue == MessageFileName.fileName(baseName: baseName, flags: flags, in: subdirectory) ? nil : newValue }
    }
    /// The name on disk when it is not the one `baseName`, `flags` and `subdirectory` make
    /// (letters out of order, an info part in `new/`…): most are, and a scan of 100,000
    /// files then keeps one string per file instead of two (docs/scale.md).
    private var unusualName: String?
    /// Bytes on disk (LF line endings), from `,S=` when the name has it, else from stat.
    public var size: Int64

    public init(baseName: String, flags: MessageFlags, subdirectory: MaildirSubdirectory, fileName: String, size: Int64) {
        self.baseName = baseName
        self.flags = flags
        self.subdirectory = subdirectory
        self.size = size
        self.fileName = fileName
    }

    /// The path relative to the folder: `cur/NAME` or `new/NAME`.
    public var relativePath: String { subdirectory.rawValue + "/" + fileName }
}

/// What a scan found in a folder.
public struct MaildirScan: Sendable {
    public var messages: [MaildirMessage]
    /// Files whose names are not UTF-8 (left alone and reported, never guessed at).
    public var skippedNames: Int
    /// Stale files removed from `tmp/` (older than 36 hours, per the Maildir spec).
    public var removedStaleTemporaryFiles: Int

    /// The scan of a folder that does not exist yet.
    public static let empty = MaildirScan(messages: [], skippedNames: 0, removedStaleTemporaryFiles: 0)
}

/// One Maildir folder (a directory with `cur/`, `new/` and `tmp/`).
public struct MaildirFolder: Sendable, Hashable {
    /// The folder name (components, unescaped).
    public let name: [String]
    /// The folder's directory.
    public let path: String

    public init(name: [String], path: String) {
        self.name = name
        self.path = path
    }

    /// Whether the directory exists with `cur/` and `new/`.
    public var exists: Bool { FS.isDirectory(path + "/cur") && FS.isDirectory(path + "/new") }

    /// Whether `cur/` or `new/` holds any message file (dot-files aside), without a scan.
    public var holdsMessages: Bool {
        ["cur", "new"].contains { sub in
            FS.entries(path + "/" + sub)?.contains { $0.name.first != UInt8(ascii: ".") } ?? false
        }
    }

    /// Lists every message in `cur/` and `new/`, and removes `tmp/` files older than 36 h.
    public func scan(now: time_t = time(nil)) throws(MaildirError) -> MaildirScan {
        var messages: [MaildirMessage] = []
        var skipped = 0
        messages.reserveCapacity(1024)
        for sub in [MaildirSubdirectory.cur, .new] {
            let dirPath = path + "/" + sub.rawValue
            guard let dir = opendir(dirPath) else { throw MaildirError(operation: "scan folder", path: dirPath, errno: errno) }
            defer { closedir(dir) }
            let fd = dirfd(dir)
            while let entry = readdir(dir) {
                let type = entry.pointee.d_type
                if type == UInt8(DT_DIR) { continue }
                let nameBytes = direntName(entry)
                if nameBytes.first == UInt8(ascii: ".") { continue }   // ., .., and dot-files
                guard let name = String(validating: nameBytes, as: UTF8.self) else { skipped += 1; continue }
                let parsed = MessageFileName.split(nameBytes)
                var size = parsed.size
                if size == nil || type != UInt8(DT_REG) {
                    var st = stat()
                    guard fstatat(fd, name, &st, Int32(AT_SYMLINK_NOFOLLOW)) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                    size = size ?? Int64(st.st_size)
                }
                let baseName = parsed.baseLength == nameBytes.count
                    ? name : String(decoding: UnsafeBufferPointer(rebasing: nameBytes[..<parsed.baseLength]), as: UTF8.self)
                messages.append(MaildirMessage(baseName: baseName, flags: parsed.flags, subdirectory: sub,
                                               fileName: name, size: size!))
            }
        }
        let removed = removeStaleTemporaryFiles(now: now)
        return MaildirScan(messages: messages, skippedNames: skipped, removedStaleTemporaryFiles: removed)
    }

    /// The message with this base name, looked up where it is expected to be (`cur/` with
    /// `flags`, else `new/` without them) instead of scanning the folder; nil if it is not
    /// there under either name (it may still be there with other flags: scan then).
    public func locate(baseName: String, flags: MessageFlags) -> MaildirMessage? {
        for sub in [MaildirSubdirectory.cur, .new] {
            let fileName = MessageFileName.fileName(baseName: baseName, flags: sub == .cur ? flags : MessageFlags(), in: sub)
            if let message = regularFile(fileName, in: sub, baseName: baseName) { return message }
        }
        return nil
    }

    /// `sub/fileName` as a message, if it is a regular file.
    private func regularFile(_ fileName: String, in sub: MaildirSubdirectory, baseName: String) -> MaildirMessage? {
        var st = stat()
        guard lstat(path + "/" + sub.rawValue + "/" + fileName, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let parsed = MessageFileName(parsing: fileName)
        return MaildirMessage(baseName: baseName, flags: parsed.flags, subdirectory: sub, fileName: fileName,
                              size: parsed.recordedSize ?? Int64(st.st_size))
    }

    /// Deletes files in `tmp/` not modified for 36 hours (a crashed delivery's leftovers).
    @discardableResult
    public func removeStaleTemporaryFiles(now: time_t = time(nil)) -> Int {
        let tmp = path + "/tmp"
        guard let entries = FS.entries(tmp) else { return 0 }
        var removed = 0
        for entry in entries where entry.isDirectory != true {
            let full = tmp + "/" + String(decoding: entry.name, as: UTF8.self)
            var st = stat()
            guard lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if now - st.st_mtim.tv_sec > 36 * 3600, unlink(full) == 0 { removed += 1 }
        }
        return removed
    }

    /// Gives `message` the flags `flags` with one rename into `cur/` (a message with flags
    /// never stays in `new/`). Returns the message as it is afterwards.
    /// - Throws: ENOENT when a reader renamed or removed the file meanwhile (rescan, then retry).
    public func setFlags(_ message: MaildirMessage, to allFlags: MessageFlags) throws(MaildirError) -> MaildirMessage {
        let flags = allFlags.fileLetters   // state-only keyword slots never reach a file name
        let target = message.subdirectory == .new && flags.isEmpty ? MaildirSubdirectory.new : .cur
        let newName = MessageFileName.fileName(baseName: message.baseName, flags: flags, in: target)
        if target == message.subdirectory && newName == message.fileName { return message }
        let from = path + "/" + message.relativePath
        let to = path + "/" + target.rawValue + "/" + newName
        if rename(from, to) != 0 { throw MaildirError(operation: "set flags of", path: from, errno: errno) }
        return MaildirMessage(baseName: message.baseName, flags: flags, subdirectory: target, fileName: newName, size: message.size)
    }

    /// Makes the renames and deletions in one of the folder's subdirectories durable (an
    /// fsync of the directory): once for many `move(…, durably: false)`.
    public func syncSubdirectory(_ sub: MaildirSubdirectory) throws(MaildirError) {
        try FS.syncDirectory(path + "/" + sub.rawValue, operation: "make moved messages durable")
    }

    /// Moves `message` into `other`'s `cur/` with `flags`: one rename (same file system), then
    /// both directories made durable (unless `durably` is false: the caller syncs them
    /// once for many moves, `syncSubdirectory`). The base name stays the same.
    public func move(_ message: MaildirMessage, to other: MaildirFolder, flags allFlags: MessageFlags, durably: Bool = true) throws(MaildirError) -> MaildirMessage {
        let flags = allFlags.fileLetters
        let newName = MessageFileName.fileName(baseName: message.baseName, flags: flags, in: .cur)
        let from = path + "/" + message.relativePath
        let to = other.path + "/cur/" + newName
        if rename(from, to) != 0 { throw MaildirError(operation: "move message to \(other.path)", path: from, errno: errno) }
        if durably {
            try other.syncSubdirectory(.cur)
            try syncSubdirectory(message.subdirectory)
        }
        return MaildirMessage(baseName: message.baseName, flags: flags, subdirectory: .cur, fileName: newName, size: message.size)
    }

    /// Removes a message file (a deletion carried over from the server).
    public func remove(_ message: MaildirMessage) throws(MaildirError) {
        let file = path + "/" + message.relativePath
        if unlink(file) == 0 { return }
        guard errno == ENOENT else { throw MaildirError(operation: "remove message", path: file, errno: errno) }
        // A mail reader renamed it meanwhile (a flag change): the message is its base name,
        // whatever its flags — left in place, the next pass would take it for a new one.
        guard let current = find(baseName: message.baseName) else { return }
        let renamed = path + "/" + current.relativePath
        if unlink(renamed) != 0 && errno != ENOENT { throw MaildirError(operation: "remove message", path: renamed, errno: errno) }
    }

    /// The message with this base name as it is now, whatever its flags (a mail reader may
    /// have renamed it since it was listed); nil if it is in neither `cur/` nor `new/`.
    /// Lists both directories: for when the expected name is gone.
    public func find(baseName: String) -> MaildirMessage? {
        let base = Array(baseName.utf8)
        for sub in [MaildirSubdirectory.cur, .new] {
            guard let entries = FS.entries(path + "/" + sub.rawValue) else { continue }
            for entry in entries where entry.isDirectory != true && entry.name.starts(with: base)
                && (entry.name.count == base.count || entry.name[base.count] == UInt8(ascii: ":")) {
                if let message = regularFile(String(decoding: entry.name, as: UTF8.self), in: sub, baseName: baseName) { return message }
            }
        }
        return nil
    }

    /// Removes messages of several folders, some at once: an unlink of a file whose data is
    /// on disk costs ~70 µs here, and unlinks in different directories run in parallel. A
    /// file already gone is no failure; the first failure is thrown once all are done.
    public static func remove(_ messages: [(folder: MaildirFolder, message: MaildirMessage)]) throws(MaildirError) {
        let failure = Mutex<MaildirError?>(nil)
        DispatchQueue.concurrentPerform(iterations: messages.count) { i in
            do throws(MaildirError) { try messages[i].folder.remove(messages[i].message) }
            catch { failure.withLock { if $0 == nil { $0 = error } } }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The modification times of `cur/` and `new/` (nanoseconds): any delivery, rename or
    /// deletion in the folder changes them, so an equal marker means nothing changed.
    ///
    /// nil while the marker cannot be trusted yet (`markerState`): a directory changed in
    /// the current tick of the kernel's coarse clock, so a second change in the same tick
    /// would leave the marker as it was and go unnoticed.
    public func changeMarker() -> String? {
        let now = Self.coarseClock()   // read before the stats: a change after them is stamped later
        guard let (marker, trustedFrom) = markerState(), now >= trustedFrom else { return nil }
        return marker
    }

    /// The marker as the directories are now, and the time (coarse clock, nanoseconds) from
    /// which it can be trusted: once `coarseClock()` has reached it after a listing taken
    /// after this call, any later change carries a newer mtime. Directories are stamped from
    /// the coarse clock, so that is the tick after the newest mtime; on a file system
    /// without sub-second timestamps (both mtimes a whole second), two seconds after it.
    /// nil when `cur/` or `new/` is missing.
    public func markerState() -> (marker: String, trustedFrom: Int64)? {
        var parts: [String] = []
        var newest: Int64 = 0
        var wholeSeconds = true
        for sub in ["cur", "new"] {
            var st = stat()
            guard stat(path + "/" + sub, &st) == 0 else { return nil }
            newest = max(newest, Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
            if st.st_mtim.tv_nsec != 0 { wholeSeconds = false }
            parts.append("\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
        }
        return (parts.joined(separator: "/"), wholeSeconds ? newest + 2_000_000_000 : newest + 1)
    }

    /// The kernel's coarse real-time clock (nanoseconds), the one file timestamps come from.
    public static func coarseClock() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// The full path of a message file.
    public func filePath(of message: MaildirMessage) -> String { path + "/" + message.relativePath }
}
