import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What the HTTP API reads and acts on: the parts of a running host.
public struct ControlPlane: Sendable {
    public let configuration: HostConfiguration
    public let store: EventStore
    public let gallery: FaceGallery
    public let dispatcher: Dispatcher
    /// Plugin states as of the last (re)load of plugins.yaml.
    private let statuses: @Sendable () -> [PluginStatus]
    public let cameras: [CameraPipeline]
    /// The disk-full policy, when the host watches free space.
    public let space: StorageSpace?
    /// Enrolment with the cameras' detector and recogniser, made on first use, one at a time.
    let enroller: Enroller

    public init(configuration: HostConfiguration, store: EventStore, gallery: FaceGallery, dispatcher: Dispatcher,
                pluginStatuses: @escaping @Sendable () -> [PluginStatus], cameras: [CameraPipeline],
                space: StorageSpace? = nil, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.gallery = gallery
        self.dispatcher = dispatcher
        statuses = pluginStatuses
        self.cameras = cameras
        self.space = space
        enroller = Enroller(configuration: configuration, gallery: gallery, logger: logger)
    }

    public var workers: [PluginWorker] { dispatcher.workers }
    public var pluginStatuses: [PluginStatus] { statuses() }
}

/// StillImageFaces behind a lock: the detector and recogniser are not for two threads at once.
final class Enroller: Sendable {
    private let configuration: HostConfiguration
    private let gallery: FaceGallery
    private let logger: Logger
    private let faces = Mutex<StillImageFaces?>(nil)

    init(configuration: HostConfiguration, gallery: FaceGallery, logger: Logger) {
        self.configuration = configuration
        self.gallery = gallery
        self.logger = logger
    }

    func enroll(name: String, images: [(source: String, bytes: Data)]) throws -> [StillImageFaces.EnrollOutcome] {
        try faces.withLock { faces in
            if faces == nil { faces = try StillImageFaces(configuration: configuration, gallery: gallery, logger: logger) }
            return try images.map { image in
                do {
                    return try faces!.enroll(name: name, frame: faces!.prepared(Frame.decode(image.bytes)), source: image.source)
                } catch let error as VisionError {
                    return .unreadable(path: image.source, reason: error.message)
                }
            }
        }
    }
}

/// The request context: who is asking (set by the bearer-token middleware on /api routes).
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: AccessTokens.Token?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        token = nil
    }
}

/// The HTTP control plane (Hummingbird 2): JSON under /api behind bearer tokens with roles,
/// health and readiness probes outside it. Every change, every snapshot download and every
/// refused request is written to the audit log. README "HTTP API" lists the routes.
public struct ControlAPI: Sendable {
    public typealias Role = AccessTokens.Role
    let plane: ControlPlane
    let tokens: AccessTokens
    let audit: AuditLog
    let logger: Logger
    /// Extra routes outside /api (the metrics endpoint).
    let extraRoutes: @Sendable (Router<APIContext>) -> Void

    public init(plane: ControlPlane, logger: Logger, extraRoutes: @escaping @Sendable (Router<APIContext>) -> Void = { _ in }) {
        self.plane = plane
        tokens = AccessTokens(store: plane.store)
        audit = AuditLog(store: plane.store)
        self.logger = logger
        self.extraRoutes = extraRoutes
    }

    /// The server, listening where occur.yaml's `api.address` says.
    public func application(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let api = plane.configuration.api
        return Application(router: router(), configuration: .init(address: .hostname(api.host, port: api.port),
                                                                  serverName: "occur"),
                           onServerRunning: onServerRunning, logger: logger)
    }

    public func router() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.get("healthz") { _, _ in Self.json(["status": "ok"]) }
        router.get("readyz") { _, _ in readiness() }
        extraRoutes(router)

