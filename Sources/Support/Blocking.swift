import Dispatch

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
