#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A message being written into a folder's `tmp/`, chunk by chunk as it arrives.
///
/// Nothing is visible to mail readers until the writer is delivered (alone with
/// `MaildirFolder.deliver`, or in a `DeliveryBatch`); `abort()` removes the partial file.
/// Memory does not depend on the message size: every chunk goes straight to the file.
public final class MessageWriter {
    public let folder: MaildirFolder
    /// The unique part of the name, without `,S=` (added at delivery, when the size is known).
    public let uniquePart: String
    /// Bytes written so far (after CRLF conversion).
    public private(set) var size: Int64 = 0
    let tmpPath: String
    private var fd: Int32
    private var converter = CRLFToLFConverter()
    /// The received date the file gets once delivered (`finishWriting`).
    private var modificationTime: time_t?

    init(folder: MaildirFolder) throws(MaildirError) {
        self.folder = folder
        uniquePart = UniqueName.next()
        tmpPath = folder.path + "/tmp/" + uniquePart
        fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw MaildirError(operation: "create", path: tmpPath, errno: errno) }
    }

    deinit { if fd >= 0 { close(fd); unlink(tmpPath) } }

    /// Appends bytes exactly as given (already LF line endings).
    public func write(_ bytes: [UInt8]) throws(MaildirError) {
        guard !bytes.isEmpty else { return }
        let written = bytes.withUnsafeBufferPointer { writeAll($0.baseAddress!, $0.count) }
        if written != 0 { throw MaildirError(operation: "write", path: tmpPath, errno: written) }
        size += Int64(bytes.count)
    }

    /// Appends bytes as the server sent them, turning CRLF into LF (invariant 5).
    public func writeWireBytes(_ chunk: [UInt8]) throws(MaildirError) {
        try write(converter.convert(chunk))
    }

    /// Same, for slices (tests).
    public func writeWireBytes(_ chunk: ArraySlice<UInt8>) throws(MaildirError) {
        try writeWireBytes(Array(chunk))
    }

    private func writeAll(_ base: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
        var offset = 0
        while offset < count {
            let n = Glibc.write(fd, base + offset, count - offset)
            if n < 0 { if errno == EINTR { continue }; return errno }
            offset += n
        }
        return 0
    }

    /// Flushes held-back bytes, sets the modification time (the message's date, for readers
    /// that sort by it) and closes the file; `sync` also fsyncs it.
    func finishWriting(modificationTime: time_t?, sync: Bool) throws(MaildirError) {
        try write(converter.finish())
        // Given to the file only once it is in place: a tmp/ file with an old date looks
        // like a crashed delivery's leftover, and Maildir readers (Dovecot, another
        // mailmirror) delete those while the download is still on its way in.
        self.modificationTime = modificationTime
        if sync && fsync(fd) != 0 { throw MaildirError(operation: "fsync", path: tmpPath, errno: errno) }
        if close(fd) != 0 { fd = -1; throw MaildirError(operation: "close", path: tmpPath, errno: errno) }
        fd = -1
    }

    /// Moves the finished file into `new/` (no flags) or `cur/` (with flags).
    func moveIntoPlace(flags: MessageFlags) throws(MaildirError) -> MaildirMessage {
        let baseName = "\(uniquePart),S=\(size)"
        let sub: MaildirSubdirectory = flags.isEmpty ? .new : .cur
        let fileName = MessageFileName.fileName(baseName: baseName, flags: flags, in: sub)
        let target = folder.path + "/" + sub.rawValue + "/" + fileName
        // link+unlink would refuse to overwrite; the name is unique by construction, so rename.
        if rename(tmpPath, target) != 0 { throw MaildirError(operation: "deliver", path: target, errno: errno) }
        if let modificationTime {   // cosmetic (readers sort by it): not worth a failure
            var times = [timespec(tv_sec: modificationTime, tv_nsec: 0), timespec(tv_sec: modificationTime, tv_nsec: 0)]
            utimensat(AT_FDCWD, target, &times, 0)
        }
        return MaildirMessage(baseName: baseName, flags: flags, subdirectory: sub, fileName: fileName, size: size)
    }

    /// Stops writing and removes the partial file.
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmpPath)
    }
}

extension MaildirFolder {
    /// Starts writing a new message into `tmp/`.
    public func beginDelivery() throws(MaildirError) -> MessageWriter {
        try MessageWriter(folder: self)
    }

