#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import COpenSSL
import Support

/// One TCP connection, optionally TLS, driven by Dispatch sources on its own serial queue.
///
/// The socket is non-blocking; a read or write that would block suspends the caller until a
/// Dispatch source reports the socket ready or the operation's deadline passes. The actor
/// runs on the same queue as its sources, so source handlers enter it without a hop.
/// Reads are buffered: `readLine` and `read(exactly:)` serve protocol parsers, and
/// `readAvailable` lets a body be streamed to disk with bounded memory.
/// One caller at a time reads and one writes; a protocol client owns the connection.
public actor Connection {
    /// "host:port" as the user configured it, used in every message.
    public nonisolated let peer: String
    /// The numeric address actually connected to ("127.0.0.1", "::1").
    public nonisolated let remoteAddress: String
    /// Seconds a single read or write may wait for the socket before failing.
    public var ioTimeout: Double

    private let executor: DispatchQueueExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var fd: Int32
    private var ssl: OpaquePointer?
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var readSourceRunning = false
    private var writeSourceRunning = false
    /// The reading side and the writing side may each wait at the same time (a large
    /// upload fills the send buffer while responses are awaited); each has its own deadline.
    private var waits: [Slot: Wait] = [:]
    private var timers: [Slot: DispatchSourceTimer] = [:]
    private var isClosed = false
    private var peerClosed = false

    /// Received bytes not yet consumed start at `head`.
    private var buffer: [UInt8] = []
    private var head = 0
    /// Where the last line search stopped, so a long line is not scanned twice.
    private var lineScanFrom = 0

    /// Changes how long a single read or write may wait (IDLE waits longer than a command).
    public func setIOTimeout(_ seconds: Double) { ioTimeout = seconds }

    /// The negotiated TLS version ("TLSv1.3"), nil while the connection is plain.
    public var tlsVersion: String? {
        guard let ssl else { return nil }
        return String(cString: SSL_get_version(ssl))
    }

    /// Bytes received and not yet consumed.
    public var bufferedByteCount: Int { buffer.count - head }

    /// An integer socket option as the kernel has it (for tests); nil once closed.
    func socketOption(level: Int32, name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard !isClosed, getsockopt(fd, level, name, &value, &length) == 0 else { return nil }
        return value
    }

    private init(fd: Int32, peer: String, remoteAddress: String, executor: DispatchQueueExecutor, ioTimeout: Double) {
        self.fd = fd
        self.peer = peer
        self.remoteAddress = remoteAddress
        self.executor = executor
        self.ioTimeout = ioTimeout
    }

    /// Starts OpenSSL's set-up in the background (a process about to connect calls this first).
    public static func warmUpTLS() { TLSContext.warmUp() }

    /// Connects to `host:port`, trying every address it resolves to in turn within
    /// `connectTimeout` seconds in all, then (with `tls`) performs the TLS handshake.
    /// - Throws: `TransportError` saying what failed, in words.
    public static func connect(host: String, port: UInt16, tls: TLSClientConfiguration? = nil,
                               connectTimeout: Double = 15, ioTimeout: Double = 60) async throws -> Connection {
        let peer = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let deadline = monotonicSeconds() + connectTimeout
        // The TLS context (OpenSSL setup and CA loading: milliseconds) is made on its own
        // thread while the address resolves and the TCP connection opens.
        let contextReady: Task<TLSContext, any Error>? = tls.map { tls in
            Task { try await runBlocking(label: "mailmirror.tls-context") { try TLSContext.shared(caFile: tls.caFile) } }
        }
        Trace.mark("\(peer): connecting")
        let addresses: [ResolvedAddress]
        do { addresses = try await AddressResolver.resolve(host: host, port: port) }
        catch { _ = try? await contextReady?.value; throw error }
        var lastError: TransportError = .connectFailed(peer: peer, reason: "no address to try")
        Trace.mark("\(peer): resolved")
        for address in addresses {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 { break }
            let executor = DispatchQueueExecutor(label: "mailmirror.connection.\(peer)")
            let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 {
                lastError = .connectFailed(peer: peer, reason: String(cString: strerror(errno)))
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            // A push connection waits in IDLE for minutes: probe a silent peer after 60 s and
            // give up after 4 unanswered probes 15 s apart, so a connection a NAT or a network
            // change killed is found in ~2 min instead of the kernel's default 2 h 11 min.
            for (option, value) in [(TCP_KEEPIDLE, Int32(60)), (TCP_KEEPINTVL, 15), (TCP_KEEPCNT, 4)] {
                var v = value
                setsockopt(fd, Int32(IPPROTO_TCP), option, &v, socklen_t(MemoryLayout<Int32>.size))
            }
            let connection = Connection(fd: fd, peer: peer, remoteAddress: address.numericHost,
                                        executor: executor, ioTimeout: ioTimeout)
            do {
                try await connection.finishConnect(address: address, timeout: remaining)
            } catch let error as TransportError {
                await connection.close()
                if case .connectionRefused = lastError, case .timedOut = error {
                    // keep the more telling "refused" from an earlier address
                } else {
                    lastError = error
                }
                continue
            }
            if let tls {
                Trace.mark("\(peer): TCP connected")
                let tlsContext: TLSContext
                do { tlsContext = try await contextReady!.value }
                catch {
                    await connection.close()
                    throw TransportError.tlsHandshakeFailed(peer: peer, reason: (error as? TLSContextError)?.reason ?? "\(error)")
                }
                Trace.mark("\(peer): TLS context ready")
                do {
                    try await connection.handshake(context: tlsContext, configuration: tls,
                                                   timeout: max(deadline - monotonicSeconds(), 1))
                } catch {
                    await connection.close()
                    throw error
                }
            }
            return connection
        }
        if deadline - monotonicSeconds() <= 0, case .connectFailed = lastError {
            throw TransportError.timedOut(peer: peer, operation: "connecting to", seconds: connectTimeout)
        }
        throw lastError
    }

    // MARK: - Connecting

    private func finishConnect(address: ResolvedAddress, timeout: Double) async throws {
        setUpSources()
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        if rc == 0 { return }
        guard errno == EINPROGRESS else { throw connectError(errno) }
        try await waitUntil(.writable, slot: .writer, operation: "connecting to", timeout: timeout)
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        if soError != 0 { throw connectError(soError) }
    }

    private func connectError(_ code: Int32) -> TransportError {
        if code == ECONNREFUSED { return .connectionRefused(peer: peer) }
        return .connectFailed(peer: peer, reason: String(cString: strerror(code)))
    }

    private func setUpSources() {
        let queue = executor.queue
        let read = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        read.setEventHandler { [weak self] in
            self?.assumeIsolated { $0.socketReady(reading: true) }
        }
        let write = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
        write.setEventHandler { [weak self] in
            self?.assumeIsolated { $0.socketReady(reading: false) }
        }
        for slot in [Slot.reader, .writer] {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [weak self] in
                self?.assumeIsolated { $0.deadlinePassed(slot) }
            }
            timer.schedule(deadline: .distantFuture)
            timer.resume()
            timers[slot] = timer
        }
        // Sources start suspended; they run only while somebody waits (the read source is
        // level-triggered and would otherwise spin).
        readSource = read
        writeSource = write
    }

    // MARK: - Waiting for the socket

    private enum Readiness { case readable, writable }
    /// Who waits: the reading side (reads, the handshake) or the writing side (writes, connect).
    private enum Slot { case reader, writer }

    private struct Wait {
        var continuation: CheckedContinuation<Void, Error>
        var readiness: Readiness
        var operation: String
        var seconds: Double
    }

    private func waitUntil(_ readiness: Readiness, slot: Slot, operation: String, timeout: Double) async throws {
        if isClosed { throw TransportError.closed(peer: peer) }
        precondition(waits[slot] == nil, "Connection: two concurrent waits of one side on \(peer)")
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            waits[slot] = Wait(continuation: continuation, readiness: readiness, operation: operation, seconds: timeout)
            timers[slot]?.schedule(deadline: .now() + timeout)
            updateSources()
        }
    }

    /// Runs each source exactly while some wait needs it (a suspended source costs nothing).
    private func updateSources() {
        guard !isClosed else { return }
        let wantRead = waits.values.contains { $0.readiness == .readable }
        let wantWrite = waits.values.contains { $0.readiness == .writable }
        if wantRead != readSourceRunning {
            if wantRead { readSource?.resume() } else { readSource?.suspend() }
            readSourceRunning = wantRead
        }
        if wantWrite != writeSourceRunning {
            if wantWrite { writeSource?.resume() } else { writeSource?.suspend() }
            writeSourceRunning = wantWrite
        }
    }

    private func socketReady(reading: Bool) {
        let readiness: Readiness = reading ? .readable : .writable
        for (slot, wait) in waits where wait.readiness == readiness { wake(slot, with: nil) }
        updateSources()
    }

    private func deadlinePassed(_ slot: Slot) {
        guard let wait = waits[slot] else { return }
        // In a busy process the timer's handler may run before the socket's, although the
        // socket became ready in time (both queue behind other work): look once more.
        var entry = pollfd(fd: fd, events: Int16(wait.readiness == .readable ? POLLIN : POLLOUT), revents: 0)
        if poll(&entry, 1, 0) == 1 {
            wake(slot, with: nil)
            updateSources()
            return
        }
        wake(slot, with: TransportError.timedOut(peer: peer, operation: wait.operation, seconds: wait.seconds))
        updateSources()
    }

    private func wake(_ slot: Slot, with error: Error?) {
        timers[slot]?.schedule(deadline: .distantFuture)
        guard let wait = waits.removeValue(forKey: slot) else { return }
        if let error { wait.continuation.resume(throwing: error) } else { wait.continuation.resume() }
    }

    // MARK: - TLS

    /// Upgrades a plain connection to TLS (after the server accepted STARTTLS / STLS).
    ///
    /// - Throws: `TransportError.starttlsInjection` when the server already sent bytes that
    ///   would be read as if they came over TLS; handshake and verification errors otherwise.
    public func startTLS(_ configuration: TLSClientConfiguration, timeout: Double = 30) async throws {
        guard ssl == nil else { return }
        if bufferedByteCount > 0 {
            close()
            throw TransportError.starttlsInjection(peer: peer)
        }
        let context: TLSContext
        do { context = try TLSContext.shared(caFile: configuration.caFile) }
        catch { throw TransportError.tlsHandshakeFailed(peer: peer, reason: error.reason) }
        do {
            try await handshake(context: context, configuration: configuration, timeout: timeout)
        } catch {
            close()
            throw error
        }
    }

    private func handshake(context: TLSContext, configuration: TLSClientConfiguration, timeout: Double) async throws {
        guard let ssl = SSL_new(context.ctx) else {
            throw TransportError.tlsHandshakeFailed(peer: peer, reason: opensslErrorString())
        }
        self.ssl = ssl
        _ = copenssl_set_partial_write_mode(ssl)
        // No read-ahead (SSL_set_read_ahead): it halves the read calls (one for a record's
        // header, one for its body) but gained no wall time on loopback, and bytes OpenSSL
        // has read ahead are invisible to a wait on the socket: every wait would first have
        // to ask SSL_has_pending.
        SSL_set_fd(ssl, fd)
        let name = configuration.verifyName
        if isIPAddressLiteral(name) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
        } else {
            _ = copenssl_set_sni(ssl, name)
            SSL_set1_host(ssl, name)
        }
        let deadline = monotonicSeconds() + timeout
        while true {
            ERR_clear_error()
            let rc = SSL_connect(ssl)
            if rc == 1 { return }
            let err = SSL_get_error(ssl, rc)
            let remaining = deadline - monotonicSeconds()
            switch err {
            case SSL_ERROR_WANT_READ:
                try await waitUntil(.readable, slot: .reader, operation: "in the TLS handshake with", timeout: max(remaining, 0.001))
            case SSL_ERROR_WANT_WRITE:
                try await waitUntil(.writable, slot: .reader, operation: "in the TLS handshake with", timeout: max(remaining, 0.001))
            default:
                throw handshakeError(ssl: ssl, sslError: err, verifyName: name)
            }
        }
    }

    private func handshakeError(ssl: OpaquePointer, sslError: Int32, verifyName: String) -> TransportError {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            ERR_clear_error()
            if verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH {
                return .hostnameMismatch(peer: peer, expected: verifyName)
            }
            return .certificateNotTrusted(peer: peer, reason: String(cString: X509_verify_cert_error_string(verify)))
        }
        if sslError == SSL_ERROR_SYSCALL || sslError == SSL_ERROR_ZERO_RETURN {
            let sys = errno
            ERR_clear_error()
            return .tlsHandshakeFailed(peer: peer, reason: sys != 0 ? String(cString: strerror(sys)) : "the server closed the connection during the handshake (is this port plain text, or STARTTLS?)")
        }
        return .tlsHandshakeFailed(peer: peer, reason: opensslErrorString())
    }

    // MARK: - Reading

    /// Reads one line and returns it without its line ending (CRLF, or a bare LF).
    ///
    /// - Parameter maxLength: a line longer than this closes the connection with
    ///   `TransportError.lineTooLong` (bounded memory for hostile servers).
    public func readLine(maxLength: Int = 65536) async throws -> [UInt8] {
        while true {
            if let lf = findLF() {
                var end = lf
                if end > head && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[head..<end])
                consume(upTo: lf + 1)
                return line
            }
            if buffer.count - head > maxLength {
                close()
                throw TransportError.lineTooLong(peer: peer, limit: maxLength)
            }
            try await fill()
        }
    }

    /// Reads exactly `count` bytes (a literal's body of known size that fits in memory).
    public func read(exactly count: Int) async throws -> [UInt8] {
        while buffer.count - head < count { try await fill() }
        let bytes = Array(buffer[head..<head + count])
        consume(upTo: head + count)
        return bytes
    }

    /// Returns between 1 and `maxCount` bytes: what is buffered, or the next arrival.
    /// The way to stream a body to a file without holding it in memory.
    public func readAvailable(maxCount: Int) async throws -> [UInt8] {
        if buffer.count - head == 0 { try await fill() }
        let n = min(maxCount, buffer.count - head)
        let bytes = Array(buffer[head..<head + n])
        consume(upTo: head + n)
        return bytes
    }

    private func findLF() -> Int? {
        let start = max(head, lineScanFrom)
        guard start < buffer.count else { return nil }
        let found: Int? = buffer.withUnsafeBufferPointer { raw in
            guard let p = memchr(raw.baseAddress! + start, 10, raw.count - start) else { return nil }
            return UnsafeRawPointer(p) - UnsafeRawPointer(raw.baseAddress!)
        }
        lineScanFrom = found == nil ? buffer.count : 0
        return found
    }

    private func consume(upTo index: Int) {
        head = index
        lineScanFrom = 0
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            head = 0
        } else if head > 65536 && head * 2 > buffer.count {
            buffer.removeSubrange(0..<head)
            head = 0
        }
    }

    /// Appends whatever the socket has (at least one byte), waiting up to `ioTimeout`.
    private func fill() async throws {
        if isClosed { throw TransportError.closed(peer: peer) }
        if peerClosed { throw TransportError.closedByPeer(peer: peer) }
        let chunk = 65536
        while true {
            let before = buffer.count
            let outcome = receive(into: chunk)
            switch outcome {
            case .data:
                // TLS hands out one record (≤16 KiB) per call: drain what is decrypted
                // already before yielding, bounded so one fill cannot grow without limit.
                while buffer.count - before < 4 * chunk, case .data = receive(into: chunk) {}
                return
            case .eof:
                peerClosed = true
                if buffer.count > before { return }
                throw TransportError.closedByPeer(peer: peer)
            case .wantRead:
                try await waitUntil(.readable, slot: .reader, operation: "waiting for data from", timeout: ioTimeout)
            case .wantWrite:
                try await waitUntil(.writable, slot: .reader, operation: "waiting to send to", timeout: ioTimeout)
            case .failed(let reason):
                close()
                throw TransportError.io(peer: peer, reason: reason)
            }
        }
    }

    private enum IOOutcome { case data, eof, wantRead, wantWrite, failed(String) }

    /// Scratch space each read lands in before its bytes are appended to `buffer` (one
    /// copy of what arrived, instead of zero-filling the buffer's tail on every read).
    /// Never zero-filled itself: its pages become resident only where a read wrote, so an
    /// idle connection that only ever saw short lines keeps one page, not 64 KiB of them.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 64)

    private func receive(into chunk: Int) -> IOOutcome {
        let fd = self.fd
        let ssl = self.ssl
        let raw = scratch
        let (received, outcome): (Int, IOOutcome) = {
            let target = raw.baseAddress!
            let capacity = min(chunk, raw.count)
            if let ssl {
                ERR_clear_error()
                let n = SSL_read(ssl, target, Int32(capacity))
                if n > 0 { return (Int(n), .data) }
                switch SSL_get_error(ssl, n) {
                case SSL_ERROR_WANT_READ: return (0, .wantRead)
                case SSL_ERROR_WANT_WRITE: return (0, .wantWrite)
                case SSL_ERROR_ZERO_RETURN: return (0, .eof)
                case SSL_ERROR_SYSCALL:
                    let sys = errno
                    return (0, sys == 0 ? .eof : .failed(String(cString: strerror(sys))))
                default: return (0, .failed("TLS error: \(opensslErrorString())"))
                }
            }
            let n = recv(fd, target, capacity, 0)
            if n > 0 { return (n, .data) }
            if n == 0 { return (0, .eof) }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return (0, .wantRead) }
            return (0, .failed(String(cString: strerror(errno))))
        }()
        if received > 0 { buffer.append(contentsOf: UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: received)) }
        return outcome
    }

    // MARK: - Writing

    /// Sends all of `bytes`, waiting for the socket to drain when the kernel buffer is full
    /// (back-pressure), each wait bounded by `ioTimeout`.
    public func write(_ bytes: [UInt8]) async throws {
        if isClosed { throw TransportError.closed(peer: peer) }
        var offset = 0
        while offset < bytes.count {
            let outcome: (Int, IOOutcome) = bytes.withUnsafeBytes { raw in
                let base = raw.baseAddress! + offset
                let count = raw.count - offset
                if let ssl {
                    ERR_clear_error()
                    let n = SSL_write(ssl, base, Int32(min(count, Int(Int32.max))))
                    if n > 0 { return (Int(n), .data) }
                    switch SSL_get_error(ssl, n) {
                    case SSL_ERROR_WANT_READ: return (0, .wantRead)
                    case SSL_ERROR_WANT_WRITE: return (0, .wantWrite)
                    case SSL_ERROR_SYSCALL: return (0, .failed(String(cString: strerror(errno))))
                    default: return (0, .failed("TLS error: \(opensslErrorString())"))
                    }
                } else {
                    let n = send(fd, base, count, Int32(MSG_NOSIGNAL))
                    if n >= 0 { return (n, .data) }
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return (0, .wantWrite) }
                    return (0, .failed(String(cString: strerror(errno))))
                }
            }
            switch outcome.1 {
            case .data: offset += outcome.0
            case .wantWrite: try await waitUntil(.writable, slot: .writer, operation: "waiting to send to", timeout: ioTimeout)
            case .wantRead: try await waitUntil(.readable, slot: .writer, operation: "waiting for data from", timeout: ioTimeout)
            case .eof: throw TransportError.closedByPeer(peer: peer)
            case .failed(let reason):
                close()
                throw TransportError.io(peer: peer, reason: reason)
            }
        }
    }

    // MARK: - Closing

    /// Closes the connection (a TLS close_notify is sent when possible); idempotent.
    /// A pending read or write fails with `TransportError.closed`.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if let ssl {
            ERR_clear_error()
            SSL_shutdown(ssl)   // best effort, non-blocking
            SSL_free(ssl)
            self.ssl = nil
        }
        for slot in Array(waits.keys) { wake(slot, with: TransportError.closed(peer: peer)) }
        tearDownSources()
    }

    private func tearDownSources() {
        // A suspended source must be resumed before it is cancelled and released, and the
        // fd closed only after every cancel handler has run.
        let fd = self.fd
        self.fd = -1
        guard let readSource, let writeSource else {
            if fd >= 0 { Glibc.close(fd) }
            return
        }
        let group = DispatchGroup()
        for source in [readSource as DispatchSourceProtocol, writeSource] {
            group.enter()
            source.setCancelHandler { group.leave() }
        }
        if !readSourceRunning { readSource.resume() }
        if !writeSourceRunning { writeSource.resume() }
        readSourceRunning = true
        writeSourceRunning = true
        readSource.cancel()
        writeSource.cancel()
        for timer in timers.values { timer.cancel() }
        timers = [:]
        group.notify(queue: executor.queue) { Glibc.close(fd) }
        self.readSource = nil
        self.writeSource = nil
    }

    isolated deinit {
        if !isClosed { close() }
        scratch.deallocate()
    }
}
