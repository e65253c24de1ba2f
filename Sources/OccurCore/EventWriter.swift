import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Writes events to the EventStore in batches on its own thread, off the capture path.
/// A batch is written when it reaches `batchSize` or `flushInterval` has passed;
/// stopping writes everything still buffered.
public final class EventWriter: Service, Sendable {
    private let store: EventStore
    private let logger: Logger
    /// Called on the writer thread with each batch after it is committed.
    private let onWritten: @Sendable ([Event]) -> Void
    private let written = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let queue: BackgroundQueue<Event>
    private let metrics: HostMetrics?

    public init(store: EventStore, configuration: StorageConfiguration, metrics: HostMetrics? = nil, logger: Logger,
                onWritten: @escaping @Sendable ([Event]) -> Void = { _ in }) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.onWritten = onWritten
        let write = WeakBox<EventWriter>()
        queue = BackgroundQueue(name: "event-writer", batchSize: configuration.batchSize,
                                maxWait: configuration.flushInterval) { batch in write.value?.write(batch) }
        write.value = self
    }

    public var eventsWritten: Int { written.load(ordering: .relaxed) }

    /// Never blocks on the database: the event joins the buffer.
    public func append(_ event: Event) { queue.append(event) }

    /// Starts the writer thread (idempotent).
    public func start() { queue.start() }

    private func write(_ batch: [Event]) {
        do {
            let start = monotonicNanos()
            try store.append(batch)
            metrics?.databaseWrite(seconds: Double(monotonicNanos() - start) / 1e9, events: batch.count)
            metrics?.eventsLogged(batch)
            written.add(batch.count, ordering: .relaxed)
            onWritten(batch)
        } catch {
            let n = failures.add(1, ordering: .relaxed).newValue
            logger.error("event log write failed (\(batch.count) events lost, failure \(n)): \(error)")
        }
    }

    /// Writes what is buffered and ends the thread. Blocks until done.
    public func stopAndFlush() { queue.stopAndDrain() }

    public func run() async throws { await queue.runUntilShutdown() }
}

/// A weak reference for callbacks that would otherwise retain their owner.
final class WeakBox<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
}
