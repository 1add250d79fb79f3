#if canImport(Glibc)
import Glibc
#endif
import Support

/// What a command printed and how it ended.
public struct CommandOutput: Sendable {
    public var status: Int32?
    public var standardOutput: String
    public var standardError: String
}

/// Runs argv (no shell; arguments are single-quoted for /bin/sh), with extra environment
/// variables, killed after `timeout` seconds.
public func runCommand(_ argv: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> CommandOutput {
    let quoted = argv.map(shellQuote).joined(separator: " ")
    let env = environment.map { "\($0.key)=\(shellQuote($0.value))" }.joined(separator: " ")
    let result = try Subprocess.runShellBlocking(env.isEmpty ? quoted : "env \(env) \(quoted)", timeout: timeout)
    return CommandOutput(status: result.exitStatus,
                         standardOutput: String(decoding: result.standardOutput, as: UTF8.self),
                         standardError: String(decoding: result.standardError, as: UTF8.self))
}

/// `s` in single quotes for /bin/sh.
public func shellQuote(_ s: String) -> String {
    "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

/// The built `mailmirror` binary beside the test bundle (swift test builds it).
public var mailmirrorBinary: String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    // …/.build/<triple>/debug/mailmirrorPackageTests.xctest
    var dir = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    if dir.hasSuffix(".xctest") { dir = dir.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/") }
    return dir + "/mailmirror"
}

/// Runs the built `mailmirror` with `arguments`.
public func runMailmirror(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> CommandOutput {
    try runCommand([mailmirrorBinary] + arguments, environment: environment, timeout: timeout)
}
