import Foundation
import Logging
import Synchronization

/// How `occur run` ends: set when SIGTERM or SIGINT stops the cameras, clear when every camera
/// ended by itself (files). Only a signalled shutdown is held to `shutdown_timeout`; files
/// that end are worked through completely.
final class ShutdownCause: Sendable {
    private let signalled = Atomic<Bool>(false)

    func markSignalled() { signalled.store(true, ordering: .relaxed) }

    var wasSignalled: Bool { signalled.load(ordering: .relaxed) }
}

extension Dispatcher {
    /// A signalled shutdown, once the cameras have stopped. Plugins work through their queues
    /// (and answer each other) until every worker is idle or `deadline` seconds have passed.
    /// Then the queues close and what is still queued is dropped and counted
    /// (PluginCounters.droppedAtShutdown); each worker gets twice its plugin's `timeout` to
    /// return from its running call and from destroy. A plugin still busy after that is left
    /// behind: the host exits without waiting for it. Returns the ids of the plugins left behind.
    public func stop(deadline: Double, logger: Logger) async -> [String] {
        let workers = self.workers
        let end = monotonicNanos() + Int64(deadline * 1e9)
        while workers.contains(where: { !$0.isIdle }), monotonicNanos() < end {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for worker in workers {
            let dropped = worker.closeDroppingQueued()
            if dropped > 0 {
                logger.warning("shutdown: \(dropped) events still queued after \(deadline) s dropped",
                               metadata: ["plugin.id": "\(worker.id)"])
            }
        }
        // Isolated plugins stop their runner in destroy (IsolatedPlugin.destroy: destroy in the
        // child, its exit, a kill after `timeout`), so this wait covers the runners too.
        let waitStart = monotonicNanos()
        var abandoned: [String] = []
        for worker in workers {
            let giveUp = waitStart + Int64(2 * worker.settings.timeout * 1e9)
            while !worker.hasStopped, monotonicNanos() < giveUp {
                try? await Task.sleep(for: .milliseconds(10))
            }
            if !worker.hasStopped {
                abandoned.append(worker.id)
                logger.error("shutdown: the plugin has not returned from on_event or destroy within twice its timeout (\(worker.settings.timeout) s); exiting without it",
                             metadata: ["plugin.id": "\(worker.id)"])
            }
        }
        return abandoned
    }
}
