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

    // All state below is guarded by `condition`.
    private(set) var capacity: Int
    private(set) var policy: OverflowPolicy
    /// False while the consumer is stalled (watchdog): `block` then refuses instead of waiting.
    private var blockingAllowed = true
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
                if !blockingAllowed { return .rejected }
                producersWaiting += 1
                while count == capacity && !isClosed && blockingAllowed { condition.wait() }
                producersWaiting -= 1
                if isClosed { return .closed }
                if count == capacity { return .rejected }   // the consumer stalled meanwhile
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

    /// Lets `block` wait for room (true) or makes it refuse at once (false: the consumer is
    /// stalled), waking producers already waiting.
    func setBlockingAllowed(_ allowed: Bool) {
        condition.lock()
        blockingAllowed = allowed
        condition.broadcast()
        condition.unlock()
    }

    /// New capacity and policy (plugins.yaml reloaded). When fewer events fit, the oldest
    /// queued ones are dropped; returns how many.
    func reconfigure(capacity newCapacity: Int, policy newPolicy: OverflowPolicy) -> Int {
        precondition(newCapacity > 0, "queue capacity must be positive")
        var dropped: [Event?] = []   // released after unlocking
        condition.lock()
        defer { condition.unlock(); _ = dropped }
        policy = newPolicy
        guard newCapacity != capacity else { return 0 }
        var kept: [Event?] = []
        for i in 0..<count { kept.append(ring[(head + i) % capacity]) }
        let excess = max(0, kept.count - newCapacity)
        dropped = Array(kept.prefix(excess))
        kept.removeFirst(excess)
        ring = kept + Array(repeating: nil, count: newCapacity - kept.count)
        head = 0
        count = kept.count
        capacity = newCapacity
        condition.broadcast()
        return excess
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
