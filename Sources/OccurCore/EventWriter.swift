import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Writes events to the EventStore in batches on its own thread, off the capture path.
/// A batch is written when it reaches `batchSize` or `flushInterval` has passed;
/// stopping writes everything still buffered.
public final class EventWriter: Service, @unchecked Sendable {
    private let store: EventStore
    private let configuration: StorageConfiguration
    private let logger: Logger
    /// Called on the writer thread with each batch after it is committed.
    private let onWritten: @Sendable ([Event]) -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var buffer: [Event] = []
    private var closed = false
    private var threadDone = false
    private var started = false
    private let written = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    public init(store: EventStore, configuration: StorageConfiguration, logger: Logger,
                onWritten: @escaping @Sendable ([Event]) -> Void = { _ in }) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.onWritten = onWritten
    }

    public var eventsWritten: Int { written.load(ordering: .relaxed) }

    /// Never blocks on the database: the event joins the buffer.
    public func append(_ event: Event) {
        condition.lock()
        buffer.append(event)
        if buffer.count >= configuration.batchSize { condition.signal() }
        condition.unlock()
    }

    /// Starts the writer thread (idempotent).
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = "event-writer"
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: configuration.flushInterval)
            while buffer.count < configuration.batchSize && !closed {
                if !condition.wait(until: deadline) { break }
            }
            let batch = Array(buffer.prefix(configuration.batchSize))
            buffer.removeFirst(batch.count)
            let finished = closed && buffer.isEmpty
            condition.unlock()
            write(batch)
            if finished { break }
        }
        condition.lock()
        threadDone = true
        condition.broadcast()
        condition.unlock()
    }

    private func write(_ batch: [Event]) {
        guard !batch.isEmpty else { return }
        do {
            try store.append(batch)
            written.add(batch.count, ordering: .relaxed)
            onWritten(batch)
        } catch {
            let n = failures.add(1, ordering: .relaxed).newValue
            logger.error("event log write failed (\(batch.count) events lost, failure \(n)): \(error)")
        }
    }

    /// Writes what is buffered and ends the thread. Blocks until done.
    public func stopAndFlush() {
        condition.lock()
        closed = true
        condition.broadcast()
        if started { while !threadDone { condition.wait() } }
        let leftovers = started ? [] : buffer
        buffer.removeAll()
        condition.unlock()
        write(leftovers)
    }

    public func run() async throws {
        start()
        try? await gracefulShutdown()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                stopAndFlush()
                c.resume()
            }
        }
    }
}
