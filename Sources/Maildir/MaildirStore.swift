#if canImport(Glibc)
import Glibc
#endif

/// A folder found under the root.
public struct MaildirFolderEntry: Sendable, Hashable {
    public var name: [String]
    /// False for a plain directory that only holds child folders (an IMAP `\Noselect` parent).
    public var isMaildir: Bool
}

/// An account's Maildir root: where each folder lives, and creating, listing and deleting them.
///
/// Every path it produces is the root plus escaped components (`MaildirLayout`), so no
/// folder name can reach outside the root.
public struct MaildirStore: Sendable {
    public let root: String
    public let layout: MaildirLayout

    /// - Parameter root: an absolute path; a trailing `/` is ignored.
    public init(root: String, layout: MaildirLayout) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        self.layout = layout
    }

    /// The folder `name` (it may not exist yet).
    public func folder(_ name: [String]) -> MaildirFolder {
        let relative = layout.relativePath(for: name)
        return MaildirFolder(name: name, path: relative.isEmpty ? root : root + "/" + relative)
    }

    /// Creates the folder with `cur/`, `new/`, `tmp/` (and, in `fs`, its parents as plain
    /// directories); a folder that exists already is fine.
    @discardableResult
    public func createFolder(_ name: [String]) throws(MaildirError) -> MaildirFolder {
        let f = folder(name)
        try FS.mkdirIfMissing(root, operation: "create Maildir root")
        try FS.mkdirs(f.path, below: root, operation: "create folder")
        for sub in ["cur", "new", "tmp"] {
            try FS.mkdirIfMissing(f.path + "/" + sub, operation: "create folder")
        }
        try FS.syncDirectory(parentDirectory(of: f.path), operation: "fsync")
        return f
    }

    /// Creates a plain directory for a `\Noselect` parent (fs layout; nothing in maildir++).
    public func createPlainDirectory(_ name: [String]) throws(MaildirError) {
        guard layout == .fs else { return }
        try FS.mkdirIfMissing(root, operation: "create Maildir root")
        try FS.mkdirs(folder(name).path, below: root, operation: "create directory")
    }

    /// Deletes a folder only if it holds no message: its `tmp/` leftovers, `cur/`, `new/`
    /// and `tmp/` go; the directory itself too unless child folders live in it (fs).
    /// - Throws: ENOTEMPTY when messages are present (nothing is removed then).
    public func deleteFolder(_ name: [String]) throws(MaildirError) {
        let f = folder(name)
        if f.holdsMessages {
            throw MaildirError(operation: "delete folder", path: f.path, errno: ENOTEMPTY, detail: "it still holds messages; they are kept")
        }
        if let tmp = FS.entries(f.path + "/tmp") {
            for entry in tmp { unlink(f.path + "/tmp/" + String(decoding: entry.name, as: UTF8.self)) }
        }
        for sub in ["cur", "new", "tmp"] {
            if rmdir(f.path + "/" + sub) != 0 && errno != ENOENT {
                throw MaildirError(operation: "delete folder", path: f.path + "/" + sub, errno: errno)
            }
        }
        if f.path != root && rmdir(f.path) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST {
            throw MaildirError(operation: "delete folder", path: f.path, errno: errno)
        }
    }

    /// Renames a folder and every folder below it: their directories move, so every message
    /// keeps its file name. No target may exist; in `fs` the target's parents are created as
    /// plain directories, and parents the move left empty are removed.
    @discardableResult
    public func renameFolder(_ from: [String], to: [String]) throws(MaildirError) -> MaildirFolder {
        let source = folder(from), target = folder(to)
        guard source.path != root, target.path != root, !to.starts(with: from) else {
            throw MaildirError(operation: "rename folder", path: source.path, errno: EINVAL, detail: "not a rename another folder can take")
        }
        guard !FS.exists(target.path) else { throw MaildirError(operation: "rename folder", path: target.path, errno: EEXIST) }
        switch layout {
        case .fs:
            let targetParent = parentDirectory(of: target.path)
            if targetParent != root { try FS.mkdirs(targetParent, below: root, operation: "rename folder") }
            guard rename(source.path, target.path) == 0 else { throw MaildirError(operation: "rename folder", path: source.path, errno: errno) }
            try FS.syncDirectory(targetParent, operation: "fsync")
            var parent = parentDirectory(of: source.path)
            if parent != targetParent { try FS.syncDirectory(parent, operation: "fsync") }
            // Plain parents left empty go (rmdir fails on anything else).
            while parent != root && FS.relative(parent, below: root) != nil && !isMaildir(parent) && rmdir(parent) == 0 {
                parent = parentDirectory(of: parent)
            }
        case .maildirPlusPlus:
            // Each level is a directory of its own beside the others.
            let below = listFolders().map(\.name).filter { $0.count > from.count && $0.starts(with: from) }
            let moves = [(source.path, target.path)] + below.map { (folder($0).path, folder(to + $0.dropFirst(from.count)).path) }
            for (_, destination) in moves.dropFirst() where FS.exists(destination) {
                throw MaildirError(operation: "rename folder", path: destination, errno: EEXIST)
            }
            for (origin, destination) in moves {
                guard rename(origin, destination) == 0 else { throw MaildirError(operation: "rename folder", path: origin, errno: errno) }
            }
            try FS.syncDirectory(root, operation: "fsync")
        }
        return target
    }

    /// Every folder under the root, sorted by name; directories the layout does not produce
    /// (dot-directories such as `.notmuch`, stray names) and symbolic links are skipped.
    public func listFolders() -> [MaildirFolderEntry] {
        var found: [MaildirFolderEntry] = []
        switch layout {
        case .fs:
            walk(relative: "", depth: 0, into: &found)
        case .maildirPlusPlus:
            if isMaildir(root) { found.append(MaildirFolderEntry(name: ["INBOX"], isMaildir: true)) }
            for entry in FS.entries(root) ?? [] {
                guard let name = String(validating: entry.name, as: UTF8.self), FS.startsWithDot(name),
                      let folderName = layout.folder(forRelativePath: name) else { continue }
                let path = root + "/" + name
                guard isRealDirectory(path, hint: entry.isDirectory), isMaildir(path) else { continue }
                found.append(MaildirFolderEntry(name: folderName, isMaildir: true))
            }
        }
        return found.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }

    private func walk(relative: String, depth: Int, into found: inout [MaildirFolderEntry]) {
        guard depth < 64 else { return }
        let dir = relative.isEmpty ? root : root + "/" + relative
        for entry in FS.entries(dir) ?? [] {
            guard let name = String(validating: entry.name, as: UTF8.self) else { continue }
            if FS.startsWithDot(name) || ["cur", "new", "tmp"].contains(where: { name.utf8.elementsEqual($0.utf8) }) { continue }
            let childRelative = relative.isEmpty ? name : relative + "/" + name
            let path = root + "/" + childRelative
            guard isRealDirectory(path, hint: entry.isDirectory),
                  let folderName = layout.folder(forRelativePath: childRelative) else { continue }
            found.append(MaildirFolderEntry(name: folderName, isMaildir: isMaildir(path)))
            walk(relative: childRelative, depth: depth + 1, into: &found)
        }
    }

    private func isMaildir(_ path: String) -> Bool { FS.isDirectory(path + "/cur") && FS.isDirectory(path + "/new") }

    private func isRealDirectory(_ path: String, hint: Bool?) -> Bool {
        if let hint { return hint }
        return FS.isDirectory(path)   // lstat: a symbolic link is not followed
    }

    private func parentDirectory(of path: String) -> String { FS.parent(of: path) }
}
