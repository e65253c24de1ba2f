import Foundation
import GRDB

/// One row of the event log.
public struct StoredEvent: Sendable, Equatable, Codable {
    public var id: Int64
    public var timeMilliseconds: Int64
    public var camera: String
    public var kind: String
    public var trackID: Int64?
    public var box: Box?
    public var identity: String?
    public var confidence: Double?
    public var plugin: String?
    public var payload: String
    public var frameIndex: Int64?
    public var snapshotFace: String? = nil
    public var snapshotFrame: String? = nil

    public var time: Date { Date(timeIntervalSince1970: Double(timeMilliseconds) / 1000) }
}


/// The event log: SQLite through GRDB, WAL mode, versioned migrations.
public final class EventStore: Sendable {
    public let path: String
    /// Shared with the FaceGallery, which keeps its tables in the same database.
    let pool: DatabasePool
    /// Seals and opens the biometric data kept with this database (embeddings, crops).
    public let protection: DataProtection
    /// The data dir, where snapshots and the data key live.
    public let dataDir: String

    /// Opens (creating when needed) the database at `path` and migrates it. With `encryption`
    /// on, new embeddings and crops are sealed under the data dir's key, which is created on
    /// first use (DataProtection). `dataDir` defaults to the database's directory.
    public init(path: String, readOnly: Bool = false, encryption: Bool = true, dataDir: String? = nil) throws {
        self.path = path
        self.dataDir = dataDir ?? (path as NSString).deletingLastPathComponent
        var config = Configuration()
        config.busyMode = .timeout(10)
        // Deleted rows are overwritten, not left in free pages: erasure (faces remove) is real.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
        config.readonly = readOnly
        if !readOnly {
            try PrivateFiles.makeDirectory((path as NSString).deletingLastPathComponent)
            try PrivateFiles.prepareDatabaseFile(path)   // 0600, and so its -wal and -shm files
        } else if !FileManager.default.fileExists(atPath: path) {
            throw StoreError(message: "no event database at \(path) (has `occur run` been started with this config?)")
        }
        pool = try DatabasePool(path: path, configuration: config)
        if !readOnly { try Self.migrator.migrate(pool) }
        protection = try DataProtection.load(dataDir: self.dataDir, seal: encryption && !readOnly)
    }

