import Dispatch

/// A serial executor that runs an actor's jobs on one Dispatch queue.
///
/// `DispatchSerialQueue` does not exist on Linux, so an actor that must share a queue with
/// its Dispatch sources (sockets, timers, inotify) returns one of these from
/// `unownedExecutor`. Source handlers that run on `queue` may then enter the actor with
/// `assumeIsolated`, without an extra hop.
public final class DispatchQueueExecutor: SerialExecutor, @unchecked Sendable {
    /// The queue every job of the actor runs on.
    public let queue: DispatchQueue

    /// Creates an executor over a new serial queue with the given label.
    public init(label: String, qos: DispatchQoS = .default) {
        self.queue = DispatchQueue(label: label, qos: qos)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { unownedJob.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
