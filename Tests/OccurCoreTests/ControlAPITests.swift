import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import OccurTestSupport
@testable import OccurCore

/// The HTTP API over real HTTP (Hummingbird's live test client on a free loopback port),
/// against a real host runtime: SQLite, the gallery, a loaded fixture plugin.
@Suite struct ControlAPITests {
    typealias Role = AccessTokens.Role

    /// A host runtime over a temp data dir with the fixture plugin loaded, and one token per role.
    struct Site {
        let dir: String
        let runtime: HostRuntime
        let secrets: [Role: String]
        var api: ControlAPI { ControlAPI(plane: runtime.controlPlane, logger: Fixtures.logger) }
        var store: EventStore { runtime.store }

        init(_ label: String) throws {
            dir = Fixtures.temporaryDirectory(label)
            try FileManager.default.createDirectory(atPath: dir + "/face_db", withIntermediateDirectories: true)
            try """
                data_dir: ./data
                log_level: warning
                api: { address: "127.0.0.1:0" }
                recognition: { face_db: ./face_db }
                """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
            let registry = PluginRegistry(pluginsDir: dir, plugins: [.fixture("fixture_ok", library: Fixtures.plugin("FixtureOK"))])
            runtime = try HostRuntime(configuration: HostConfiguration.load(contentsOf: dir + "/occur.yaml"), registry: registry,
                                      logger: Fixtures.logger)
            let tokens = AccessTokens(store: runtime.store)
            var secrets: [Role: String] = [:]
            for role in Role.allCases { secrets[role] = try tokens.create(role: role, name: "test \(role.rawValue)").secret }
            self.secrets = secrets
        }

        func audit() throws -> [AuditLog.Entry] { try AuditLog(store: store).entries(limit: 10_000) }
    }

    static func headers(_ secret: String?, contentType: String? = nil) -> HTTPFields {
        var fields = HTTPFields()
        if let secret { fields[.authorization] = "Bearer \(secret)" }
        if let contentType { fields[.contentType] = contentType }
        return fields
    }

    /// The response's JSON object; empty when it is not one.
    static func object(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
    }