    /// The store `occur.yaml` names: its database, data dir and encryption setting.
    public convenience init(_ configuration: HostConfiguration, readOnly: Bool = false) throws {
        try self.init(path: configuration.databasePath, readOnly: readOnly, encryption: configuration.storage.encryption,
                      dataDir: configuration.dataDir)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 events") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    time_ms INTEGER NOT NULL,
                    camera TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    track_id INTEGER,
                    box_x REAL, box_y REAL, box_w REAL, box_h REAL,
                    identity TEXT,
                    confidence REAL,
                    plugin TEXT,
                    payload TEXT NOT NULL DEFAULT '{}',
                    frame_index INTEGER
                );
                CREATE INDEX events_time ON events(time_ms);
                CREATE INDEX events_kind ON events(kind, time_ms);
                CREATE INDEX events_camera ON events(camera, time_ms);
                """)
        }
        migrator.registerMigration("v2 gallery") { db in
            try db.execute(sql: """
                CREATE TABLE identities (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL UNIQUE,
                    created_ms INTEGER NOT NULL
                );
                CREATE TABLE embeddings (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
                    model TEXT NOT NULL,
                    dimension INTEGER NOT NULL,
                    vector BLOB NOT NULL,
                    source TEXT,
                    created_ms INTEGER NOT NULL
                );
                CREATE INDEX embeddings_model ON embeddings(model, identity_id);
                """)
        }
        migrator.registerMigration("v3 unknown faces and snapshots") { db in
            try db.execute(sql: """
                ALTER TABLE identities ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
                ALTER TABLE events ADD COLUMN snapshot_face TEXT;
                ALTER TABLE events ADD COLUMN snapshot_frame TEXT;
                CREATE INDEX events_identity ON events(identity);
                CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v4 access tokens and audit") { db in
            try db.execute(sql: """
                CREATE TABLE tokens (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
                    hash BLOB NOT NULL UNIQUE,
                    created_ms INTEGER NOT NULL,
                    revoked_ms INTEGER
                );
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    time_ms INTEGER NOT NULL,
                    token_id INTEGER,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    result TEXT NOT NULL,
                    detail TEXT
                );
                CREATE INDEX audit_time ON audit(time_ms);
                CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                """)
        }
        return migrator
    }

    private static let insertSQL = """
        INSERT INTO events (time_ms, camera, kind, track_id, box_x, box_y, box_w, box_h,
                            identity, confidence, plugin, payload, frame_index, snapshot_face, snapshot_frame)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Writes events in one transaction.
    public func append(_ events: [Event]) throws {
        try append(rows: events.map(StoredEvent.init))
    }

    /// Writes rows (their ids are ignored) in one transaction: all or none. A full disk
    /// throws a DatabaseError with SQLITE_FULL.
    public func append(rows: [StoredEvent]) throws {
        guard !rows.isEmpty else { return }
        try pool.write { db in
            let statement = try db.cachedStatement(sql: Self.insertSQL)
            for row in rows {
                try statement.execute(arguments: [
                    row.timeMilliseconds, row.camera, row.kind, row.trackID,
                    row.box?.x, row.box?.y, row.box?.width, row.box?.height,
                    row.identity, row.confidence, row.plugin, row.payload, row.frameIndex,
                    row.snapshotFace, row.snapshotFrame,
                ])
            }
        }
    }

    public struct Query: Sendable {
        public var since: Date?
        /// Events before this time only.
        public var until: Date?
        public var kinds: [String] = []
        public var camera: String?
        public var plugin: String?
        public var identity: String?
        /// Events with an id below this one only: the cursor of the next (older) page.
        public var beforeID: Int64?
        /// The newest `limit` matching events (returned oldest first).
        public var limit: Int = 100
        public init() {}
    }

    public func events(_ query: Query) throws -> [StoredEvent] {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let since = query.since {
            clauses.append("time_ms >= ?")
            _ = arguments.append(contentsOf: [Int64(since.timeIntervalSince1970 * 1000)])
        }
        if !query.kinds.isEmpty {
            clauses.append("kind IN (\(query.kinds.map { _ in "?" }.joined(separator: ",")))")
            _ = arguments.append(contentsOf: StatementArguments(query.kinds))
        }
        if let camera = query.camera {
            clauses.append("camera = ?")
            _ = arguments.append(contentsOf: [camera])
        }
        if let plugin = query.plugin {
            clauses.append("plugin = ?")
            _ = arguments.append(contentsOf: [plugin])
        }
        if let until = query.until {
            clauses.append("time_ms < ?")
            _ = arguments.append(contentsOf: [Int64(until.timeIntervalSince1970 * 1000)])
        }
        if let identity = query.identity {
            clauses.append("identity = ?")
            _ = arguments.append(contentsOf: [identity])
        }
        if let beforeID = query.beforeID {
            clauses.append("id < ?")
            _ = arguments.append(contentsOf: [beforeID])
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT * FROM events \(filter) ORDER BY id DESC LIMIT \(max(0, query.limit))"
        return try pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.storedEvent).reversed()
        }
    }

    /// One event by id.
    public func event(id: Int64) throws -> StoredEvent? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM events WHERE id = ?", arguments: [id]).map(Self.storedEvent) }
    }

    /// True when the database takes a write now (readiness): a write transaction is begun and rolled back.
    public func isWritable() -> Bool {
        do {
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(sql: "ROLLBACK")
            }
            return true
        } catch {
            return false
        }
    }

    public func count() throws -> Int {
        try pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }

    private static func storedEvent(_ row: Row) -> StoredEvent {
        var box: Box?
        if let x: Double = row["box_x"], let y: Double = row["box_y"], let w: Double = row["box_w"],
           let h: Double = row["box_h"] {
            box = Box(x: x, y: y, width: w, height: h)
        }
        return StoredEvent(id: row["id"], timeMilliseconds: row["time_ms"], camera: row["camera"], kind: row["kind"],
                           trackID: row["track_id"], box: box, identity: row["identity"],
                           confidence: row["confidence"], plugin: row["plugin"], payload: row["payload"],
                           frameIndex: row["frame_index"], snapshotFace: row["snapshot_face"],
                           snapshotFrame: row["snapshot_frame"])
    }
}

public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