        let group = router.group("api").add(middleware: BearerAuthentication(tokens: tokens, audit: audit))
        group.get("events") { request, context in try events(request, context) }
        group.get("events/:id/snapshot") { request, context in try snapshot(request, context) }
        group.get("faces") { request, context in try faces(request, context) }
        group.post("faces/:name") { request, context in try await enroll(request, context) }
        group.delete("faces/:name") { request, context in try remove(request, context) }
        group.post("faces/:name/name") { request, context in try await name(request, context) }
        group.get("plugins") { request, context in try plugins(request, context) }
        group.post("plugins/:id/enable") { request, context in try toggle(request, context, pause: false) }
        group.post("plugins/:id/disable") { request, context in try toggle(request, context, pause: true) }
        group.get("cameras") { request, context in try cameras(request, context) }
        group.get("tokens") { request, context in try listTokens(request, context) }
        group.post("tokens") { request, context in try await createToken(request, context) }
        group.delete("tokens/:id") { request, context in try revokeToken(request, context) }
        group.get("audit") { request, context in try auditLog(request, context) }
        return router
    }

    // MARK: probes

    func readiness() -> Response {
        var problems: [String] = []
        if !plane.store.isWritable() { problems.append("the database is not writable") }
        if let space = plane.space, !space.eventsWritable {
            problems.append("the disk is full: events are held in memory until space returns")
        }
        for camera in plane.cameras {
            let counters = camera.counters
            if let error = counters.error { problems.append("camera \(camera.configuration.id): \(error)") }
            else if let reason = counters.disconnectReason, !counters.ended {
                problems.append("camera \(camera.configuration.id): disconnected (\(reason)); reopening with backoff")
            }
            else if !counters.open && !counters.ended { problems.append("camera \(camera.configuration.id): not open") }
        }
        return Self.json(["ready": problems.isEmpty, "problems": problems], status: problems.isEmpty ? .ok : .serviceUnavailable)
    }

    // MARK: events

    func events(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.viewer, context, action: nil, target: nil)
        let q = request.uri.queryParameters
        var query = EventStore.Query()
        if let since = q.get("since") { query.since = try parseTime(since, "since") }
        if let until = q.get("until") { query.until = try parseTime(until, "until") }
        query.camera = q.get("camera")
        query.plugin = q.get("plugin")
        query.identity = q.get("identity")
        query.kinds = q.getAll("kind").flatMap { $0.split(separator: ",").map(String.init) }
        if let cursor = q.get("cursor") {
            guard let id = Int64(cursor), id > 0 else { throw HTTPError(.badRequest, message: "cursor: expected the next_cursor of a previous page") }
            query.beforeID = id
        }
        query.limit = 100
        if let limit = q.get("limit") {
            guard let n = Int(limit), (1...1000).contains(n) else { throw HTTPError(.badRequest, message: "limit: expected 1 to 1000") }
            query.limit = n
        }
        let found = try plane.store.events(query)   // oldest first
        let next = found.count == query.limit ? found.first.map { String($0.id) } : nil
        return Self.json(["events": Array(found.reversed().map(\.jsonObject)), "next_cursor": next as Any])
    }

    func snapshot(_ request: Request, _ context: APIContext) throws -> Response {
        let id = try context.parameters.require("id", as: Int64.self)
        let which = request.uri.queryParameters.get("image") ?? "face"
        guard which == "face" || which == "frame" else { throw HTTPError(.badRequest, message: "image: face or frame") }
        let token = try authorize(.viewer, context, action: "snapshots.download", target: "event \(id)")
        guard let event = try plane.store.event(id: id), let path = which == "face" ? event.snapshotFace : event.snapshotFrame else {
            try record(token, "snapshots.download", "event \(id)", "not_found")
            throw HTTPError(.notFound, message: "event \(id) has no \(which) snapshot")
        }
        let jpeg: Data
        do { jpeg = try plane.store.protection.readImage(at: (plane.configuration.dataDir as NSString).appendingPathComponent(path)) } catch {
            try record(token, "snapshots.download", "event \(id)", "error", "\(error)")
            throw HTTPError(.internalServerError, message: "snapshot of event \(id) unreadable: \(error)")
        }
        try record(token, "snapshots.download", "event \(id)", "ok", "\(which) \(path)")
        return Response(status: .ok, headers: [.contentType: "image/jpeg"], body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
    }

    // MARK: faces

    func faces(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.viewer, context, action: nil, target: nil)
        let identities = try plane.gallery.identities().map { identity -> [String: Any] in
            ["name": identity.name, "kind": identity.kind.rawValue, "embeddings": identity.embeddings]
        }
        return Self.json(["faces": identities])
    }

    func enroll(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let token = try authorize(.operator, context, action: "faces.enroll", target: name)
        if let problem = validatePersonName(name) {
            try record(token, "faces.enroll", name, "refused", problem)
            throw HTTPError(.badRequest, message: "'\(name)': \(problem)")
        }
        let body = try await request.body.collect(upTo: plane.configuration.api.maxUploadBytes)
        let images: [(source: String, bytes: Data)]
        let type = request.headers[.contentType] ?? ""
        if type.hasPrefix("application/json") {
            struct Upload: Decodable { var images: [String] }
            guard let upload = try? JSONDecoder().decode(Upload.self, from: Data(buffer: body)) else {
                throw HTTPError(.badRequest, message: "expected {\"images\": [\"<base64 JPEG or PNG>\", ...]}")
            }
            images = try upload.images.enumerated().map { i, text in
                guard let bytes = Data(base64Encoded: text) else { throw HTTPError(.badRequest, message: "images[\(i)] is not base64") }
                return ("api upload \(i + 1)", bytes)
            }
        } else if type.hasPrefix("image/") || type == "application/octet-stream" {
            images = [("api upload", Data(buffer: body))]
        } else {
            throw HTTPError(.unsupportedMediaType, message: "send one image (Content-Type image/jpeg or image/png) or JSON {\"images\": [base64, ...]}")
        }
        guard !images.isEmpty else { throw HTTPError(.badRequest, message: "no images") }
        let outcomes = try plane.enroller.enroll(name: name, images: images)
        let enrolled = outcomes.filter(\.enrolled).count
        try record(token, "faces.enroll", name, enrolled > 0 ? "ok" : "refused", "\(enrolled) of \(outcomes.count) images enrolled")
        return Self.json(["name": name, "enrolled": enrolled, "outcomes": outcomes.map(\.message)],
                         status: enrolled > 0 ? .created : .unprocessableContent)
    }

    func remove(_ request: Request, _ context: APIContext) throws -> Response {
        let name = try context.parameters.require("name")
        let token = try authorize(.admin, context, action: "faces.remove", target: name)
        let removed = try plane.gallery.remove(name: name, dataDir: plane.configuration.dataDir,
                                               faceDB: plane.configuration.recognition.faceDB)
        try record(token, "faces.remove", name, removed ? "ok" : "not_found")
        guard removed else { throw HTTPError(.notFound, message: "nobody called '\(name)' is in the gallery") }
        return Self.json(["removed": name])
    }

    func name(_ request: Request, _ context: APIContext) async throws -> Response {
        let unknown = try context.parameters.require("name")
        let token = try authorize(.operator, context, action: "faces.name", target: unknown)
        struct Naming: Decodable { var name: String }
        let body = try await request.body.collect(upTo: 64 << 10)
        guard let naming = try? JSONDecoder().decode(Naming.self, from: Data(buffer: body)) else {
            throw HTTPError(.badRequest, message: "expected {\"name\": \"...\"}")
        }
        if let problem = validatePersonName(naming.name) {
            try record(token, "faces.name", unknown, "refused", problem)
            throw HTTPError(.badRequest, message: "'\(naming.name)': \(problem)")
        }
        do { try plane.gallery.promote(unknown: unknown, to: naming.name) } catch {
            try record(token, "faces.name", unknown, "not_found", "\(error)")
            throw HTTPError(.notFound, message: "\(error)")
        }
        try record(token, "faces.name", unknown, "ok", "named \(naming.name)")
        return Self.json(["unknown": unknown, "name": naming.name])
    }

    // MARK: plugins and cameras

    func plugins(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.viewer, context, action: nil, target: nil)
        let workers = Dictionary(plane.workers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let list = plane.pluginStatuses.map { status -> [String: Any] in
            var item: [String: Any] = ["id": status.id as Any, "path": status.path, "state": status.stateText]
            if let id = status.id, let worker = workers[id] {
                let c = worker.counters
                let p = worker.callPercentiles
                item["state"] = c.paused ? "paused" : c.runner.failed ? "failed" : c.stalled ? "stalled" : "running"
                item["counters"] = [
                    "delivered": c.delivered, "dropped_cooldown": c.droppedByCooldown, "dropped_overflow": c.droppedByOverflow,
                    "errors": c.errors, "stalls": c.stalls, "mean_call_us": c.meanCallMicros, "max_call_us": c.maxCallMicros,
                    "median_call_ms": p.median, "p95_call_ms": p.p95,
                ]
                item["queue_depth"] = c.queueDepth
                item["queue_capacity"] = worker.settings.queueCapacity
                item["cooldown"] = worker.settings.cooldown
                item["last_error"] = c.lastError as Any
                item["isolation"] = worker.settings.isolation.rawValue
                if worker.settings.isolation == .process {
                    item["runner"] = [
                        "crashes": c.runner.crashes, "restarts": c.runner.restarts, "stall_kills": c.runner.stallKills,
                        "dropped_while_down": c.droppedWhileDown, "failed": c.runner.failed,
                        "last_crash": c.runner.lastCrash as Any,
                    ]
                }
            }
            return item
        }
        return Self.json(["plugins": list])
    }

    func toggle(_ request: Request, _ context: APIContext, pause: Bool) throws -> Response {
        let id = try context.parameters.require("id")
        let action = pause ? "plugins.disable" : "plugins.enable"
        let token = try authorize(.operator, context, action: action, target: id)
        guard let worker = plane.workers.first(where: { $0.id == id }) else {
            let known = plane.pluginStatuses.contains { $0.id == id }
            try record(token, action, id, known ? "refused" : "not_found")
            throw HTTPError(known ? .conflict : .notFound, message: known
                ? "plugin '\(id)' is not loaded (disabled or refused in plugins.yaml): enable it there; the running host applies the edit"
                : "no plugin '\(id)'")
        }
        worker.setPaused(pause)
        try record(token, action, id, "ok")
        logger.notice("plugin \(id) \(pause ? "paused" : "resumed") through the API by token \(token.id)")
        return Self.json(["id": id, "state": pause ? "paused" : "running"])
    }

    func cameras(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.viewer, context, action: nil, target: nil)
        let list = plane.cameras.map { camera -> [String: Any] in
            let c = camera.counters
            let state = c.error != nil ? "failed" : c.ended ? "ended" : c.open ? "open"
                : c.disconnectReason != nil ? "reconnecting" : "opening"
            return [
                "id": camera.configuration.id, "source": camera.configuration.source, "state": state,
                "fps": (c.fps * 10).rounded() / 10,
                "last_frame_time": c.lastFrameTime.map { ISO8601DateFormatter.withFractions.string(from: $0) } as Any,
                "frames_read": c.framesRead, "frames_processed": c.framesProcessed, "faces_detected": c.facesDetected,
                "reconnects": c.reconnects, "disconnects": c.disconnects, "disconnect_reason": c.disconnectReason as Any,
                "unreadable_images": c.unreadableImages, "error": c.error as Any,
            ]
        }
        return Self.json(["cameras": list])
    }

    // MARK: tokens and audit

    func listTokens(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.admin, context, action: nil, target: nil)
        return Self.json(["tokens": try tokens.list().map(Self.tokenObject)])
    }

    func createToken(_ request: Request, _ context: APIContext) async throws -> Response {
        let token = try authorize(.admin, context, action: "tokens.create", target: nil)
        struct New: Decodable { var role: String; var name: String? }
        let body = try await request.body.collect(upTo: 64 << 10)
        guard let new = try? JSONDecoder().decode(New.self, from: Data(buffer: body)), let role = Role(rawValue: new.role) else {
            throw HTTPError(.badRequest, message: "expected {\"role\": \"viewer\"|\"operator\"|\"admin\", \"name\": \"...\"}")
        }
        let (made, secret) = try tokens.create(role: role, name: new.name ?? "api")
        try record(token, "tokens.create", "token \(made.id)", "ok", "role \(role.rawValue)")
        var object = Self.tokenObject(made)
        object["token"] = secret
        return Self.json(object, status: .created)
    }

    func revokeToken(_ request: Request, _ context: APIContext) throws -> Response {
        let id = try context.parameters.require("id", as: Int64.self)
        let token = try authorize(.admin, context, action: "tokens.revoke", target: "token \(id)")
        let revoked = try tokens.revoke(id: id)
        try record(token, "tokens.revoke", "token \(id)", revoked ? "ok" : "not_found")
        guard revoked else { throw HTTPError(.notFound, message: "no live token \(id)") }
        return Self.json(["revoked": id])
    }

    func auditLog(_ request: Request, _ context: APIContext) throws -> Response {
        try authorize(.admin, context, action: nil, target: nil)
        let q = request.uri.queryParameters
        let since = try q.get("since").map { try parseTime($0, "since") }
        let limit = q.get("limit").flatMap { Int($0) } ?? 100
        let entries = try audit.entries(since: since, limit: min(max(limit, 1), 10_000)).map { e -> [String: Any] in
            ["id": e.id, "time": ISO8601DateFormatter.withFractions.string(from: e.time), "token_id": e.tokenID as Any,
             "actor": e.actor, "action": e.action, "target": e.target as Any, "result": e.result, "detail": e.detail as Any]
        }
        return Self.json(["audit": entries])
    }

    // MARK: helpers

    /// The caller's token when its role reaches `role`; otherwise 403, audited when `action` is given
    /// (reads are not audited, refused changes are).
    @discardableResult
    func authorize(_ role: Role, _ context: APIContext, action: String?, target: String?) throws -> AccessTokens.Token {
        guard let token = context.token else { throw HTTPError(.unauthorized) }   // the middleware sets it on /api
        guard token.role >= role else {
            try record(token, action ?? "read", target, "denied", "needs role \(role.rawValue), token has \(token.role.rawValue)")
            throw HTTPError(.forbidden, message: "this needs the \(role.rawValue) role; the token is \(token.role.rawValue)")
        }
        return token
    }

    func record(_ token: AccessTokens.Token, _ action: String, _ target: String?, _ result: String, _ detail: String? = nil) throws {
        try audit.record(actor: "token \(token.id) (\(token.name))", tokenID: token.id, action: action, target: target,
                         result: result, detail: detail)
    }

    func parseTime(_ text: String, _ name: String) throws -> Date {
        guard let date = parseSince(text) else {
            throw HTTPError(.badRequest, message: "\(name): expected an ISO 8601 time or an age such as 10m, 2h, 7d")
        }
        return date
    }

    static func tokenObject(_ token: AccessTokens.Token) -> [String: Any] {
        ["id": token.id, "name": token.name, "role": token.role.rawValue, "revoked": token.revoked,
         "created": ISO8601DateFormatter.withFractions.string(from: Date(timeIntervalSince1970: Double(token.createdMilliseconds) / 1000))]
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// /api/*: a live bearer token or 401 (audited as "auth").
struct BearerAuthentication: RouterMiddleware {
    typealias Context = APIContext
    let tokens: AccessTokens
    let audit: AuditLog

    func handle(_ request: Request, context: APIContext,
                next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization]
        let secret = header.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) : nil }
        guard let secret, let token = try tokens.authenticate(secret) else {
            try audit.record(actor: "anonymous", action: "auth", target: "\(request.method) \(request.uri.path)",
                             result: "unauthorized", detail: header == nil ? "no Authorization header" : "unknown or revoked token")
            var response = ControlAPI.json(["error": ["message": "a valid bearer token is required (Authorization: Bearer occur_...)"]],
                                           status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        var context = context
        context.token = token
        return try await next(request, context)
    }
}
