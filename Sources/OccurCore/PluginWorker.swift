import Foundation
import Logging
import PluginAPI
import Prometheus
import Synchronization

/// A snapshot of one plugin's counters.
public struct PluginCounters: Sendable, Equatable {
    public var delivered: UInt64 = 0
    public var droppedByCooldown: UInt64 = 0
    public var droppedByOverflow: UInt64 = 0
    /// Events still queued at the shutdown deadline, or offered after the queue closed.
    public var droppedAtShutdown: UInt64 = 0
    public var errors: UInt64 = 0
    public var meanCallMicros: Double = 0
    public var maxCallMicros: Double = 0
    public var queueDepth: Int = 0
    /// Paused through the API (`POST /api/plugins/{id}/disable`): events are not offered.
    public var paused: Bool = false
    /// The last failed call: "on_event returned -3 (OCCUR_ERR_FAILED) for face_appeared #12".
    public var lastError: String? = nil
    /// Calls that ran past the plugin's `timeout` (watchdog).
    public var stalls: UInt64 = 0
    /// A call is running past `timeout` right now.
    public var stalled: Bool = false
    /// `isolation: process`: events not delivered because the plugin's runner was down
    /// (restarting after a crash, or failed).
    public var droppedWhileDown: UInt64 = 0
    /// `isolation: process`: runner crashes (signals, exits, kills for stalls or memory),
    /// restarts, and whether the plugin failed (max_crashes in crash_window).
    public var runner = RunnerHealth()
}

/// One plugin instance on its own thread, fed through a bounded queue.
/// on_event runs only on that thread, serially, as occur_plugin.h promises.
public final class PluginWorker: Sendable {
    public let library: PluginLibrary
    /// The plugin instance in this process, or the child runner holding it (isolation: process).
    let endpoint: any PluginEndpoint
    let queue: EventQueue
    private let logger: Logger
    /// What plugins.yaml says about routing (filters, cooldown): replaced whole by `apply`
    /// when plugins.yaml is reloaded, read once per published event.
    private struct Routing {
        var settings: PluginSettings
        var gate: CooldownGate
        /// OCCUR_EVENT_* bits this worker takes: what the plugin wants ∩ what plugins.yaml allows.
        var kindMask: UInt32
    }
    private let routing: Mutex<Routing>
    /// Monotonic time the running on_event call started; 0 between calls (watchdog).
    private let callStartedNanos = Atomic<Int64>(0)
    private let stalled = Atomic<Bool>(false)
    private let stalls = Atomic<UInt64>(0)

    private let delivered = Atomic<UInt64>(0)
    private let droppedByCooldown = Atomic<UInt64>(0)
    private let droppedByOverflow = Atomic<UInt64>(0)
    private let droppedAtShutdown = Atomic<UInt64>(0)
    private let droppedWhileDown = Atomic<UInt64>(0)
    private let errors = Atomic<UInt64>(0)
    private let paused = Atomic<Bool>(false)
    /// Where call times also go (HostMetrics), when set.
    private let callHistogram = Mutex<DurationHistogram?>(nil)
    private let lastError = Mutex<String?>(nil)
    /// Events queued or being handled: 0 when the worker is idle.
    private let inFlight = Atomic<Int>(0)
    private let callNanosTotal = Atomic<UInt64>(0)
    private let callNanosMax = Atomic<UInt64>(0)
    /// The most recent call times (ns), for percentiles: a ring of `callSampleCapacity`.
    private let callSamples = Mutex<[UInt64]>([])
    static let callSampleCapacity = 4096
    /// Set when the worker thread has destroyed the instance and ended.
    private let completion = Completion()

