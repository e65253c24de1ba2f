import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Applies edits to plugins.yaml while the host runs, and watches running calls.
///
/// Reload: the file is checked once a second (its inode, size and modification time) and on
/// SIGHUP. A valid new version is applied plugin by plugin without stopping the cameras:
/// newly enabled plugins are loaded and created; disabled ones stop receiving events at once
/// and are drained and destroyed in the background; filter, cooldown, queue and timeout
/// changes (and an isolated plugin's restart policy and memory limit) are applied to the
/// running plugin, which keeps its state; a change of library, config, isolation or sha256
/// re-creates the plugin. An invalid
/// version is rejected with its file:line:column and key path, and the running configuration
/// stays in force. (An in-process library whose file was replaced is not reloaded: the
/// process keeps the code it mapped. Isolated plugins get the new file with their new runner.)
///
/// Watchdog: every 100 ms each worker's running call is checked against its `timeout`
/// (PluginWorker.checkStall); a stall is logged and stored as a `plugin_stalled` event.
public final class PluginReloader: Service, Sendable {
    public struct Report: Sendable, Equatable {
        /// One line per plugin that changed: "pose: enabled", "mask: cooldown 1.0 → 2.0".
        public var changes: [String] = []
        /// The error that kept the old configuration, if the file was invalid.
        public var rejected: String?
    }

    private struct State {
        var registry: PluginRegistry
        var statuses: [PluginStatus]
        var fingerprint: [Int]
        /// Library files of running isolated plugins, as last seen: a new version restarts the runner.
        var libraries: [String: [Int]] = [:]
    }

    public let file: String
    private let dispatcher: Dispatcher
    private let logger: Logger
    private let onEmit: @Sendable (String, PluginResult, Event?) -> Void
    private let onRefused: @Sendable (PluginStatus) -> Void
    /// Called for every worker this reloader starts (metrics hooks).
    private let prepare: @Sendable (PluginWorker) -> Void
    /// Stores a host event (plugin_stalled) in the event log.
    private let report: @Sendable (_ plugin: String, _ kind: String, _ payload: String) -> Void
    private let state: Mutex<State>
    /// One reload at a time (the poll and SIGHUP may coincide).
    private let reloading = Mutex<Void>(())

    public init(registry: PluginRegistry, statuses: [PluginStatus], dispatcher: Dispatcher, logger: Logger,
                onEmit: @escaping @Sendable (String, PluginResult, Event?) -> Void,
                onRefused: @escaping @Sendable (PluginStatus) -> Void = { _ in },
                prepare: @escaping @Sendable (PluginWorker) -> Void = { _ in },
                report: @escaping @Sendable (String, String, String) -> Void = { _, _, _ in }) {
        file = registry.file
        self.dispatcher = dispatcher
        self.logger = logger
        self.onEmit = onEmit
        self.onRefused = onRefused
        self.prepare = prepare
        self.report = report
        state = Mutex(State(registry: registry, statuses: statuses, fingerprint: Self.fingerprint(registry.file)))
    }

