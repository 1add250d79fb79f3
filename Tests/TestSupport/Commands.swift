#if canImport(Glibc)
import Glibc
#endif
import Support
import CSupport

/// What a command printed and how it ended.
public struct CommandOutput: Sendable {
    public var status: Int32?
    public var standardOutput: String
    public var standardError: String
}

/// Runs argv (no shell; arguments are single-quoted for /bin/sh), with extra environment
/// variables, killed after `timeout` seconds. The wait happens off the cooperative pool, so
/// tests running in parallel are not starved while a subprocess runs.
public func runCommand(_ argv: [String], environment: [String: String] = [:], timeout: Double = 60) async throws -> CommandOutput {
    let result = try await Subprocess.runShell(commandLine(argv, environment), timeout: timeout, outputLimit: 16 << 20)
    return CommandOutput(status: result.exitStatus,
                         standardOutput: String(decoding: result.standardOutput, as: UTF8.self),
                         standardError: String(decoding: result.standardError, as: UTF8.self))
}

/// The same for synchronous contexts (blocks the calling thread).
public func runCommandBlocking(_ argv: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> CommandOutput {
    let result = try Subprocess.runShellBlocking(commandLine(argv, environment), timeout: timeout, outputLimit: 16 << 20)
    return CommandOutput(status: result.exitStatus,
                         standardOutput: String(decoding: result.standardOutput, as: UTF8.self),
                         standardError: String(decoding: result.standardError, as: UTF8.self))
}

func commandLine(_ argv: [String], _ environment: [String: String]) -> String {
    let quoted = argv.map(shellQuote).joined(separator: " ")
    let env = environment.map { "\($0.key)=\(shellQuote($0.value))" }.joined(separator: " ")
    return env.isEmpty ? quoted : "env \(env) \(quoted)"
}

/// The names in a directory (without . and ..), sorted; empty when it cannot be read.
public func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    while let entry = readdir(dir) {
        let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
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
public func runMailmirror(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 120) async throws -> CommandOutput {
    try await runCommand([mailmirrorBinary] + arguments, environment: environment, timeout: timeout)
}

/// A child process started without waiting, so a test can kill it at a chosen moment.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    private var reaped = false
    public private(set) var status: Int32?

    /// Starts argv (argv[0] looked up in PATH) with extra environment variables; stdout and
    /// stderr go to `outputPath` when given, else /dev/null.
    public init(_ argv: [String], environment: [String: String] = [:], outputPath: String? = nil) throws {
        let command = (environment.isEmpty ? "" : "exec env " + environment.map { "\($0.key)=\(shellQuote($0.value))" }.joined(separator: " ") + " ")
            + (environment.isEmpty ? "exec " : "") + argv.map(shellQuote).joined(separator: " ")
        let fd = open(outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { if fd >= 0 { close(fd) } }
        let pid = csupport_spawn_shell(command, fd, fd)
        guard pid > 0 else { throw FixtureError(message: "spawn failed: \(-pid)") }
        self.pid = pid
    }

    /// Sends `signal` to this process (by its pid; only processes the test started).
    public func kill(_ signal: Int32 = SIGKILL) { if !reaped { _ = Glibc.kill(pid, signal) } }

    /// Waits for the exit (bounded by `timeout` seconds, then SIGKILL); returns the exit status (nil if signalled).
    @discardableResult
    public func wait(timeout: Double = 120) -> Int32? {
        guard !reaped else { return status }
        let deadline = monotonicSeconds() + timeout
        var raw: Int32 = 0
        while true {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { break }
            if monotonicSeconds() > deadline { Glibc.kill(pid, SIGKILL); waitpid(pid, &raw, 0); break }
            usleep(10_000)
        }
        reaped = true
        status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : nil
        return status
    }

    /// Whether the process has exited (reaping it if so).
    public var hasExited: Bool {
        if reaped { return true }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            reaped = true
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : nil
            return true
        }
        return false
    }
}