    /// Starts the worker thread, which calls the plugin's `create` and then delivers events.
    /// Returns once `create` has returned (so plugin code never runs on the caller's thread,
    /// which may belong to Swift's cooperative pool); throws when it failed.
    init(library: PluginLibrary, settings: PluginSettings, logger: Logger,
         onEmit: @escaping @Sendable (PluginResult, Event?) -> Void) throws(PluginLoadError) {
        self.library = library
        var logger = logger
        logger[metadataKey: "plugin.id"] = "\(settings.id)"
        self.logger = logger
        let context = PluginHostContext(pluginID: settings.id, logger: logger, onEmit: onEmit)
        endpoint = settings.isolation == .process
            ? IsolatedPlugin(library: library, settings: settings, logger: logger, onEmit: onEmit)
            : PluginInstance(library: library, context: context)
        queue = EventQueue(capacity: settings.queueCapacity, policy: settings.overflow)
        routing = Mutex(Self.routing(settings, library: library))
        let created = Completion()
        let failure = Mutex<PluginLoadError?>(nil)
        let thread = Thread { [self] in
            do throws(PluginLoadError) {
                try endpoint.create(configJSON: settings.configJSON)
            } catch {
                failure.withLock { $0 = error }
                created.complete()
                return
            }
            created.complete()
            run()
        }
        thread.name = "plugin.\(settings.id)"
        thread.start()
        created.waitBlocking()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    public var id: String { settings.id }
    public var settings: PluginSettings { routing.withLock { $0.settings } }
    var kindMask: UInt32 { routing.withLock { $0.kindMask } }

    private static func routing(_ settings: PluginSettings, library: PluginLibrary) -> Routing {
        let allowed = settings.events.reduce(UInt32(0)) { $0 | $1.rawValue }
        return Routing(settings: settings, gate: CooldownGate(cooldown: settings.cooldown, scope: settings.cooldownScope),
                       kindMask: allowed & library.wantedEvents.reduce(UInt32(0)) { $0 | $1.rawValue })
    }

    /// Applies new settings of the same library without re-creating the plugin: filters,
    /// cooldown (its memory starts afresh), queue capacity and overflow policy (a smaller
    /// queue drops its oldest events, counted as overflow), timeout. The caller re-creates
    /// the worker instead for changes to the library, its config, isolation or sha256.
    public func apply(_ new: PluginSettings) {
        routing.withLock { $0 = Self.routing(new, library: library) }
        endpoint.apply(new)
        let dropped = queue.reconfigure(capacity: new.queueCapacity, policy: new.overflow)
        if dropped > 0 {
            inFlight.subtract(dropped, ordering: .relaxed)
            droppedByOverflow.add(UInt64(dropped), ordering: .relaxed)
        }
    }

    /// Settings that `apply` cannot change on a running plugin.
    public static func needsRestart(from old: PluginSettings, to new: PluginSettings) -> Bool {
        old.library != new.library || old.configJSON != new.configJSON || old.isolation != new.isolation
            || old.sha256 != new.sha256
    }

    /// The watchdog's check: a call running longer than `timeout` is reported once as stalled,
    /// and again as recovered when it returns. While stalled, the `block` overflow policy
    /// refuses instead of blocking, so a stuck plugin never holds up the cameras.
    /// Returns how long the current call has run when it has just been found stalled.
    /// Isolated plugins are not checked here: their endpoint kills and restarts a stalled runner.
    func checkStall(now: Int64) -> Double? {
        guard settings.isolation == .inProcess else { return nil }
        let started = callStartedNanos.load(ordering: .relaxed)
        guard started > 0, !stalled.load(ordering: .relaxed) else { return nil }
        let seconds = Double(now - started) / 1e9
        guard seconds > settings.timeout else { return nil }
        stalled.store(true, ordering: .relaxed)
        queue.setBlockingAllowed(false)
        stalls.add(1, ordering: .relaxed)
        logger.warning("plugin stalled: on_event has been running for \(String(format: "%.1f", seconds)) s (timeout \(settings.timeout) s); its queue now overflows by its policy")
        return seconds
    }

    /// Takes `event` if this plugin wants it (kind, camera, not its own result, not paused):
    /// cooldown first, then the queue. One look at the routing settings per event.
    func route(_ event: Event) {
        guard !paused.load(ordering: .relaxed) else { return }
        let gate = routing.withLock { r -> CooldownGate? in
            guard r.kindMask & event.kind.rawValue != 0 else { return nil }
            if let cameras = r.settings.cameras, !cameras.contains(event.cameraID) { return nil }
            if event.kind == .pluginResult, event.sourcePlugin == r.settings.id { return nil }
            return r.gate
        }
        guard let gate else { return }
        guard gate.admit(event) else {
            droppedByCooldown.add(1, ordering: .relaxed)
            return
        }
        inFlight.add(1, ordering: .relaxed)  // before the offer: the worker may take it at once
        switch queue.offer(event) {
        case .accepted: break
        case .acceptedEvictingOldest, .rejected:
            // Evicting keeps the count (one in, one out); refusing undoes it.
            inFlight.subtract(1, ordering: .relaxed)
            droppedByOverflow.add(1, ordering: .relaxed)
        case .closed:
            inFlight.subtract(1, ordering: .relaxed)
            droppedAtShutdown.add(1, ordering: .relaxed)
        }
    }

    /// Records every call's duration into `histogram` from now on.
    public func recordCallTimes(into histogram: DurationHistogram) { callHistogram.withLock { $0 = histogram } }

    /// Pauses (true) or resumes delivery. While paused, events are not offered at all: they
    /// count neither as delivered nor as dropped. The library stays loaded.
    /// Resuming also re-arms an isolated plugin that failed after too many crashes.
    public func setPaused(_ value: Bool) {
        paused.store(value, ordering: .relaxed)
        if !value { endpoint.reenable() }
    }

    private func run() {
        endpoint.bindWorkerThread()
        while let event = queue.take() {
            let start = monotonicNanos()
            callStartedNanos.store(start, ordering: .relaxed)
            let outcome = endpoint.deliver(event)
            if outcome == .notDelivered {  // the runner is down: not a call
                callStartedNanos.store(0, ordering: .relaxed)
                inFlight.subtract(1, ordering: .relaxed)
                droppedWhileDown.add(1, ordering: .relaxed)
                continue
            }
            callStartedNanos.store(0, ordering: .relaxed)
            let elapsed = UInt64(max(0, monotonicNanos() - start))
            if stalled.exchange(false, ordering: .relaxed) {
                queue.setBlockingAllowed(true)
                logger.notice("plugin recovered: the stalled call returned after \(String(format: "%.1f", Double(elapsed) / 1e9)) s")
            }
            inFlight.subtract(1, ordering: .relaxed)
            let n = delivered.add(1, ordering: .relaxed).newValue
            callNanosTotal.add(elapsed, ordering: .relaxed)
            callNanosMax.max(elapsed, ordering: .relaxed)
            callHistogram.withLock { $0 }?.recordNanoseconds(Int64(elapsed))
            callSamples.withLock { samples in
                if samples.count < Self.callSampleCapacity { samples.append(elapsed) }
                else { samples[Int(n % UInt64(Self.callSampleCapacity))] = elapsed }
            }
            if let failure = outcome.failure {
                let failures = errors.add(1, ordering: .relaxed).newValue
                lastError.withLock { $0 = "\(failure) for \(event.kind.name) #\(event.sequence)" }
                if failures <= 10 || failures.isMultiple(of: 1000) {
                    logger.warning("\(failure) for \(event.kind.name) #\(event.sequence); \(failures) errors so far")
                }
            }
        }
        endpoint.destroy()
        completion.complete()
    }

    /// True when nothing is queued for this plugin and it is not handling an event.
    var isIdle: Bool { inFlight.load(ordering: .relaxed) <= 0 }

    /// Stops taking events, lets the worker finish what is queued, calls destroy, and
    /// returns when the thread has ended.
    /// Shutdown at its deadline: no more events, and what is queued is dropped and counted.
    /// The running call, if any, finishes; then destroy is called and the thread ends
    /// (`hasStopped`). Returns how many events were dropped.
    func closeDroppingQueued() -> Int {
        queue.close()
        let dropped = queue.discardAll()
        if dropped > 0 {
            inFlight.subtract(dropped, ordering: .relaxed)
            droppedAtShutdown.add(UInt64(dropped), ordering: .relaxed)
        }
        return dropped
    }

    /// True once destroy has returned and the worker thread has ended.
    var hasStopped: Bool { completion.isComplete }

    func drainAndStop() async {
        queue.close()
        await completion.wait()
    }

    /// Blocking variant for threads outside Swift concurrency (tests, the benchmark).
    func drainAndStopBlocking() {
        queue.close()
        completion.waitBlocking()
    }

    /// Median and 95th percentile of the recent call times, in milliseconds.
    public var callPercentiles: (median: Double, p95: Double, samples: Int) {
        let sorted = callSamples.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return (0, 0, 0) }
        let at = { (q: Double) in Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1e6 }
        return (at(0.5), at(0.95), sorted.count)
    }

