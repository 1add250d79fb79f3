import Support

/// The secret of an account could not be obtained.
public struct PasswordError: Error, Sendable, CustomStringConvertible {
    public var account: String
    public var message: String
    public var description: String { "account \"\(account)\": \(message)" }
}

extension PasswordSource {
    /// The secret: the literal, or the first line of `password_command`'s output (run by
    /// `/bin/sh -c`, killed after `timeout` seconds). A failing command is an error that
    /// quotes its stderr.
    public func resolve(account: String, timeout: Double = 60) async throws(PasswordError) -> String {
        switch self {
        case .literal(let secret):
            return secret
        case .command(let command):
            let result: SubprocessResult
            do { result = try await Subprocess.runShell(command, timeout: timeout, outputLimit: 64 * 1024) }
            catch { throw PasswordError(account: account, message: "password_command: \(error)") }
            let stderr = String(decoding: result.standardError, as: UTF8.self)
                .split(whereSeparator: \.isNewline).prefix(3).joined(separator: " | ")
            if result.timedOut {
                throw PasswordError(account: account, message: "password_command `\(command)` did not finish within \(Int(timeout)) s (does it wait for input?)")
            }
            guard result.exitStatus == 0 else {
                let how = result.exitStatus.map { "exit status \($0)" } ?? "signal \(result.signal ?? 0)"
                throw PasswordError(account: account, message: "password_command `\(command)` failed (\(how))\(stderr.isEmpty ? "" : ": \(stderr)"); run it in a shell to see why")
            }
            let firstLine = result.standardOutput.split(separator: 10, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            var bytes = Array(firstLine)
            if bytes.last == 13 { bytes.removeLast() }
            guard !bytes.isEmpty else {
                throw PasswordError(account: account, message: "password_command `\(command)` printed nothing on its first line")
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
