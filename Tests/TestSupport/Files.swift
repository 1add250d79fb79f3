#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to `path` (created 0644, or `mode`), replacing it. Returns success.
@discardableResult
public func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    fchmod(fd, mode)
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}

/// The contents of `path` as UTF-8 text, nil when unreadable.
public func readFile(_ path: String) -> String? {
    readBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// The contents of `path` as bytes, nil when unreadable.
public func readBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

/// A fresh directory under /tmp, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "mailmirror-unit") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }

    public func remove() {
        _ = try? runCommandBlocking(["rm", "-rf", path])
    }
}

/// Where a fuzz-corpus replay splits an input of `count` bytes: everywhere for small
/// inputs, a few spread points for larger ones (the corpus grows with every fuzz run).
public func replaySplitPoints(_ count: Int) -> [Int] {
    count <= 96 ? Array(0...count) : Array(Set([0, 1, 2, count / 5, count / 3, count / 2, 2 * count / 3, count - 2, count - 1, count])).sorted()
}
