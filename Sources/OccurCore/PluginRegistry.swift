import Foundation

/// plugins.yaml: which plugins run, and how events reach each of them.
public struct PluginRegistry: Sendable {
    /// Where operators drop lib*.so files. Relative to plugins.yaml. Default `./plugins`.
    public var pluginsDir: String
    public var plugins: [PluginSettings]
    public var file: String

    public init(pluginsDir: String, plugins: [PluginSettings], file: String = "plugins.yaml") {
        self.pluginsDir = pluginsDir
        self.plugins = plugins
        self.file = file
    }
}

public enum OverflowPolicy: String, Sendable, CaseIterable {
    /// Evict the oldest queued event to make room (freshest data wins). The default.
    case dropOldest = "drop_oldest"
    /// Refuse the new event.
    case dropNewest = "drop_newest"
    /// Make the publisher wait for room: back-pressure onto the camera.
    case block
}

public enum Isolation: String, Sendable, CaseIterable {
    case inProcess = "in_process"
    case process
}

public enum CooldownScope: String, Sendable, CaseIterable {
    case global, camera, track
}

/// One entry under `plugins:`.
public struct PluginSettings: Sendable, Equatable {
    public var id: String
    /// Default false: a listed plugin runs only when enabled.
    public var enabled: Bool = false
    /// File name in plugins_dir (or an absolute path). Default `lib<id>.so`.
    public var library: String
    /// Seconds between deliveries within one scope. Default 0 (every event).
    public var cooldown: Double = 0
    /// Default `track`: the cooldown counts per person; events without a track fall back to the camera.
    public var cooldownScope: CooldownScope = .track
    /// Default 64.
    public var queueCapacity: Int = 64
    /// Default drop_oldest.
    public var overflow: OverflowPolicy = .dropOldest
    /// Event kinds to deliver (narrowing what the plugin asks for). Default: face events.
    public var events: Set<EventKind> = [.faceAppeared, .faceRecognized, .faceUnknown, .faceLeft]
    /// Only these cameras; nil = all.
    public var cameras: Set<String>? = nil
    /// `in_process` (the default: the library runs inside the host) or `process` (inside a child
    /// `occur plugin-runner`, so that a crash or a hang cannot take the host down).
    public var isolation: Isolation = .inProcess
    /// A call to on_event running longer than this many seconds is reported as stalled; an
    /// isolated plugin's runner is then killed and restarted. Default 5.
    public var timeout: Double = 5
    /// Isolated plugins: a crashed runner is restarted after 0.5 s, doubling up to this. Default 30.
    public var restartBackoffMax: Double = 30
    /// Isolated plugins: after this many crashes within `crash_window` seconds the plugin is
    /// marked failed and stays off until enabled again (API, or a plugins.yaml reload). Default 5 in 60.
    public var maxCrashes: Int = 5
    public var crashWindow: Double = 60
    /// Isolated plugins: a runner whose resident memory grows past this many MB is killed and
    /// restarted like a crash (checked after every call). Default none.
    public var memoryLimitMB: Int? = nil
    /// The `config:` mapping, as JSON text, for the plugin's create.
    public var configJSON: String = "{}"
    /// The library's SHA-256, 64 lower-case hex digits (what `sha256sum` prints). When set,
    /// a file with any other hash is refused before it is loaded. Default none.
    public var sha256: String? = nil

    public init(id: String) {
        self.id = id
        self.library = "lib\(id).so"
    }
}

extension PluginRegistry {
    public static func load(contentsOf file: String) throws -> PluginRegistry {
        try PluginRegistry(ConfigNode.load(contentsOf: file))
    }

    public init(_ root: ConfigNode) throws {
        let base = URL(fileURLWithPath: root.file).deletingLastPathComponent().path
        let f = try root.fields()
        pluginsDir = resolvePath(try f.optional("plugins_dir", { try $0.string() }) ?? "./plugins", relativeTo: base)
        plugins = []
        file = root.file
        if let node = f.optional("plugins") {
            for (id, entry) in try node.entries() {
                try validateIdentifier(id, at: entry)
                plugins.append(try PluginSettings(id: id, entry))
            }
        }
        try f.finish()
    }
}

extension PluginSettings {
    init(id: String, _ node: ConfigNode) throws {
        self.init(id: id)
        let f = try node.fields()
        try f.read("enabled", into: &enabled) { try $0.bool() }
        try f.read("library", into: &library) { try $0.string() }
        try f.read("cooldown", into: &cooldown) { try $0.seconds(atLeast: 0) }
        try f.read("cooldown_scope", into: &cooldownScope) {
            CooldownScope(rawValue: try $0.choice(CooldownScope.allCases.map(\.rawValue)))!
        }
        if let queue = f.optional("queue") {
            let q = try queue.fields()
            try q.read("capacity", into: &queueCapacity) { try $0.int(atLeast: 1, atMost: 1_000_000) }
            try q.read("overflow", into: &overflow) {
                OverflowPolicy(rawValue: try $0.choice(OverflowPolicy.allCases.map(\.rawValue)))!
            }
            try q.finish()
        }
        try f.read("events", into: &events) { node in
            Set(try node.list().map { item in
                let name = try item.string()
                guard let kind = EventKind(name: name) else {
                    let known = EventKind.allCases.map(\.name).joined(separator: ", ")
                    throw item.error("unknown event kind '\(name)' (known: \(known))")
                }
                return kind
            })
        }
        if let n = f.optional("cameras") { cameras = Set(try n.stringList()) }
        try f.read("isolation", into: &isolation) { Isolation(rawValue: try $0.choice(Isolation.allCases.map(\.rawValue)))! }
        try f.read("timeout", into: &timeout) { try $0.double(above: 0, atMost: 3600) }
        try f.read("restart_backoff_max", into: &restartBackoffMax) { try $0.double(atLeast: 0.5, atMost: 3600) }
        try f.read("max_crashes", into: &maxCrashes) { try $0.int(atLeast: 1) }
        try f.read("crash_window", into: &crashWindow) { try $0.seconds(above: 0) }
        try f.read("memory_limit_mb", into: &memoryLimitMB) { try $0.int(atLeast: 16) }
        try f.read("sha256", into: &sha256) { node in
            let text = try node.string()
            let hex = text.lowercased()
            guard hex.count == 64, hex.allSatisfy({ "0123456789abcdef".contains($0) }) else {
                throw node.error("expected the library's SHA-256 as 64 hexadecimal digits (as `sha256sum` prints it), "
                                 + "got '\(text)' (\(text.count) characters)")
            }
            return hex
        }
        try f.read("config", into: &configJSON) { node in
            guard case .mapping = node.node else { throw node.error("expected a mapping") }
            let data = try JSONSerialization.data(withJSONObject: try node.jsonValue(),
                                                  options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        }
        try f.finish()
    }
}
