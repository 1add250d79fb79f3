import Dispatch
import CSupport

/// Runs a blocking call (getaddrinfo, waitpid, a blocking read) off the Swift cooperative
/// pool and returns its result asynchronously.
///
/// Each call gets its own serial queue: on Linux those are "overcommit" and get a thread
/// of their own, whereas a concurrent or global queue shares a pool of one thread per
/// core that a few blocked calls would starve.
public func runBlocking<T: Sendable>(label: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue(label: label).async {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Caps glibc's malloc arenas, and fixes its mmap threshold at 128 KiB. glibc gives each
/// thread that allocates an arena of its own (up to 8 per core): the Dispatch and
/// cooperative-pool threads then spread a pass's memory over a dozen heaps; and after the
/// first large free it keeps large buffers in the heap. Call once, before threads start.
public func limitMallocArenas(_ count: Int32) {
    _ = csupport_limit_malloc_arenas(count)
}
