#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A one-connection TCP server on 127.0.0.1 that plays a fixed script: only for behaviour
/// no real server produces (hostile or broken responses). Everything a real server does is
/// tested against the Dovecot fixture instead.
public final class ScriptedServer: @unchecked Sendable {
    /// One step of the conversation.
    public enum Step: Sendable {
        /// Send these bytes.
        case send([UInt8])
        /// Read until a line feed arrives (the client's command).
        case readLine
        /// Close the connection.
        case close
    }

    public let port: UInt16
    private let listenFD: Int32
    private let done = DispatchSemaphore(value: 0)

    /// Binds a free port and serves `steps` to the first client, on a background queue.
    public init(_ steps: [Step]) throws {
        let (fd, port) = try listeningSocket()
        self.listenFD = fd
        self.port = port
        let done = self.done
        DispatchQueue(label: "scripted-server").async {   // own thread: it blocks
            let client = accept(fd, nil, nil)
            if client >= 0 {
                for step in steps {
                    switch step {
                    case .send(let bytes):
                        var offset = 0
                        while offset < bytes.count {
                            let n = bytes[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            if n <= 0 { break }
                            offset += n
                        }
                    case .readLine:
                        var byte: UInt8 = 0
                        while recv(client, &byte, 1, 0) == 1 && byte != 10 {}
                    case .close:
                        shutdown(client, Int32(SHUT_RDWR))
                    }
                }
                // Hold the connection until the client closes it.
                var sink = [UInt8](repeating: 0, count: 4096)
                while recv(client, &sink, sink.count, 0) > 0 {}
                close(client)
            }
            done.signal()
        }
    }

    /// Closes the listening socket.
    public func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }
}

/// A socket that listens but never accepts or answers: the kernel completes the TCP
/// handshake, and then nothing ever arrives — a server that hangs.
public final class SilentListener: @unchecked Sendable {
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        (fd, port) = try listeningSocket()
    }

    public func stop() { close(fd) }
}

private func listeningSocket() throws -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw FixtureError(message: "socket: \(errno)") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0, listen(fd, 8) == 0 else { close(fd); throw FixtureError(message: "bind/listen: \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return (fd, UInt16(bigEndian: addr.sin_port))
}
