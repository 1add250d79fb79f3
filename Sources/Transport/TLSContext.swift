import COpenSSL
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// What a client checks of a server's TLS certificate.
public struct TLSClientConfiguration: Sendable, Hashable {
    /// A PEM file of CAs to trust instead of the system store (the account's `ca_file`).
    public var caFile: String?
    /// The name (or IP address literal) the certificate must be valid for; usually the host.
    public var verifyName: String

    public init(verifyName: String, caFile: String? = nil) {
        self.verifyName = verifyName
        self.caFile = caFile
    }
}

/// An OpenSSL client context: TLS 1.2 minimum, peer verification on, no TLS compression.
///
/// Contexts are cached per CA file, since loading the system store costs milliseconds.
final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    private init(caFile: String?) throws(TLSContextError) {
        _ = TLSContext.sslInitialised
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSContextError(reason: "cannot create a TLS context: \(opensslErrorString())")
        }
        self.ctx = ctx
        _ = copenssl_ctx_set_min_proto_tls12(ctx)
        _ = copenssl_ctx_set_options(ctx)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        ERR_clear_error()
        if let caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                // deinit frees ctx: every stored property is set, so a throwing init deinitialises.
                let reason = opensslErrorString()
                throw TLSContextError(reason: "cannot load ca_file \"\(caFile)\" (\(reason)); it must be a readable PEM file of CA certificates")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            let reason = opensslErrorString()
            throw TLSContextError(reason: "cannot load the system CA store (\(reason)); install ca-certificates or set ca_file")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    private static let sslInitialised: Bool = {
        OPENSSL_init_ssl(0, nil)
        signal(SIGPIPE, SIG_IGN)   // SSL writes on a closed socket must be errors, not process death
        return true
    }()

    /// Starts OpenSSL's own set-up (its configuration file, providers, the client method's
    /// algorithms: a few milliseconds) on a background thread, so that the first connection
    /// finds it done. Safe to call more than once, and at any time.
    static func warmUp() {
        // Its own queue, not a global one: a global queue's thread counts against the
        // cooperative pool's width (2 here), and the connection's task then waits for it.
        DispatchQueue(label: "mailmirror.tls-warm-up").async {
            _ = sslInitialised
            if let ctx = SSL_CTX_new(TLS_client_method()) { SSL_CTX_free(ctx) }
        }
    }

    nonisolated(unsafe) private static var cache: [String: TLSContext] = [:]
    private static let cacheLock = Mutex()

    /// The shared context for a CA file (nil: the system store).
    static func shared(caFile: String?) throws(TLSContextError) -> TLSContext {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        let key = caFile ?? ""
        if let ctx = cache[key] { return ctx }
        let ctx = try TLSContext(caFile: caFile)
        cache[key] = ctx
        return ctx
    }
}

/// A TLS context could not be set up (bad `ca_file`, no system store).
public struct TLSContextError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The oldest queued OpenSSL error as text, clearing the queue.
func opensslErrorString() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "no detail from OpenSSL" }
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &buffer, buffer.count)
    let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason after the last colon
    return text.split(separator: ":").last.map(String.init) ?? text
}

/// A plain pthread mutex for the few process-wide caches.
final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func lock() { pthread_mutex_lock(&mutex) }
    func unlock() { pthread_mutex_unlock(&mutex) }
}