    /// Every plugin's state as of the last (re)load.
    public var statuses: [PluginStatus] { state.withLock { $0.statuses } }
    public var registry: PluginRegistry { state.withLock { $0.registry } }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { [self] in
            logger.notice("SIGHUP: reloading \(file)")
            _ = reload()
        }
        hangup.resume()
        defer { hangup.cancel() }
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            watch(now: monotonicNanos())
            tick += 1
            if tick % 10 == 0 {
                if Self.fingerprint(file) != state.withLock({ $0.fingerprint }) { _ = reload() }
                else { _ = reloading.withLock { _ in restartReplacedLibraries() } }
            }
        }
    }

    /// The watchdog's pass over the running calls.
    func watch(now: Int64) {
        for worker in dispatcher.workers {
            if let seconds = worker.checkStall(now: now) {
                report(worker.id, "plugin_stalled",
                       String(format: #"{"plugin": "%@", "running_seconds": %.2f, "timeout": %.2f}"#,
                              worker.id, seconds, worker.settings.timeout))
            }
        }
    }

    /// Reads plugins.yaml again and applies what changed. Safe to call from any thread.
    @discardableResult
    public func reload() -> Report {
        reloading.withLock { _ in apply() }
    }

    private func apply() -> Report {
        let fingerprint = Self.fingerprint(file)
        let new: PluginRegistry
        do { new = try PluginRegistry.load(contentsOf: file) } catch {
            state.withLock { $0.fingerprint = fingerprint }   // reported once per edit
            logger.error("plugins.yaml not reloaded: \(error); the running configuration stays in force")
            return Report(rejected: "\(error)")
        }
        let old = state.withLock { $0.registry }
        var report = Report()
        var statuses = PluginLoader(registry: new).scan()
        let running = Dictionary(dispatcher.workers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ids = Set(old.plugins.map(\.id)).union(new.plugins.map(\.id)).sorted()
        for id in ids {
            let settings = new.plugins.first { $0.id == id }
            let worker = running[id]
            let wanted = settings?.enabled == true
            switch (worker, wanted) {
            case (let worker?, false):
                stop(dispatcher.remove(id: id) ?? worker)
                report.changes.append("\(id): disabled")
            case (nil, true):
                let outcome = start(settings!, in: new)
                statuses = statuses.map { $0.id == id ? outcome : $0 }
                report.changes.append("\(id): " + (outcome.state == .loaded ? "enabled" : outcome.stateText))
            case (let worker?, true):
                let before = worker.settings
                guard before != settings! || old.pluginsDir != new.pluginsDir else { continue }
                if PluginWorker.needsRestart(from: before, to: settings!) || old.pluginsDir != new.pluginsDir {
                    stop(dispatcher.remove(id: id) ?? worker)
                    let outcome = start(settings!, in: new)
                    statuses = statuses.map { $0.id == id ? outcome : $0 }
                    report.changes.append("\(id): restarted (" + (outcome.state == .loaded ? "loaded" : outcome.stateText) + ")")
                } else {
                    worker.apply(settings!)
                    report.changes.append("\(id): " + Self.describe(from: before, to: settings!))
                }
            case (nil, false):
                continue
            }
        }
        state.withLock { $0 = State(registry: new, statuses: statuses, fingerprint: fingerprint) }
        logger.notice("plugins.yaml reloaded: \(report.changes.isEmpty ? "nothing changed" : report.changes.joined(separator: "; "))")
        return report
    }

    /// Restarts each isolated plugin whose library file changed since it started (a new build
    /// dropped into plugins_dir): its new runner loads the new file. In-process libraries are
    /// not restarted: the host keeps the code it mapped.
    @discardableResult
    public func restartReplacedLibraries() -> [String] {
        let registry = self.registry
        var restarted: [String] = []
        for worker in dispatcher.workers where worker.settings.isolation == .process {
            let path = PluginLoader(registry: registry).path(for: worker.settings)
            let now = Self.fingerprint(path)
            let seen = state.withLock { state in
                let seen = state.libraries[worker.id]
                state.libraries[worker.id] = now
                return seen
            }
            guard let seen, seen != now, !now.isEmpty else { continue }
            stop(dispatcher.remove(id: worker.id) ?? worker)
            let outcome = start(worker.settings, in: registry)
            state.withLock { $0.statuses = $0.statuses.map { $0.id == worker.id ? outcome : $0 } }
            logger.notice("plugin \(worker.id): \(path) changed; runner restarted with the new file (\(outcome.stateText))")
            restarted.append(worker.id)
        }
        return restarted
    }

    /// Loads and creates one plugin and starts delivering to it; its status either way.
    private func start(_ settings: PluginSettings, in registry: PluginRegistry) -> PluginStatus {
        let single = PluginRegistry(pluginsDir: registry.pluginsDir, plugins: [settings], file: registry.file)
        let (workers, statuses) = PluginLoader(registry: single).start(logger: logger, onRefused: onRefused, onEmit: onEmit)
        for worker in workers {
            prepare(worker)
            dispatcher.add(worker)
        }
        return statuses.first { $0.id == settings.id } ?? PluginStatus(id: settings.id, path: settings.library, state: .disabled)
    }

    /// Drains and destroys a worker that no longer receives events, off the caller's thread.
    private func stop(_ worker: PluginWorker) {
        let thread = Thread { worker.drainAndStopBlocking() }
        thread.name = "plugin.\(worker.id).stop"
        thread.start()
    }

    static func describe(from a: PluginSettings, to b: PluginSettings) -> String {
        var parts: [String] = []
        func change<T: Equatable>(_ name: String, _ x: T, _ y: T, _ show: (T) -> String = { "\($0)" }) {
            if x != y { parts.append("\(name) \(show(x)) → \(show(y))") }
        }
        change("cooldown", a.cooldown, b.cooldown)
        change("cooldown_scope", a.cooldownScope.rawValue, b.cooldownScope.rawValue)
        change("queue.capacity", a.queueCapacity, b.queueCapacity)
        change("queue.overflow", a.overflow.rawValue, b.overflow.rawValue)
        change("events", a.events, b.events) { $0.map(\.name).sorted().joined(separator: ",") }
        change("cameras", a.cameras, b.cameras) { $0.map { $0.sorted().joined(separator: ",") } ?? "all" }
        change("timeout", a.timeout, b.timeout)
        return parts.isEmpty ? "unchanged" : parts.joined(separator: ", ")
    }

    /// Identity of the file's current version: inode, size, modification time (ns).
    static func fingerprint(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }
}
