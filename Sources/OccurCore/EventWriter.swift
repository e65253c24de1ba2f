import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Writes events to the EventStore in batches on its own thread, off the capture path.
/// A batch is written when it reaches `batchSize` or `flushInterval` has passed;
/// stopping writes everything still buffered. An event is therefore on disk at most
/// `flushInterval` plus one batch's write time after it was appended; SQLite's WAL keeps
/// every committed batch through a SIGKILL.
///
/// A full disk (SQLITE_FULL) loses nothing at first: the rows are held in memory, oldest
/// first, at most `storage.max_held_events` (beyond that the oldest are dropped and counted),
/// and written again every flush interval until the database takes them (StorageSpace).
public final class EventWriter: Service, Sendable {
    private struct Held {
        /// Rows not yet written, oldest first (the current batch included while writing).
        var rows: [StoredEvent] = []
        /// The last write failed for lack of space.
        var blocked = false
        /// While blocked, no attempt before this time (monotonic ns).
        var nextAttempt: Int64 = 0
    }

    private let store: EventStore
    private let logger: Logger
    /// Called on the writer thread with each batch after it is committed.
    private let onWritten: @Sendable ([StoredEvent]) -> Void
    private let written = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let lost = Atomic<Int>(0)
    private let held = Mutex(Held())
    private let queue: BackgroundQueue<Event>
    private let metrics: HostMetrics?
    private let space: StorageSpace?
    private let batchSize: Int
    private let flushInterval: Double
    private let maxHeld: Int

    public init(store: EventStore, configuration: StorageConfiguration, metrics: HostMetrics? = nil,
                space: StorageSpace? = nil, logger: Logger,
                onWritten: @escaping @Sendable ([StoredEvent]) -> Void = { _ in }) {
        self.store = store
        self.metrics = metrics
        self.space = space
        self.logger = logger
        self.onWritten = onWritten
        batchSize = max(1, configuration.batchSize)
        flushInterval = configuration.flushInterval
        maxHeld = configuration.maxHeldEvents
        let owner = WeakBox<EventWriter>()
        queue = BackgroundQueue(name: "event-writer", batchSize: configuration.batchSize,
                                maxWait: configuration.flushInterval,
                                idle: { owner.value?.retryHeld() }, finish: { owner.value?.finish() },
                                handle: { batch in owner.value?.write(batch) })
        owner.value = self
    }

    public var eventsWritten: Int { written.load(ordering: .relaxed) }

    /// Events held in memory because the disk is full.
    public var eventsHeld: Int { held.withLock { $0.rows.count } }

    /// Events that will never be written: dropped from a full buffer, lost at exit with the
    /// disk still full, or refused by the database for another reason.
    public var eventsLost: Int { lost.load(ordering: .relaxed) }

    /// Never blocks on the database: the event joins the buffer.
    public func append(_ event: Event) { queue.append(event) }

    /// Starts the writer thread (idempotent).
    public func start() { queue.start() }

    private func write(_ batch: [Event]) {
        held.withLock { held in
            held.rows += batch.map(StoredEvent.init)
            if held.blocked, monotonicNanos() < held.nextAttempt {
                dropOverflow(&held)
            } else {
                writeHeld(&held)
            }
        }
    }

    /// While blocked and nothing new arrives: try again every flush interval.
    private func retryHeld() {
        held.withLock { held in
            if !held.rows.isEmpty, monotonicNanos() >= held.nextAttempt { writeHeld(&held) }
        }
    }

    /// Writes the held rows oldest first, a batch per transaction, until done or the disk is full.
    private func writeHeld(_ held: inout Held) {
        while !held.rows.isEmpty {
            let batch = Array(held.rows.prefix(batchSize))
            do {
                let start = monotonicNanos()
                try store.append(rows: batch)
                metrics?.databaseWrite(seconds: Double(monotonicNanos() - start) / 1e9, events: batch.count)
                metrics?.eventsLogged(batch)
                written.add(batch.count, ordering: .relaxed)
                held.rows.removeFirst(batch.count)
                onWritten(batch)
            } catch where StorageSpace.isDiskFull(error) {
                held.nextAttempt = monotonicNanos() + Int64(flushInterval * 1e9)
                dropOverflow(&held)
                if !held.blocked {
                    held.blocked = true
                    space?.databaseFull(held: held.rows.count)
                    if space == nil { logger.error("event log: disk full; \(held.rows.count) events held in memory until it takes them: \(error)") }
                }
                return
            } catch {
                held.rows.removeFirst(batch.count)
                let n = failures.add(1, ordering: .relaxed).newValue
                lose(batch.count, reason: "write_error")
                logger.error("event log write failed (\(batch.count) events lost, failure \(n)): \(error)")
            }
        }
        if held.blocked {
            held.blocked = false
            space?.databaseWritable()
            if space == nil { logger.notice("event log: written again after the disk was full") }
        }
    }

    /// Over `maxHeld`: the oldest go.
    private func dropOverflow(_ held: inout Held) {
        let excess = held.rows.count - maxHeld
        guard excess > 0 else { return }
        held.rows.removeFirst(excess)
        lose(excess, reason: "disk_full")
    }

    /// After the last batch: one more try, then what the disk still refuses is lost.
    private func finish() {
        held.withLock { held in
            guard !held.rows.isEmpty else { return }
            writeHeld(&held)
            guard !held.rows.isEmpty else { return }
            logger.error("event log: \(held.rows.count) events lost at exit: the disk is still full")
            lose(held.rows.count, reason: "disk_full")
            held.rows.removeAll()
        }
    }

    private func lose(_ count: Int, reason: String) {
        lost.add(count, ordering: .relaxed)
        metrics?.eventsLost(count, reason: reason)
    }

    /// Writes what is buffered and ends the thread. Blocks until done.
    public func stopAndFlush() { queue.stopAndDrain() }

    public func run() async throws { await queue.runUntilShutdown() }
}

/// A weak reference for callbacks that would otherwise retain their owner.
final class WeakBox<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
}
