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
        let (fd, port) = try listeningSocket(backlog: 8)
        self.listenFD = fd
        self.port = port
        let done = self.done
        DispatchQueue(label: "scripted-server").async {   // own thread: it blocks
            let client = accept(fd, nil, nil)
            if client >= 0 {
                for step in steps {
                    switch step {
                    case .send(let bytes):
                        _ = sendAll(client, bytes)
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
        (fd, port) = try listeningSocket(backlog: 8)
    }

    public func stop() { close(fd) }
}
