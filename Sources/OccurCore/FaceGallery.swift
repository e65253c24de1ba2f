import Foundation
import GRDB
import Synchronization

/// Enrolled people, and the clusters of unknown faces (`unknown-N`), with their embeddings:
/// rows in the database (float32 blobs tagged with model and dimension) and an in-memory
/// index per model and kind for nearest-neighbour search that follows every change.
/// Embeddings of different models are never compared. Thread-safe.
public final class FaceGallery: Sendable {
    public enum Kind: String, Sendable {
        /// Enrolled by name: recognition names these.
        case person
        /// A stranger seen before: `unknown-N`, until named.
        case unknown
    }

    public struct Identity: Sendable, Equatable {
        public var name: String
        public var kind: Kind
        /// Embeddings per model.
        public var embeddings: [String: Int]
    }

    /// One identity's best distance to a query.
    public struct Candidate: Sendable, Equatable {
        public var name: String
        public var distance: Double
    }

    private struct IndexKey: Hashable {
        var model: String
        var kind: Kind
    }

    /// Vectors of one model and kind, side by side.
    private struct Index {
        var names: [String] = []
        var vectors: [Float] = []
        var dimension: Int
    }

    private let pool: DatabasePool
    private let indexes = Mutex<[IndexKey: Index]>([:])

    public init(store: EventStore) throws {
        pool = store.pool
        try reload()
    }