    static func image(_ name: String) throws -> ByteBuffer {
        ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: Fixtures.faceImage(name))))
    }

    /// One route: what it needs, and a request that succeeds with that role.
    struct Route: Sendable, CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var role: Role
        var body: ByteBuffer? = nil
        var contentType: String? = nil
        var audited: String? = nil
        var description: String { "\(method) \(path)" }
    }

    @Test func everyRouteAnswersItsRoleAndRefusesTheOthers() async throws {
        let site = try Site("api-roles")
        // Something for each route to act on: Obama enrolled, a stranger, an event with a snapshot.
        let gallery = site.runtime.gallery
        let faces = try StillImageFaces(configuration: site.runtime.configuration, gallery: gallery, logger: Fixtures.logger)
        #expect(try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")]).allSatisfy(\.enrolled))
        let biden = try Frame.read(contentsOf: Fixtures.faceImage("biden.jpg"))
        var bidenFace = try #require(faces.detector.detect(in: biden).first)
        let embedding = try #require(faces.recognizer.embedder.embed(bidenFace, in: biden))
        let stranger = try gallery.newUnknown(embedding: embedding, model: faces.recognizer.embedder.model, source: nil)
        let snapshots = SnapshotStore(dataDir: site.runtime.configuration.dataDir, cooldown: 0,
                                      protection: site.store.protection, logger: Fixtures.logger)
        snapshots.start()
        let paths = try #require(snapshots.request(frame: biden, face: bidenFace, label: stranger, camera: "door", sequence: 1,
                                                   timestampNanos: 0, wallTime: Date()))
        snapshots.stopAndDrain()
        bidenFace.unknownID = stranger
        try site.store.append([Event(kind: .faceUnknown, sequence: 1, cameraID: "door", timestampNanos: 0, frame: nil, frameIndex: 1,
                                     faces: [bidenFace], payloadJSON: "{}", snapshot: paths)])
        let eventID = try #require(site.store.events(EventStore.Query()).last?.id)
        let viewerID = try #require(AccessTokens(store: site.store).list().first { $0.role == .viewer }?.id)

        let routes: [Route] = [
            Route(method: .get, path: "/api/events?kind=face_unknown&limit=10", role: .viewer),
            Route(method: .get, path: "/api/events/\(eventID)/snapshot?image=face", role: .viewer, audited: "snapshots.download"),
            Route(method: .get, path: "/api/faces", role: .viewer),
            Route(method: .get, path: "/api/plugins", role: .viewer),
            Route(method: .get, path: "/api/cameras", role: .viewer),
            Route(method: .post, path: "/api/faces/joe", role: .operator, body: try Self.image("biden.jpg"),
                  contentType: "image/jpeg", audited: "faces.enroll"),
            Route(method: .post, path: "/api/faces/\(stranger)/name", role: .operator,
                  body: ByteBuffer(string: #"{"name": "joseph"}"#), contentType: "application/json", audited: "faces.name"),
            Route(method: .post, path: "/api/plugins/fixture_ok/disable", role: .operator, audited: "plugins.disable"),
            Route(method: .post, path: "/api/plugins/fixture_ok/enable", role: .operator, audited: "plugins.enable"),
            Route(method: .get, path: "/api/tokens", role: .admin),
            Route(method: .post, path: "/api/tokens", role: .admin, body: ByteBuffer(string: #"{"role": "viewer", "name": "ci"}"#),
                  contentType: "application/json", audited: "tokens.create"),
            Route(method: .get, path: "/api/audit", role: .admin),
            Route(method: .delete, path: "/api/faces/joseph", role: .admin, audited: "faces.remove"),
            Route(method: .delete, path: "/api/tokens/\(viewerID)", role: .admin, audited: "tokens.revoke"),
        ]
        try await site.api.application().test(.live) { client in
            for route in routes {
                // No token, and a wrong one: 401.
                for secret in [nil, "occur_not-a-real-token"] {
                    try await client.execute(uri: route.path, method: route.method, headers: Self.headers(secret), body: route.body) {
                        #expect($0.status == .unauthorized, "\(route) with \(secret ?? "no token")")
                    }
                }
                // Every role below the one it needs: 403.
                for role in Role.allCases where role < route.role {
                    try await client.execute(uri: route.path, method: route.method, headers: Self.headers(site.secrets[role]!),
                                             body: route.body) {
                        #expect($0.status == .forbidden, "\(route) as \(role)")
                    }
                }
                // The role it needs: success.
                let auditBefore = try site.audit().count
                try await client.execute(uri: route.path, method: route.method,
                                         headers: Self.headers(site.secrets[route.role]!, contentType: route.contentType), body: route.body) {
                    #expect([.ok, .created].contains($0.status), "\(route) as \(route.role): \($0.status) \(String(buffer: $0.body))")
                }
                if let action = route.audited {
                    let entries = try site.audit().dropFirst(auditBefore)
                    #expect(entries.contains { $0.action == action && $0.result == "ok" && $0.tokenID != nil }, "\(route) not audited")
                }
            }
            // Probes need no token.
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .ok)
                #expect(Self.object($0)["ready"] as? Bool == true)
            }
        }
        // Failed authentication and refused roles are audited too.
        let audit = try site.audit()
        #expect(audit.filter { $0.action == "auth" && $0.result == "unauthorized" }.count == routes.count * 2)
        #expect(audit.contains { $0.result == "denied" && $0.action == "faces.remove" })
        // The revoked viewer token no longer opens anything.
        try await site.api.application().test(.live) { client in
            try await client.execute(uri: "/api/faces", method: .get, headers: Self.headers(site.secrets[.viewer]!)) {
                #expect($0.status == .unauthorized)
            }
        }
    }

    @Test func enrolOverHTTPThenRecogniseThenEraseLeavesNothing() async throws {
        let site = try Site("api-erase")
        let admin = site.secrets[.admin]!
        // Enrol from two uploaded photos (JSON, base64), one more from a face_db folder on disk.
        let photos = try ["obama.jpg", "obama3.jpg"].map { try Data(contentsOf: URL(fileURLWithPath: Fixtures.faceImage($0))).base64EncodedString() }
        let upload = try JSONSerialization.data(withJSONObject: ["images": photos])
        try FileManager.default.createDirectory(atPath: site.dir + "/face_db/obama", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.faceImage("obama_partial_face.jpg"), toPath: site.dir + "/face_db/obama/1.jpg")
        try await site.api.application().test(.live) { client in
            try await client.execute(uri: "/api/faces/obama", method: .post, headers: Self.headers(admin, contentType: "application/json"),
                                     body: ByteBuffer(bytes: upload)) {
                #expect($0.status == .created)
                #expect(Self.object($0)["enrolled"] as? Int == 2)
            }
            // An image with no face is refused with a reason.
            try await client.execute(uri: "/api/faces/nobody", method: .post, headers: Self.headers(admin, contentType: "image/jpeg"),
                                     body: ByteBuffer(bytes: try Frame.filled(width: 200, height: 200).jpeg())) {
                #expect($0.status == .unprocessableContent)
            }
        }
        // Recognition on a real photo names him.
        let faces = try StillImageFaces(configuration: site.runtime.configuration, gallery: site.runtime.gallery, logger: Fixtures.logger)
        let recognized = try faces.recognize(imageAt: Fixtures.faceImage("obama2.jpg"))
        #expect(recognized.first?.recognition?.identity == "obama")
        // A recognised event with a snapshot, as the cameras would log it.
        let frame = try Frame.read(contentsOf: Fixtures.faceImage("obama2.jpg"))
        var face = try #require(recognized.first?.face)
        face.identity = "obama"
        let snapshots = SnapshotStore(dataDir: site.runtime.configuration.dataDir, cooldown: 0, protection: site.store.protection,
                                      logger: Fixtures.logger)
        snapshots.start()
        let paths = try #require(snapshots.request(frame: frame, face: face, label: "obama", camera: "door", sequence: 1,
                                                   timestampNanos: 0, wallTime: Date()))
        snapshots.stopAndDrain()
        try site.store.append([Event(kind: .faceRecognized, sequence: 1, cameraID: "door", timestampNanos: 0, frame: nil,
                                     frameIndex: 1, faces: [face], payloadJSON: "{}", snapshot: paths)])
        let blobs = try await site.store.pool.read { try Data.fetchAll($0, sql: "SELECT vector FROM embeddings") }
        #expect(blobs.count == 2)

        try await site.api.application().test(.live) { client in
            try await client.execute(uri: "/api/faces/obama", method: .delete, headers: Self.headers(admin)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/faces/obama", method: .delete, headers: Self.headers(admin)) { #expect($0.status == .notFound) }
        }
        // Nothing of him is left: no rows, no snapshot files, no face_db folder, and none of his
        // embedding blobs anywhere in the data dir's bytes (database, WAL, every file).
        let rows = try await site.store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM embeddings")!, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM identities")!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE identity = 'obama' OR snapshot_face IS NOT NULL")!)
        }
        #expect(rows == (0, 0, 0))
        #expect(!FileManager.default.fileExists(atPath: site.dir + "/face_db/obama"))
        let dataDir = site.runtime.configuration.dataDir
        #expect(!FileManager.default.fileExists(atPath: dataDir + "/" + paths.face))
        for case let file as String in FileManager.default.enumerator(atPath: dataDir)! {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: dataDir + "/" + file, isDirectory: &isDirectory) || isDirectory.boolValue { continue }
            #expect(!file.contains("obama"), "\(file) left behind")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dataDir + "/" + file))
            for blob in blobs { #expect(bytes.range(of: blob) == nil, "an embedding of his is still in \(file)") }
        }
        // The erasure itself is on the audit log.
        #expect(try site.audit().contains { $0.action == "faces.remove" && $0.target == "obama" && $0.result == "ok" })
    }

    @Test func aNonLoopbackAddressNeedsExplicitConsent() throws {
        let dir = Fixtures.temporaryDirectory("api-remote")
        try "api: { address: \"0.0.0.0:8970\" }\n".write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigError.self) { try HostConfiguration.load(contentsOf: dir + "/occur.yaml") }
        #expect(error?.description.contains("allow_insecure_remote") == true)
        #expect(error?.description.contains("occur.yaml:1") == true)
        try "api: { address: \"0.0.0.0:8970\", allow_insecure_remote: true }\n".write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        #expect(try HostConfiguration.load(contentsOf: dir + "/occur.yaml").api.host == "0.0.0.0")
    }

    @Test func theFirstRunWritesAnAdminTokenOnlyItsOwnerCanRead() throws {
        let dir = Fixtures.temporaryDirectory("api-first")
        try "data_dir: ./data\napi: { address: \"127.0.0.1:0\" }\n".write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let configuration = try HostConfiguration.load(contentsOf: dir + "/occur.yaml")
        var secret = ""
        do {
            let runtime = try HostRuntime(configuration: configuration, registry: PluginRegistry(pluginsDir: dir, plugins: []), logger: Fixtures.logger)
            secret = try String(contentsOfFile: configuration.adminTokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            var info = stat()
            #expect(stat(configuration.adminTokenPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
            #expect(try AccessTokens(store: runtime.store).authenticate(secret)?.role == .admin)
        }
        // A second start makes no new one.
        let again = try HostRuntime(configuration: configuration, registry: PluginRegistry(pluginsDir: dir, plugins: []), logger: Fixtures.logger)
        #expect(try AccessTokens(store: again.store).list().count == 1)
        #expect(try String(contentsOfFile: configuration.adminTokenPath, encoding: .utf8).contains(secret))
    }

    @Test func theAuditLogIsAppendOnly() throws {
        let site = try Site("api-audit")
        try AuditLog(store: site.store).record(actor: "cli", action: "faces.remove", target: "x", result: "ok")
        #expect(throws: DatabaseError.self) { try site.store.pool.write { try $0.execute(sql: "DELETE FROM audit") } }
        #expect(throws: DatabaseError.self) { try site.store.pool.write { try $0.execute(sql: "UPDATE audit SET result = 'no'") } }
        #expect(try site.audit().count == 1)
    }
}
