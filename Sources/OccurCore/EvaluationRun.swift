import Foundation
import Logging
import Synchronization

/// Bad input to `occur eval`: what is wrong, and where.
public struct EvaluationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs the `occur run` pipeline — HostRuntime with its detector, quality gate, tracker,
/// recogniser, dispatcher and plugins, from the same occur.yaml and plugins.yaml — over the
/// sources of an evaluation, and returns every event it logged. Nothing is re-implemented:
/// only what the evaluation must own is changed, and that is listed in `adjustments`:
/// the data directory is a new temporary one (removed afterwards, so the operator's database
/// and gallery are never read or written), the cameras are the evaluation's, `face_db` is the
/// evaluation's training folder (or none), and the HTTP API and snapshots are off.
public struct EvaluationRun: Sendable {
    public var host: HostConfiguration
    public var registry: PluginRegistry
    /// What this run changed in the plugin registry, for the report (e.g. "mask: enabled for the evaluation").
    public private(set) var adjustments: [String] = []
    /// Plugins the evaluation cannot do without (a refusal stops it; other plugins' refusals
    /// are logged and the run goes on, as in `occur run`).
    public private(set) var required: Set<String> = []

    public init(host: HostConfiguration, registry: PluginRegistry, cameras: [CameraConfiguration],
                faceDB: String? = nil) {
        var host = host
        host.cameras = cameras
        host.recognition.faceDB = faceDB
        host.recognition.snapshots = false
        host.api.enabled = false
        host.api.adminTokenFile = nil
        host.retention = RetentionConfiguration()
        host.database = "occur.db"
        self.host = host
        self.registry = registry
    }

    /// Makes sure plugin `id` runs and sees every face: enabled (with its plugins.yaml
    /// settings, or the defaults when plugins.yaml has no entry), taking `events`, with no
    /// cooldown and a blocking queue, so that no face goes unanswered for throughput reasons.
    public mutating func requirePlugin(_ id: String, events: Set<EventKind>) {
        var settings = registry.plugins.first { $0.id == id } ?? PluginSettings(id: id)
        if !registry.plugins.contains(where: { $0.id == id }) {
            adjustments.append("\(id): not in \(registry.file); run with its defaults (library lib\(id).so)")
        } else if !settings.enabled {
            adjustments.append("\(id): disabled in \(registry.file); enabled for this evaluation")
        }
        if settings.cooldown != 0 || settings.overflow != .block || !events.isSubset(of: settings.events) {
            adjustments.append("\(id): every face is delivered (cooldown 0, queue overflow block, events "
                + events.map(\.name).sorted().joined(separator: ", ") + ")")
        }
        required.insert(id)
        settings.enabled = true
        settings.cooldown = 0
        settings.overflow = .block
        settings.events.formUnion(events)
        registry.plugins.removeAll { $0.id == id }
        registry.plugins.append(settings)
    }

    /// Changes a host setting for the evaluation, and says so in `adjustments`.
    public mutating func adjust(_ note: String, _ change: (inout HostConfiguration) -> Void) {
        change(&host)
        adjustments.append(note)
    }

    /// The library file plugin `id` is loaded from.
    public func libraryPath(of id: String) -> String? {
        registry.plugins.first { $0.id == id }.map { PluginLoader(registry: registry).path(for: $0) }
    }

    /// What a run logged, and whom it enrolled from `face_db`.
    public struct Output: Sendable {
        /// Every logged event in the order it was written.
        public var events: [StoredEvent]
        /// Person -> embeddings enrolled from the training folder before the cameras started.
        public var enrolled: [String: Int]
    }

    /// Runs every camera to its end and returns what was logged.
    /// `progress` is called about every two seconds with the frames read so far per camera.
    public func run(logger: Logger, progress: (@Sendable ([String: Int64]) -> Void)? = nil) async throws -> Output {
        let dataDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("occur-eval-\(UUID().uuidString.prefix(8))").path
        var host = self.host
        host.dataDir = dataDir
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let events = Mutex<[StoredEvent]>([])
        let runtime = try HostRuntime(configuration: host, registry: registry, logger: logger) { batch in
            events.withLock { $0 += batch }
        }
        for status in runtime.pluginStatuses {
            if case let .refused(error) = status.state, let id = status.id, required.contains(id) {
                throw EvaluationError("plugin \(id) cannot be loaded: \(error)")
            }
        }
        var enrolled: [String: Int] = [:]
        for identity in try runtime.gallery.identities(kind: .person) {
            enrolled[identity.name] = identity.embeddings.values.reduce(0, +)
        }
        let cameras = runtime.cameras
        let reporter = progress.map { report in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(2))
                    if Task.isCancelled { break }
                    report(Dictionary(uniqueKeysWithValues: cameras.map { ($0.configuration.id, $0.counters.framesRead) }))
                }
            }
        }
        defer { reporter?.cancel() }
        try await runtime.run()
        for camera in cameras {
            if let error = camera.counters.error { throw EvaluationError("camera \(camera.configuration.id): \(error)") }
        }
        return Output(events: events.withLock { $0 }, enrolled: enrolled)
    }
}

extension StoredEvent {
    /// The payload as a JSON object (empty when it is not one).
    var payloadObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] ?? [:]
    }
}

/// A directory's images as an evaluation lists them: what an image-directory camera shows.
func evaluationImages(in directory: String, role: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw EvaluationError("\(directory): no such directory (\(role))")
    }
    let images = try SourceKind.imageFiles(inDirectory: directory)
    guard !images.isEmpty else {
        throw EvaluationError("\(directory): no images in it (\(role); looked for "
            + SourceKind.imageExtensions.sorted().joined(separator: ", ") + ")")
    }
    return images
}
