import Foundation
import Logging
import ServiceLifecycle

/// Everything `occur run` wires together, as services in one ServiceGroup:
/// the event writer (stops last), the snapshot writer, the plugin workers, and the cameras
/// (stop first).
/// SIGINT/SIGTERM, or every camera ending, shuts down in that order: capture stops,
/// plugin queues drain, the event log flushes.
public final class HostRuntime: Sendable {
    public let configuration: HostConfiguration
    public let registry: PluginRegistry
    public let store: EventStore
    public let writer: EventWriter
    public let bus: EventBus
    public let dispatcher: Dispatcher
    public let pluginStatuses: [PluginStatus]
    public let cameras: [CameraPipeline]
    public let gallery: FaceGallery
    public let snapshots: SnapshotStore
    private let logger: Logger
    /// The data directory is this host's alone while it runs.
    private let lock: DataDirectoryLock

    /// Opens the event log and loads the enabled plugins. `onWritten` sees each stored batch.
    public init(configuration: HostConfiguration, registry: PluginRegistry, logger: Logger,
                onWritten: @escaping @Sendable ([Event]) -> Void = { _ in }) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        lock = try DataDirectoryLock(dataDir: configuration.dataDir, purpose: "occur run")
        store = try EventStore(configuration)
        gallery = try FaceGallery(store: store)
        if let faceDB = configuration.recognition.faceDB {
            try Self.enrollFaceDB(faceDB, configuration: configuration, gallery: gallery, logger: logger)
        }
        snapshots = SnapshotStore(dataDir: configuration.dataDir, cooldown: configuration.recognition.snapshotCooldown,
                                  protection: store.protection, logger: logger)
        writer = EventWriter(store: store, configuration: configuration.storage, logger: logger, onWritten: onWritten)
        let bus = EventBus(writer: writer)
        self.bus = bus
        let (workers, statuses) = PluginLoader(registry: registry).start(logger: logger) { id, result, event in
            bus.publishResult(result, from: id, during: event)
        }
        pluginStatuses = statuses
        dispatcher = Dispatcher(workers: workers)
        bus.attach(dispatcher)
        let gallery = self.gallery
        let snapshots = configuration.recognition.snapshots ? self.snapshots : nil
        cameras = configuration.cameras.map {
            CameraPipeline(configuration: $0, host: configuration, gallery: gallery, snapshots: snapshots, bus: bus,
                           logger: logger)
        }
    }

    /// Enrols what is new in the face_db folders before the cameras start.
    static func enrollFaceDB(_ root: String, configuration: HostConfiguration, gallery: FaceGallery,
                             logger: Logger) throws {
        guard FileManager.default.fileExists(atPath: root) else {
            logger.warning("recognition.face_db \(root) does not exist: nothing enrolled from it")
            return
        }
        let reports = try StillImageFaces(configuration: configuration, gallery: gallery, logger: logger)
            .enrollFolders(at: root)
        for report in reports {
            if let problem = report.problem {
                logger.warning("face_db/\(report.name) skipped: \(problem)")
                continue
            }
            for outcome in report.outcomes where !outcome.enrolled { logger.warning("face_db: \(outcome.message)") }
            let added = report.outcomes.filter(\.enrolled).count
            if added > 0 { logger.info("face_db: \(report.name): \(added) images enrolled") }
        }
    }

    /// Runs until every camera has ended (files) or a shutdown signal arrives.
    public func run() async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: writer, serviceName: "event-writer"),
                .init(service: snapshots, serviceName: "snapshots"),
                .init(service: PluginService(dispatcher: dispatcher), serviceName: "plugins"),
                .init(service: CaptureService(cameras: cameras), successTerminationBehavior: .gracefullyShutdownGroup,
                      serviceName: "capture"),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Runs every camera on its own thread; returns when all have ended, or stops them on shutdown.
struct CaptureService: Service {
    let cameras: [CameraPipeline]

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for camera in cameras {
                    group.addTask {
                        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                            let thread = Thread {
                                camera.run()
                                c.resume()
                            }
                            thread.name = "camera.\(camera.configuration.id)"
                            thread.start()
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            cameras.forEach { $0.stop() }
        }
    }
}

/// Keeps plugin workers running until shutdown, then drains their queues.
struct PluginService: Service {
    let dispatcher: Dispatcher

    func run() async throws {
        try? await gracefulShutdown()
        await dispatcher.drain()
    }
}
