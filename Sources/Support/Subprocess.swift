#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import CSupport

/// What a finished subprocess left behind.
public struct SubprocessResult: Sendable {
    /// Exit status when it exited, nil when a signal ended it.
    public var exitStatus: Int32?
    /// The signal that ended it, if one did.
    public var signal: Int32?
    /// Everything it wrote to stdout, up to the output limit.
    public var standardOutput: [UInt8]
    /// Everything it wrote to stderr, up to the output limit.
    public var standardError: [UInt8]
    /// True when it was killed because it ran past its timeout.
    public var timedOut: Bool

    /// True for exit status 0.
    public var succeeded: Bool { exitStatus == 0 && !timedOut }
}

/// Why a subprocess could not be run at all.
public struct SubprocessError: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var errno: Int32
    public var description: String {
        "could not start `\(command)`: \(String(cString: strerror(errno)))"
    }
}

/// Runs shell commands (`password_command`, hooks) without blocking the cooperative pool.
///
/// The child gets an empty signal mask and default signal dispositions, its own process
/// group (so a timeout can end the whole pipeline it started), stdin from /dev/null, and
/// captured stdout/stderr bounded by `outputLimit` bytes each.
public enum Subprocess {
    /// Runs `/bin/sh -c command`, killing its process group after `timeout` seconds.
    public static func runShell(_ command: String, timeout: Double,
                                outputLimit: Int = 1 << 20) async throws -> SubprocessResult {
        try await runBlocking(label: "mailmirror.subprocess") {
            try runShellBlocking(command, timeout: timeout, outputLimit: outputLimit)
        }
    }

    /// The blocking implementation of `runShell`; call it only from a thread that may block.
    public static func runShellBlocking(_ command: String, timeout: Double,
                                        outputLimit: Int = 1 << 20) throws -> SubprocessResult {
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard csupport_pipe_cloexec(&outPipe) == 0 else { throw SubprocessError(command: command, errno: errno) }
        guard csupport_pipe_cloexec(&errPipe) == 0 else {
            let e = errno
            close(outPipe[0]); close(outPipe[1])
            throw SubprocessError(command: command, errno: e)
        }
        let pid = csupport_spawn_shell(command, outPipe[1], errPipe[1])
        close(outPipe[1]); close(errPipe[1])
        guard pid > 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SubprocessError(command: command, errno: -pid)
        }
        defer { close(outPipe[0]); close(errPipe[0]) }

        var out: [UInt8] = []
        var err: [UInt8] = []
        var open = [true, true]
        var timedOut = false
        let deadline = monotonicSeconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 16384)
        while open[0] || open[1] {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 {
                timedOut = true
                kill(-pid, SIGKILL)   // our own child's process group, by its pid
                break
            }
            var fds = [pollfd(fd: open[0] ? outPipe[0] : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: open[1] ? errPipe[0] : -1, events: Int16(POLLIN), revents: 0)]
            let rc = poll(&fds, 2, Int32(min(remaining * 1000, 60_000)) + 1)
            if rc < 0 { if errno == EINTR { continue } else { break } }
            for i in 0..<2 where open[i] && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    open[i] = false
                    continue
                }
                if i == 0 {
                    if out.count < outputLimit { out.append(contentsOf: buffer[0..<min(n, outputLimit - out.count)]) }
                } else {
                    if err.count < outputLimit { err.append(contentsOf: buffer[0..<min(n, outputLimit - err.count)]) }
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return SubprocessResult(exitStatus: exited ? (status >> 8) & 0xff : nil,
                                signal: exited ? nil : status & 0x7f,
                                standardOutput: out, standardError: err, timedOut: timedOut)
    }
}

/// Seconds on the monotonic clock, for deadlines that a wall-clock jump must not move.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