    /// Rebuilds the in-memory index from the database.
    public func reload() throws {
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT identities.name, identities.kind, embeddings.model, embeddings.dimension, embeddings.vector
                FROM embeddings JOIN identities ON identities.id = embeddings.identity_id
                ORDER BY embeddings.id
                """)
        }
        var fresh: [IndexKey: Index] = [:]
        for row in rows {
            let key = IndexKey(model: row["model"], kind: Kind(rawValue: row["kind"]) ?? .person)
            let dimension: Int = row["dimension"]
            let vector = Self.floats(row["vector"])
            guard vector.count == dimension else { continue }
            fresh[key, default: Index(dimension: dimension)].names.append(row["name"])
            fresh[key, default: Index(dimension: dimension)].vectors.append(contentsOf: vector)
        }
        indexes.withLock { $0 = fresh }
    }

    /// Adds one embedding for the person `name` (creating the identity when new).
    public func enroll(name: String, embedding: [Float], model: String, source: String?) throws {
        try add(embedding, to: name, kind: .person, model: model, source: source)
    }

    private func add(_ embedding: [Float], to name: String, kind: Kind, model: String, source: String?) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO identities (name, kind, created_ms) VALUES (?, ?, ?)",
                           arguments: [name, kind.rawValue, now])
            let id = try Int64.fetchOne(db, sql: "SELECT id FROM identities WHERE name = ?", arguments: [name])!
            try db.execute(sql: """
                INSERT INTO embeddings (identity_id, model, dimension, vector, source, created_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [id, model, embedding.count, Self.blob(embedding), source, now])
        }
        let key = IndexKey(model: model, kind: kind)
        indexes.withLock { all in
            all[key, default: Index(dimension: embedding.count)].names.append(name)
            all[key, default: Index(dimension: embedding.count)].vectors.append(contentsOf: embedding)
        }
    }

    /// Starts a new `unknown-N` cluster with this embedding; returns its name.
    public func newUnknown(embedding: [Float], model: String, source: String?) throws -> String {
        let name = try pool.write { db -> String in
            // Numbers are never reused, even after unknown-N is named or removed.
            try db.execute(sql: """
                INSERT INTO counters (name, value) VALUES ('unknown', 1)
                ON CONFLICT(name) DO UPDATE SET value = value + 1
                """)
            let number = try Int.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'unknown'")!
            let name = "unknown-\(number)"
            try db.execute(sql: "INSERT INTO identities (name, kind, created_ms) VALUES (?, 'unknown', ?)",
                           arguments: [name, Int64(Date().timeIntervalSince1970 * 1000)])
            return name
        }
        try add(embedding, to: name, kind: .unknown, model: model, source: source)
        return name
    }

    /// Adds an embedding to an unknown cluster while it has fewer than `limit` of this model.
    public func grow(unknown name: String, embedding: [Float], model: String, source: String?, limit: Int) throws {
        let count = indexes.withLock { all in
            all[IndexKey(model: model, kind: .unknown)]?.names.count(where: { $0 == name }) ?? 0
        }
        if count < limit { try add(embedding, to: name, kind: .unknown, model: model, source: source) }
    }

    /// Turns an unknown cluster into the person `name` (merging into them when enrolled):
    /// from now on the stranger is recognised by name.
    public func promote(unknown: String, to name: String) throws {
        try pool.write { db in
            guard let source = try Int64.fetchOne(db, sql: "SELECT id FROM identities WHERE name = ? AND kind = 'unknown'",
                                                   arguments: [unknown]) else {
                throw StoreError(message: "no unknown face called '\(unknown)'")
            }
            if let target = try Int64.fetchOne(db, sql: "SELECT id FROM identities WHERE name = ?", arguments: [name]) {
                try db.execute(sql: "UPDATE embeddings SET identity_id = ? WHERE identity_id = ?", arguments: [target, source])
                try db.execute(sql: "DELETE FROM identities WHERE id = ?", arguments: [source])
            } else {
                try db.execute(sql: "UPDATE identities SET name = ?, kind = 'person' WHERE id = ?", arguments: [name, source])
            }
            try db.execute(sql: "UPDATE events SET identity = ? WHERE identity = ?", arguments: [name, unknown])
        }
        try reload()
    }

    /// Removes a person (or unknown cluster) completely: every embedding, and — given the
    /// data directory — the snapshot files of their events, whose identity and snapshot
    /// references are cleared. False when nobody has that name.
    @discardableResult
    public func remove(name: String, dataDir: String? = nil) throws -> Bool {
        let (removed, files) = try pool.write { db -> (Bool, [String]) in
            try db.execute(sql: "DELETE FROM identities WHERE name = ?", arguments: [name])
            let removed = db.changesCount > 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT snapshot_face, snapshot_frame FROM events WHERE identity = ?
                """, arguments: [name])
            let files = rows.flatMap { [$0["snapshot_face"], $0["snapshot_frame"]] as [String?] }.compactMap { $0 }
            try db.execute(sql: """
                UPDATE events SET identity = NULL, snapshot_face = NULL, snapshot_frame = NULL WHERE identity = ?
                """, arguments: [name])
            return (removed || !files.isEmpty, files)
        }
        if let dataDir {
            for file in files {
                try? FileManager.default.removeItem(atPath: (dataDir as NSString).appendingPathComponent(file))
            }
        }
        if removed { try reload() }
        return removed
    }

    public func identities(kind: Kind? = nil) throws -> [Identity] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT identities.name, identities.kind, embeddings.model, COUNT(embeddings.id) AS n
                FROM identities LEFT JOIN embeddings ON embeddings.identity_id = identities.id
                GROUP BY identities.id, embeddings.model ORDER BY identities.kind, identities.name
                """)
            var result: [Identity] = []
            for row in rows {
                let name: String = row["name"]
                let rowKind = Kind(rawValue: row["kind"]) ?? .person
                if let kind, rowKind != kind { continue }
                if result.last?.name != name { result.append(Identity(name: name, kind: rowKind, embeddings: [:])) }
                if let model: String = row["model"] { result[result.count - 1].embeddings[model] = row["n"] }
            }
            return result
        }
    }

    /// The `k` nearest identities of `kind` (each by its closest embedding), nearest first.
    public func nearest(_ query: [Float], model: String, metric: DistanceMetric, k: Int,
                        kind: Kind = .person) -> [Candidate] {
        indexes.withLock { all in
            guard let index = all[IndexKey(model: model, kind: kind)], index.dimension == query.count else { return [] }
            var best: [String: Double] = [:]
            index.vectors.withUnsafeBufferPointer { vectors in
                query.withUnsafeBufferPointer { q in
                    let n = index.names.count, d = index.dimension
                    for i in 0..<n {
                        let v = UnsafeBufferPointer(rebasing: vectors[(i * d)..<((i + 1) * d)])
                        let dist = Self.distance(q, v, metric: metric)
                        let name = index.names[i]
                        if dist < best[name] ?? .infinity { best[name] = dist }
                    }
                }
            }
            return best.map { Candidate(name: $0.key, distance: $0.value) }
                .sorted { $0.distance < $1.distance }.prefix(k).map { $0 }
        }
    }

    /// Number of embeddings of `model` and `kind` in the index.
    public func count(model: String, kind: Kind = .person) -> Int {
        indexes.withLock { $0[IndexKey(model: model, kind: kind)]?.names.count ?? 0 }
    }

    static func distance(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, metric: DistanceMetric) -> Double {
        switch metric {
        case .cosine:
            var dot: Float = 0, na: Float = 0, nb: Float = 0
            for i in 0..<a.count {
                dot += a[i] * b[i]
                na += a[i] * a[i]
                nb += b[i] * b[i]
            }
            let denominator = (na * nb).squareRoot()
            return denominator > 0 ? Double(1 - dot / denominator) : 2
        case .euclidean:
            var sum: Float = 0
            for i in 0..<a.count {
                let diff = a[i] - b[i]
                sum += diff * diff
            }
            return Double(sum.squareRoot())
        }
    }

    static func blob(_ vector: [Float]) -> Data {
        vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
