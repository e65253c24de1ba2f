import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Everything `occur run` wires together, as services in one ServiceGroup:
/// the event writer (stops last), the free-space watch, the snapshot writer, the plugin
/// workers, and the cameras (stop first).
/// SIGINT/SIGTERM, or every camera ending, shuts down in that order: capture stops,
/// plugin queues drain (after a signal, for at most `shutdown_timeout`), the event log flushes.
public final class HostRuntime: Sendable {
    public let configuration: HostConfiguration
    public let registry: PluginRegistry
    public let store: EventStore
    public let writer: EventWriter
    public let bus: EventBus
    public let dispatcher: Dispatcher
    /// Applies plugins.yaml edits while running, and watches for stalled calls.
    public let reloader: PluginReloader
    public var pluginStatuses: [PluginStatus] { reloader.statuses }
    public let cameras: [CameraPipeline]
    public let gallery: FaceGallery
    public let snapshots: SnapshotStore
    /// The disk-full policy: snapshots stop first, events are held (StorageSpace).
    public let space: StorageSpace
    private let logger: Logger
    /// The data directory is this host's alone while it runs.
    private let lock: DataDirectoryLock

    /// Opens the event log and loads the enabled plugins. `onWritten` sees each stored batch.
    public init(configuration: HostConfiguration, registry: PluginRegistry, logger: Logger,
                onWritten: @escaping @Sendable ([StoredEvent]) -> Void = { _ in }) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        lock = try DataDirectoryLock(dataDir: configuration.dataDir, purpose: "occur run")
        let loosened = try PrivateFiles.tighten(configuration.dataDir)
        if !loosened.isEmpty {
            let shown = loosened.prefix(5).map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
            logger.notice("data dir \(configuration.dataDir): \(loosened.count) entries were readable by others and are now owner-only (directories 0700, files 0600): \(shown)\(loosened.count > 5 ? ", ..." : "")")
        }
        store = try EventStore(configuration)
        gallery = try FaceGallery(store: store)
        if let faceDB = configuration.recognition.faceDB {
            try Self.enrollFaceDB(faceDB, configuration: configuration, gallery: gallery, logger: logger)
        }
        let hostLog = WeakBox<EventBus>()
        space = StorageSpace(dataDir: configuration.dataDir, minFreeBytes: configuration.storage.minFreeBytes,
                             metrics: metrics, logger: logger, report: { kind, payload in
            hostLog.value?.logHostEvent(kind: kind, cameraID: "", payload: payload)
        })
        snapshots = SnapshotStore(dataDir: configuration.dataDir, cooldown: configuration.recognition.snapshotCooldown,
                                  protection: store.protection, space: space, metrics: metrics, logger: logger)
        writer = EventWriter(store: store, configuration: configuration.storage, metrics: metrics, space: space,
                             logger: logger, onWritten: onWritten)
        let bus = EventBus(writer: writer)
        self.bus = bus
        hostLog.value = bus
        let store = self.store
        let auditRefusal: @Sendable (PluginStatus) -> Void = { status in
            guard case let .refused(error) = status.state, error.isIntegrityFailure else { return }
            try? AuditLog(store: store).record(actor: "host", action: "plugins.load", target: status.id ?? status.path,
                                               result: "refused", detail: "\(error)")
        }
        let emit: @Sendable (String, PluginResult, Event?) -> Void = { id, result, event in
            bus.publishResult(result, from: id, during: event)
        }
        let (workers, statuses) = PluginLoader(registry: registry).start(logger: logger, onRefused: auditRefusal, onEmit: emit)
        let dispatcher = Dispatcher(workers: workers)
        self.dispatcher = dispatcher
        bus.attach(dispatcher)
        let gallery = self.gallery
        let snapshots = configuration.recognition.snapshots ? self.snapshots : nil
        let metrics = self.metrics
        cameras = configuration.cameras.map {
            CameraPipeline(configuration: $0, host: configuration, gallery: gallery, snapshots: snapshots, bus: bus,
                           metrics: metrics, logger: logger)
        }
        for worker in workers { worker.recordCallTimes(into: metrics.pluginCall(worker.id)) }
        let reloader = PluginReloader(
            registry: registry, statuses: statuses, dispatcher: dispatcher, logger: logger, onEmit: emit, onRefused: auditRefusal,
            prepare: { $0.recordCallTimes(into: metrics.pluginCall($0.id)) },
            report: { id, kind, payload in
                bus.publishResult(PluginResult(kind: kind, payloadJSON: payload, trackID: nil, box: nil, confidence: nil),
                                  from: id, during: nil)
            })
        self.reloader = reloader
        controlPlane = ControlPlane(configuration: configuration, store: store, gallery: gallery, dispatcher: dispatcher,
                                    pluginStatuses: { reloader.statuses }, cameras: cameras, space: space, logger: logger)
        if configuration.api.enabled,
           let path = try AccessTokens(store: store).bootstrapAdmin(writingTo: configuration.adminTokenPath) {
            logger.notice("first run: an admin API token is in \(path) (mode 0600); `occur tokens create` makes others")
        }
    }

    /// What the HTTP API works on.
    public let controlPlane: ControlPlane
    /// What `GET /metrics` shows.
    public let metrics = HostMetrics()

    /// The HTTP API with /metrics beside it.
    public var controlAPI: ControlAPI {
        let (metrics, cameras, dispatcher) = (self.metrics, self.cameras, self.dispatcher)
        return ControlAPI(plane: controlPlane, logger: logger) { router in
            router.get("metrics") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: .init(byteBuffer: ByteBuffer(string: metrics.render(cameras: cameras, workers: dispatcher.workers))))
            }
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
        let cause = ShutdownCause()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: writer, serviceName: "event-writer"),
                .init(service: space, serviceName: "storage-space"),
                .init(service: snapshots, serviceName: "snapshots"),
                .init(service: PluginService(dispatcher: dispatcher, cause: cause, deadline: configuration.shutdownTimeout,
                                             logger: logger), serviceName: "plugins"),
                .init(service: CaptureService(cameras: cameras, cause: cause), successTerminationBehavior: .gracefullyShutdownGroup,
                      serviceName: "capture"),
        ]
        services.append(.init(service: reloader, serviceName: "plugin-reloader"))
        services.append(.init(service: RetentionSweeper(configuration: configuration.retention, store: store, gallery: gallery,
                                                        logger: logger), serviceName: "retention"))
        if configuration.api.enabled {
            services.append(.init(service: APIService(api: controlAPI, logger: logger),
                                  serviceName: "api"))
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Runs every camera on its own thread; returns when all have ended, or stops them on shutdown.
struct CaptureService: Service {
    let cameras: [CameraPipeline]
    let cause: ShutdownCause

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
            cause.markSignalled()
            cameras.forEach { $0.stop() }
        }
    }
}

/// The HTTP API. A server that cannot start (the port is taken) is logged and the host runs
/// on without it: the cameras matter more than the control plane.
struct APIService: Service {
    let api: ControlAPI
    let logger: Logger

    func run() async throws {
        let address = "\(api.plane.configuration.api.host):\(api.plane.configuration.api.port)"
        let app = api.application()   // Hummingbird logs "Server started and listening on …"
        do { try await app.run() } catch {
            logger.error("API not started on \(address): \(error); the host runs on without it")
            try? await gracefulShutdown()
        }
    }
}

/// Keeps plugin workers running until shutdown, then drains their queues: completely when
/// every camera ended by itself, for at most `deadline` seconds after a signal.
struct PluginService: Service {
    let dispatcher: Dispatcher
    let cause: ShutdownCause
    let deadline: Double
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        if cause.wasSignalled {
            _ = await dispatcher.stop(deadline: deadline, logger: logger)
        } else {
            await dispatcher.drain()
        }
    }
}
