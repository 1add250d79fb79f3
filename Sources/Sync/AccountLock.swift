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
    public init(stateDirectory: String, account: String) throws(AccountLockError) {
        path = stateDirectory + "/" + account.map { $0 == "/" ? "_" : $0 }.reduce("") { $0 + String($1) } + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AccountLockError(account: account, path: path, held: false, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            throw AccountLockError(account: account, path: path, held: e == EWOULDBLOCK, errno: e)
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
    public var account: String
    public var path: String
    public var held: Bool
    public var errno: Int32
    public var description: String {
        held ? "account \"\(account)\" is being synced by another mailmirror process (lock \(path)); wait for it, or stop the daemon first"
             : "account \"\(account)\": cannot create lock file \(path): \(String(cString: strerror(errno)))"
    }
}
