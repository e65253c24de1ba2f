import Foundation
import Logging

/// Fans every published event out to the plugin workers that want it.
/// publish() never runs plugin code: it filters, applies the cooldown and enqueues.
/// Frames are shared by reference: no plugin gets its own copy of the pixels.
public final class Dispatcher: Sendable {
    public let workers: [PluginWorker]

    public init(workers: [PluginWorker]) {
        self.workers = workers
    }

    public func publish(_ event: Event) {
        for worker in workers where worker.wants(event) {
            worker.offer(event)
        }
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
        let deadline = monotonicNanos() + Int64(settleSeconds * 1e9)
        while workers.contains(where: { !$0.isIdle }), monotonicNanos() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await withTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { await worker.drainAndStop() } }
        }
    }

    public func drainBlocking(settleSeconds: Double = 5) {
        let deadline = monotonicNanos() + Int64(settleSeconds * 1e9)
        while workers.contains(where: { !$0.isIdle }), monotonicNanos() < deadline { usleep(10_000) }
        workers.forEach { $0.queue.close() }
        workers.forEach { $0.drainAndStopBlocking() }
    }

    public var counters: [(id: String, counters: PluginCounters)] {
        workers.map { ($0.id, $0.counters) }
    }
}
