import Foundation
import PluginAPI

/// What a PluginWorker calls, always from its own thread: the plugin instance itself
/// (PluginInstance, `isolation: in_process`) or a child runner holding it
/// (IsolatedPlugin, `isolation: process`). The worker's queue, cooldown and counters are
/// the same for both.
protocol PluginEndpoint: AnyObject, Sendable {
    /// Called first, on the worker thread.
    func bindWorkerThread()
    /// The plugin's create, once. On failure nothing else is called.
    func create(configJSON: String) throws(PluginLoadError)
    func deliver(_ event: Event) -> PluginCallOutcome
    /// The plugin's destroy, once, after the last deliver.
    func destroy()
    /// Runner health (all zero in process).
    var health: RunnerHealth { get }
    /// Lets a plugin that failed (too many crashes) start again: enabling it through the API.
    func reenable()
    /// New settings of the same plugin (plugins.yaml reloaded), for what the endpoint itself
    /// enforces: an isolated plugin's timeout, memory limit and restart policy.
    func apply(_ settings: PluginSettings)
}

/// How one delivery went.
enum PluginCallOutcome: Equatable {
    /// on_event returned this status.
    case returned(Int32)
    /// The call ended without a status (the runner died or was killed during it, or the event
    /// could not be handed over): why. The event is lost and counted as an error.
    case failed(String)
    /// Not handed to the plugin at all: its runner is down (restarting, or failed).
    case notDelivered

    /// Why the call counts as an error, or nil when it does not.
    var failure: String? {
        switch self {
        case let .returned(status): status == OCCUR_OK ? nil : "on_event returned \(status) (\(statusName(status)))"
        case let .failed(why): why
        case .notDelivered: nil
        }
    }
}

/// What happened to an isolated plugin's runner processes.
public struct RunnerHealth: Sendable, Equatable {
    /// Runners that died (signal or exit) or were killed (stalled, over `memory_limit_mb`).
    public var crashes: UInt64 = 0
    /// Runners started again after a crash.
    public var restarts: UInt64 = 0
    /// Runners killed because a call ran past `timeout`.
    public var stallKills: UInt64 = 0
    /// Too many crashes within `crash_window`: no more restarts until the plugin is enabled again.
    public var failed = false
    /// The last crash, as logged: "SIGSEGV", "exit status 3", "stalled: on_event ran past its 5 s timeout".
    public var lastCrash: String? = nil

    public init() {}
}

extension PluginInstance: PluginEndpoint {
    func deliver(_ event: Event) -> PluginCallOutcome { .returned(callOnEvent(event)) }
    var health: RunnerHealth { RunnerHealth() }
    func reenable() {}
    func apply(_ settings: PluginSettings) {}
}