    /// Delivers one message durably: fsync the file, rename it into place, fsync the
    /// directory. When this returns, the message survives a power cut.
    public func deliver(_ writer: MessageWriter, flags: MessageFlags, modificationTime: time_t? = nil) throws(MaildirError) -> MaildirMessage {
        precondition(writer.folder == self, "writer belongs to another folder")
        do {
            try writer.finishWriting(modificationTime: modificationTime, sync: true)
            let message = try writer.moveIntoPlace(flags: flags)
            try FS.syncDirectory(path + "/" + message.subdirectory.rawValue, operation: "fsync folder")
            return message
        } catch {
            writer.abort()
            throw error
        }
    }
}

/// Several deliveries made durable together: every file is written to `tmp/`, then one
/// `syncfs` flushes them all (a few: one fdatasync each), then the renames, then one fsync
/// per directory touched.
/// Per-message fsync costs ~1-2 ms here; a batch of 100 costs about as much as one.
///
/// Crash safety: until `commit` returns, none of the batch may be recorded as delivered.
/// Files a crash leaves in `tmp/` are removed as stale; files already renamed into place
/// are found by the next scan and reconciled by the caller's journal.
public final class DeliveryBatch {
    public let folder: MaildirFolder
    private var pending: [(MessageWriter, MessageFlags)] = []

    public init(folder: MaildirFolder) { self.folder = folder }

    /// Messages added and not yet committed.
    public var count: Int { pending.count }

    /// Finishes writing `writer` (no fsync yet) and queues it for `commit`.
    public func add(_ writer: MessageWriter, flags: MessageFlags, modificationTime: time_t? = nil) throws(MaildirError) {
        precondition(writer.folder == folder, "writer belongs to another folder")
        do { try writer.finishWriting(modificationTime: modificationTime, sync: false) }
        catch { writer.abort(); throw error }
        pending.append((writer, flags))
    }

    /// Other files to make durable with the messages, before any is visible (a journal that
    /// records them): flushed together with them (with syncfs: by it, when on its file system).
    public var alsoFlush: [String] = []

    /// Up to this many messages are made durable one fdatasync each; more with one syncfs.
    /// syncfs also flushes whatever else is dirty on the file system (another program's
    /// writes, the server's own files on a shared disk): ~20 ms here after a busy moment,
    /// against well under a millisecond for one small file.
    public static let perFileSyncLimit = 16

    /// Makes every queued message durable and visible; returns them in the order added.
    public func commit() throws(MaildirError) -> [MaildirMessage] {
        guard !pending.isEmpty else { return [] }
        let batch = pending
        pending = []
        do throws(MaildirError) {
            var paths = alsoFlush
            if batch.count > Self.perFileSyncLimit {
                try FS.syncFileSystem(containing: folder.path, operation: "sync")
                paths = paths.filter { !FS.sameFileSystem($0, folder.path) }
            } else {
                paths += batch.map(\.0.tmpPath)
            }
            try FS.syncFiles(paths)
        } catch {
            for (writer, _) in batch { writer.abort() }
            throw error
        }
        var delivered: [MaildirMessage] = []
        var touched = Set<MaildirSubdirectory>()
        for (index, (writer, flags)) in batch.enumerated() {
            do {
                let message = try writer.moveIntoPlace(flags: flags)
                delivered.append(message)
                touched.insert(message.subdirectory)
            } catch {
                for (rest, _) in batch[index...] { rest.abort() }
                throw error
            }
        }
        for sub in touched.sorted(by: { $0.rawValue < $1.rawValue }) {
            try FS.syncDirectory(folder.path + "/" + sub.rawValue, operation: "fsync folder")
        }
        return delivered
    }

    /// Drops every queued message (their tmp files are removed).
    public func abort() {
        for (writer, _) in pending { writer.abort() }
        pending = []
    }
}

/// Unique file names per the Maildir spec's modern form: `SECONDS.MusecPpidQn.HOST`.
enum UniqueName {
    private static let counter = Atomic<Int>(0)
    private static let host: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let raw = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The spec replaces / and : in the host name with octal escapes.
        let cleaned = raw.isEmpty ? "localhost" : raw
        return cleaned.replacingAll("/", with: "\\057").replacingAll(":", with: "\\072")
    }()

    static func next() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(tv.tv_sec).M\(tv.tv_usec)P\(getpid())Q\(n).\(host)"
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
