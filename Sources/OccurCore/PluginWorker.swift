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
    public var errors: UInt64 = 0
    public var meanCallMicros: Double = 0
    public var maxCallMicros: Double = 0
    public var queueDepth: Int = 0
    /// Paused through the API (`POST /api/plugins/{id}/disable`): events are not offered.
    public var paused: Bool = false
    /// The last failed call: "on_event returned -3 (OCCUR_ERR_FAILED) for face_appeared #12".
    public var lastError: String? = nil
}

/// One plugin instance on its own thread, fed through a bounded queue.
/// on_event runs only on that thread, serially, as occur_plugin.h promises.
public final class PluginWorker: Sendable {
    public let settings: PluginSettings
    public let library: PluginLibrary
    let instance: PluginInstance
    let queue: EventQueue
    let gate: CooldownGate
    /// OCCUR_EVENT_* bits this worker takes: what the plugin wants ∩ what plugins.yaml allows.
    let kindMask: UInt32
    private let logger: Logger

    private let delivered = Atomic<UInt64>(0)
    private let droppedByCooldown = Atomic<UInt64>(0)
    private let droppedByOverflow = Atomic<UInt64>(0)
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
        self.settings = settings
        self.library = library
        var logger = logger
        logger[metadataKey: "plugin.id"] = "\(settings.id)"
        self.logger = logger
        let context = PluginHostContext(pluginID: settings.id, logger: logger, onEmit: onEmit)
        instance = PluginInstance(library: library, context: context)
        queue = EventQueue(capacity: settings.queueCapacity, policy: settings.overflow)
        gate = CooldownGate(cooldown: settings.cooldown, scope: settings.cooldownScope)
        let allowed = settings.events.reduce(UInt32(0)) { $0 | $1.rawValue }
        kindMask = allowed & library.wantedEvents.reduce(UInt32(0)) { $0 | $1.rawValue }
        let created = Completion()
        let failure = Mutex<PluginLoadError?>(nil)
        let thread = Thread { [self] in
            do throws(PluginLoadError) {
                try instance.create(configJSON: settings.configJSON)
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

    /// Offers an event that passed the filters: cooldown first, then the queue.
    func offer(_ event: Event) {
        guard gate.admit(event) else {
            droppedByCooldown.add(1, ordering: .relaxed)
            return
        }
        inFlight.add(1, ordering: .relaxed)  // before the offer: the worker may take it at once
        switch queue.offer(event) {
        case .accepted: break
        case .acceptedEvictingOldest, .rejected, .closed:
            // Evicting keeps the count (one in, one out); refusing undoes it.
            inFlight.subtract(1, ordering: .relaxed)
            droppedByOverflow.add(1, ordering: .relaxed)
        }
    }

    /// Records every call's duration into `histogram` from now on.
    public func recordCallTimes(into histogram: DurationHistogram) { callHistogram.withLock { $0 = histogram } }

    /// Pauses (true) or resumes delivery. While paused, events are not offered at all: they
    /// count neither as delivered nor as dropped. The library stays loaded.
    public func setPaused(_ value: Bool) { paused.store(value, ordering: .relaxed) }

    func wants(_ event: Event) -> Bool {
        guard kindMask & event.kind.rawValue != 0, !paused.load(ordering: .relaxed) else { return false }
        if let cameras = settings.cameras, !cameras.contains(event.cameraID) { return false }
        if event.kind == .pluginResult, event.sourcePlugin == settings.id { return false }
        return true
    }

    private func run() {
        instance.bindWorkerThread()
        while let event = queue.take() {
            let start = monotonicNanos()
            let status = instance.deliver(event)
            let elapsed = UInt64(max(0, monotonicNanos() - start))
            inFlight.subtract(1, ordering: .relaxed)
            let n = delivered.add(1, ordering: .relaxed).newValue
            callNanosTotal.add(elapsed, ordering: .relaxed)
            callNanosMax.max(elapsed, ordering: .relaxed)
            callHistogram.withLock { $0 }?.recordNanoseconds(Int64(elapsed))
            callSamples.withLock { samples in
                if samples.count < Self.callSampleCapacity { samples.append(elapsed) }
                else { samples[Int(n % UInt64(Self.callSampleCapacity))] = elapsed }
            }
            if status != OCCUR_OK {
                let failures = errors.add(1, ordering: .relaxed).newValue
                lastError.withLock { $0 = "on_event returned \(status) (\(statusName(status))) for \(event.kind.name) #\(event.sequence)" }
                if failures <= 10 || failures.isMultiple(of: 1000) {
                    logger.warning("on_event returned \(status) (\(statusName(status))) for \(event.kind.name) #\(event.sequence); \(failures) errors so far")
                }
            }
        }
        instance.destroy()
        completion.complete()
    }

    /// True when nothing is queued for this plugin and it is not handling an event.
    var isIdle: Bool { inFlight.load(ordering: .relaxed) <= 0 }

    /// Stops taking events, lets the worker finish what is queued, calls destroy, and
    /// returns when the thread has ended.
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
            errors: errors.load(ordering: .relaxed),
            meanCallMicros: n == 0 ? 0 : Double(callNanosTotal.load(ordering: .relaxed)) / Double(n) / 1000,
            maxCallMicros: Double(callNanosMax.load(ordering: .relaxed)) / 1000,
            queueDepth: queue.depth,
            paused: paused.load(ordering: .relaxed),
            lastError: lastError.withLock { $0 })
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
