import Foundation
import Logging
import Synchronization

/// Fans every published event out to the plugin workers that want it.
/// publish() never runs plugin code: it filters, applies the cooldown and enqueues.
/// Frames are shared by reference: no plugin gets its own copy of the pixels.
/// The set of workers can change while events flow (plugins.yaml reloaded): publish() works
/// on the set as it was when the event arrived.
public final class Dispatcher: Sendable {
    private let current: Mutex<[PluginWorker]>

    public init(workers: [PluginWorker]) {
        current = Mutex(workers)
    }

    public var workers: [PluginWorker] { current.withLock { $0 } }

    /// Starts delivering to `worker` (a plugin enabled, or restarted, by a reload).
    public func add(_ worker: PluginWorker) {
        current.withLock { $0.append(worker) }
    }

    /// Stops delivering to the plugin `id` and returns its worker, which the caller drains.
    @discardableResult
    public func remove(id: String) -> PluginWorker? {
        current.withLock { workers in
            guard let index = workers.firstIndex(where: { $0.id == id }) else { return nil }
            return workers.remove(at: index)
        }
    }

    public func publish(_ event: Event) {
        for worker in workers { worker.route(event) }
    }

    /// True when some worker would take events of this kind (lets capture skip building
    /// events nobody wants, such as per-frame events).
    public func anyoneWants(_ kind: EventKind) -> Bool {
        workers.contains { $0.kindMask & kind.rawValue != 0 }
    }

    /// Once capture has stopped, plugins may still emit results to each other: queues stay
    /// open until every worker is idle (or `settleSeconds` pass, for plugins that answer each
    /// other for ever), then close, so no result in flight is lost.
    public func drain(settleSeconds: Double = 5) async {
        let workers = self.workers
        let deadline = monotonicNanos() + Int64(settleSeconds * 1e9)
        while workers.contains(where: { !$0.isIdle }), monotonicNanos() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await withTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { await worker.drainAndStop() } }
        }
    }

    public func drainBlocking(settleSeconds: Double = 5) {
        let workers = self.workers
        let deadline = monotonicNanos() + Int64(settleSeconds * 1e9)
        while workers.contains(where: { !$0.isIdle }), monotonicNanos() < deadline { usleep(10_000) }
        workers.forEach { $0.queue.close() }
        workers.forEach { $0.drainAndStopBlocking() }
    }

    public var counters: [(id: String, counters: PluginCounters)] {
        workers.map { ($0.id, $0.counters) }
    }
}