    public var counters: PluginCounters {
        let n = delivered.load(ordering: .relaxed)
        return PluginCounters(
            delivered: n,
            droppedByCooldown: droppedByCooldown.load(ordering: .relaxed),
            droppedByOverflow: droppedByOverflow.load(ordering: .relaxed),
            droppedAtShutdown: droppedAtShutdown.load(ordering: .relaxed),
            errors: errors.load(ordering: .relaxed),
            meanCallMicros: n == 0 ? 0 : Double(callNanosTotal.load(ordering: .relaxed)) / Double(n) / 1000,
            maxCallMicros: Double(callNanosMax.load(ordering: .relaxed)) / 1000,
            queueDepth: queue.depth,
            paused: paused.load(ordering: .relaxed),
            lastError: lastError.withLock { $0 },
            stalls: stalls.load(ordering: .relaxed),
            stalled: stalled.load(ordering: .relaxed),
            droppedWhileDown: droppedWhileDown.load(ordering: .relaxed),
            runner: endpoint.health)
    }
}

/// A one-shot completion that both threads and async tasks can wait for,
/// without ever blocking a thread of Swift's cooperative pool.
final class Completion: Sendable {
    private struct State {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let semaphore = DispatchSemaphore(value: 0)

    var isComplete: Bool { state.withLock { $0.done } }

    func complete() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.done = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
        semaphore.signal()
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if !s.done { s.waiters.append(c) }
                return s.done
            }
            if done { c.resume() }
        }
    }

    /// Blocks the calling thread until complete (never call from a Swift task).
    func waitBlocking() {
        semaphore.wait()
        semaphore.signal()  // let any other blocking waiter through too
    }
}
