#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock per account (`state_dir/ACCOUNT.lock`, flock), so that a `sync` and
/// the daemon, or two `sync`s, never work on one account at the same time.
public final class AccountLock {
    private let fd: Int32
    public let path: String

    /// Takes the lock without waiting.
    /// - Throws: `AccountLockError` naming the account and what to do when another process holds it.
    public convenience init(stateDirectory: String, account: String) throws(AccountLockError) {
        try self.init(path: stateDirectory + "/" + account.map { $0 == "/" ? "_" : $0 }.reduce("") { $0 + String($1) } + ".lock",
                      account: account)
    }

    /// The daemon's own lock (`state_dir/daemon.pid`, never an account's `.lock`): one daemon
    /// per state, or every account would run twice over — two push connections, two
    /// watchers, passes taking turns.
    public static func daemon(stateDirectory: String) throws(AccountLockError) -> AccountLock {
        try AccountLock(path: stateDirectory + "/daemon.pid", account: nil)
    }

    private init(path: String, account: String?) throws(AccountLockError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AccountLockError(account: account, path: path, held: false, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var holder: String?
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, buffer.count)
            if n > 0 { holder = String(decoding: buffer[0..<n], as: UTF8.self).filter(\.isNumber) }
            close(fd)
            throw AccountLockError(account: account, path: path, held: e == EWOULDBLOCK, errno: e, holder: holder)
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Another process works on the account, or the lock file cannot be made.
public struct AccountLockError: Error, Sendable, CustomStringConvertible {
    /// nil: the daemon's lock.
    public var account: String?
    public var path: String
    public var held: Bool
    public var errno: Int32
    /// The pid the lock file names, when it could be read.
    public var holder: String? = nil
    public var description: String {
        let pid = holder.map { $0.isEmpty ? "" : " (pid \($0))" } ?? ""
        guard let account else {
            return held ? "another mailmirror daemon\(pid) runs on this state (\(path)); stop it first (systemctl --user stop mailmirror)"
                        : "cannot create the daemon's lock file \(path): \(String(cString: strerror(errno)))"
        }
        return held ? "account \"\(account)\" is being synced by another mailmirror process\(pid) (lock \(path)); wait for it, or stop the daemon first"
                    : "account \"\(account)\": cannot create lock file \(path): \(String(cString: strerror(errno)))"
    }
}
