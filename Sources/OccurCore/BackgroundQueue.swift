import Foundation
import ServiceLifecycle

/// Work handed from any thread to one background thread of its own, in batches: a batch is
/// handled when it holds `batchSize` items or the oldest has waited `maxWait` seconds.
/// Stopping hands over everything still queued before the thread ends. The event writer
/// and the snapshot store are built on it.
final class BackgroundQueue<Item>: @unchecked Sendable {
    private let name: String
    private let batchSize: Int
    private let maxWait: Double
    private let handle: ([Item]) -> Void
    private let idle: () -> Void
    private let finish: () -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var items: [Item] = []
    private var closed = false
    private var started = false
    private var threadDone = false

    /// `handle` runs on the background thread only, one batch at a time; `idle` after each
    /// wait of `maxWait` that brought nothing; `finish` after the last batch (again should it
    /// have appended more).
    init(name: String, batchSize: Int, maxWait: Double, idle: @escaping () -> Void = {},
         finish: @escaping () -> Void = {}, handle: @escaping ([Item]) -> Void) {
        self.name = name
        self.batchSize = max(1, batchSize)
        self.maxWait = maxWait
        self.idle = idle
        self.finish = finish
        self.handle = handle
    }

    /// Never blocks on the work itself: the item joins the queue.
    func append(_ item: Item) {
        condition.lock()
        items.append(item)
        if items.count >= batchSize { condition.signal() }
        condition.unlock()
    }

    /// Starts the thread (idempotent).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: maxWait)
            while items.count < batchSize && !closed {
                if !condition.wait(until: deadline) { break }
            }
            let batch = Array(items.prefix(batchSize))
            items.removeFirst(batch.count)
            let finished = closed && items.isEmpty
            condition.unlock()
            if !batch.isEmpty { handle(batch) } else if !finished { idle() }
            guard finished else { continue }
            finish()
            // What `finish` itself appended (the writer's last report) is handled too.
            condition.lock()
            let more = !items.isEmpty
            condition.unlock()
            if !more { break }
        }
        condition.lock()
        threadDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Hands over everything queued and ends the thread. Blocks until done.
    func stopAndDrain() {
        condition.lock()
        closed = true
        condition.broadcast()
        if started { while !threadDone { condition.wait() } }
        let wasStarted = started
        let leftovers = started ? [] : items
        items.removeAll()
        condition.unlock()
        if !wasStarted {
            if !leftovers.isEmpty { handle(leftovers) }
            finish()
        }
    }

    /// A Service's run(): work until graceful shutdown, then drain (off Swift's pool).
    func runUntilShutdown() async {
        start()
        try? await gracefulShutdown()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                stopAndDrain()
                c.resume()
            }
        }
    }
}
