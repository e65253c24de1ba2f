import Foundation
import GRDB
import Synchronization

/// Enrolled people and their embeddings: rows in the database (float32 blobs tagged with
/// model and dimension) and an in-memory index per model for nearest-neighbour search.
/// Embeddings of different models are never compared. Thread-safe.
public final class FaceGallery: Sendable {
    public struct Identity: Sendable, Equatable {
        public var name: String
        /// Embeddings per model.
        public var embeddings: [String: Int]
    }

    /// One identity's best distance to a query.
    public struct Candidate: Sendable, Equatable {
        public var name: String
        public var distance: Double
    }

    /// Vectors of one model, side by side.
    private struct Index {
        var names: [String] = []
        var vectors: [Float] = []
        var dimension: Int
    }

    private let pool: DatabasePool
    private let indexes = Mutex<[String: Index]>([:])

    public init(store: EventStore) throws {
        pool = store.pool
        try reload()
    }

    /// Rebuilds the in-memory index from the database.
    public func reload() throws {
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT identities.name, embeddings.model, embeddings.dimension, embeddings.vector
                FROM embeddings JOIN identities ON identities.id = embeddings.identity_id
                ORDER BY embeddings.id
                """)
        }
        var fresh: [String: Index] = [:]
        for row in rows {
            let model: String = row["model"], dimension: Int = row["dimension"]
            let vector = Self.floats(row["vector"])
            guard vector.count == dimension else { continue }
            fresh[model, default: Index(dimension: dimension)].names.append(row["name"])
            fresh[model, default: Index(dimension: dimension)].vectors.append(contentsOf: vector)
        }
        indexes.withLock { $0 = fresh }
    }

    /// Adds one embedding for `name` (creating the identity when new).
    public func enroll(name: String, embedding: [Float], model: String, source: String?) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO identities (name, created_ms) VALUES (?, ?)", arguments: [name, now])
            let id = try Int64.fetchOne(db, sql: "SELECT id FROM identities WHERE name = ?", arguments: [name])!
            try db.execute(sql: """
                INSERT INTO embeddings (identity_id, model, dimension, vector, source, created_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [id, model, embedding.count, Self.blob(embedding), source, now])
        }
        indexes.withLock { all in
            all[model, default: Index(dimension: embedding.count)].names.append(name)
            all[model, default: Index(dimension: embedding.count)].vectors.append(contentsOf: embedding)
        }
    }

    /// Removes a person and every embedding of theirs. Returns false when unknown.
    @discardableResult
    public func remove(name: String) throws -> Bool {
        let removed = try pool.write { db in
            try db.execute(sql: "DELETE FROM identities WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
        if removed { try reload() }
        return removed
    }

    public func identities() throws -> [Identity] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT identities.name, embeddings.model, COUNT(embeddings.id) AS n
                FROM identities LEFT JOIN embeddings ON embeddings.identity_id = identities.id
                GROUP BY identities.id, embeddings.model ORDER BY identities.name
                """)
            var result: [Identity] = []
            for row in rows {
                let name: String = row["name"]
                if result.last?.name != name { result.append(Identity(name: name, embeddings: [:])) }
                if let model: String = row["model"] { result[result.count - 1].embeddings[model] = row["n"] }
            }
            return result
        }
    }

    /// The `k` nearest identities (each by its closest embedding), nearest first.
    public func nearest(_ query: [Float], model: String, metric: DistanceMetric, k: Int) -> [Candidate] {
        indexes.withLock { all in
            guard let index = all[model], index.dimension == query.count else { return [] }
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

    /// Number of embeddings of `model` in the index.
    public func count(model: String) -> Int { indexes.withLock { $0[model]?.names.count ?? 0 } }

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
