import Foundation

/// A bounded FIFO of events for one plugin worker, with the plugin's overflow policy.
/// Many publishers (camera threads), one consumer (the worker thread).
final class EventQueue: @unchecked Sendable {
    enum Offer: Equatable {
        case accepted
        /// Accepted after evicting the oldest queued event (drop_oldest).
        case acceptedEvictingOldest
        /// Not queued: full under drop_newest.
        case rejected
        /// Not queued: the queue is closed.
        case closed
    }

    let capacity: Int
    let policy: OverflowPolicy
    // All state below is guarded by `condition`.
    private let condition = NSCondition()
    private var ring: [Event?]
    private var head = 0
    private var count = 0
    private var isClosed = false
    private var consumerWaiting = false
    private var producersWaiting = 0

    init(capacity: Int, policy: OverflowPolicy) {
        precondition(capacity > 0, "queue capacity must be positive")
        self.capacity = capacity
        self.policy = policy
        ring = Array(repeating: nil, count: capacity)
    }

    var depth: Int {
        condition.lock(); defer { condition.unlock() }
        return count
    }

    func offer(_ event: Event) -> Offer {
        var evicted: Event?  // released after unlocking
        condition.lock()
        defer {
            condition.unlock()
            _ = evicted
        }
        if isClosed { return .closed }
        var result = Offer.accepted
        if count == capacity {
            switch policy {
            case .dropNewest:
                return .rejected
            case .dropOldest:
                evicted = ring[head]
                ring[head] = nil
                head = (head + 1) % capacity
                count -= 1
                result = .acceptedEvictingOldest
            case .block:
                producersWaiting += 1
                while count == capacity && !isClosed { condition.wait() }
                producersWaiting -= 1
                if isClosed { return .closed }
            }
        }
        ring[(head + count) % capacity] = event
        count += 1
        if consumerWaiting { condition.broadcast() }
        return result
    }

    /// The next event; waits while the queue is empty. Nil once closed and drained.
    func take() -> Event? {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 {
            if isClosed { return nil }
            consumerWaiting = true
            condition.wait()
            consumerWaiting = false
        }
        let event = ring[head]
        ring[head] = nil
        head = (head + 1) % capacity
        count -= 1
        if producersWaiting > 0 { condition.broadcast() }
        return event
    }

    /// No more offers; the consumer drains what is queued, then take() returns nil.
    func close() {
        condition.lock()
        isClosed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Drops everything still queued; returns how many.
    func discardAll() -> Int {
        condition.lock()
        let dropped = count
        ring = Array(repeating: nil, count: capacity)
        head = 0
        count = 0
        condition.broadcast()
        condition.unlock()
        return dropped
    }
}
