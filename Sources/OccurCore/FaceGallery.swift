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

    /// Vectors of one model and kind, side by side, each with its owner and squared norm, so
    /// that one dot product per vector gives either metric.
    private struct Index {
        var dimension: Int
        var names: [String] = []
        var ownerOf: [String: Int32] = [:]
        var owners: [Int32] = []
        var vectors: [Float] = []
        var squaredNorms: [Float] = []

        init(dimension: Int) { self.dimension = dimension }

        mutating func append(_ vector: [Float], for name: String) {
            let owner: Int32
            if let known = ownerOf[name] { owner = known } else {
                owner = Int32(names.count)
                names.append(name)
                ownerOf[name] = owner
            }
            owners.append(owner)
            vectors.append(contentsOf: vector)
            squaredNorms.append(vector.reduce(0) { $0 + $1 * $1 })
        }

        var count: Int { owners.count }
    }

    let store: EventStore
    private let pool: DatabasePool
    /// Embeddings are sealed in the database (DataProtection) and open only in memory.
    private var protection: DataProtection { store.protection }
    private let indexes = Mutex<[IndexKey: Index]>([:])
    /// The gallery revision (a counter every change bumps) the in-memory index reflects.
    private let revision = Mutex<Int64>(0)

    public init(store: EventStore) throws {
        self.store = store
        pool = store.pool
        try reload()
    }

    /// Rebuilds the in-memory index from the database.
    public func reload() throws {
        let (rows, current) = try pool.read { db in
            (try Row.fetchAll(db, sql: """
                SELECT identities.name, identities.kind, embeddings.model, embeddings.dimension, embeddings.vector
                FROM embeddings JOIN identities ON identities.id = embeddings.identity_id
                ORDER BY embeddings.id
                """), try Self.revision(db))
        }
        var fresh: [IndexKey: Index] = [:]
        for row in rows {
            let key = IndexKey(model: row["model"], kind: Kind(rawValue: row["kind"]) ?? .person)
            let dimension: Int = row["dimension"]
            let vector = try Self.floats(protection.open(row["vector"], .embedding))
            guard vector.count == dimension else { continue }
            fresh[key, default: Index(dimension: dimension)].append(vector, for: row["name"])
        }
        indexes.withLock { $0 = fresh }
        revision.withLock { $0 = current }
    }

    /// Reloads when another process (`occur faces enroll` while `occur run` runs) changed
    /// the gallery since this index was built. One small query when nothing changed.
    @discardableResult
    public func refreshIfChanged() throws -> Bool {
        let current = try pool.read { try Self.revision($0) }
        guard current != revision.withLock({ $0 }) else { return false }
        try reload()
        return true
    }

    private static func revision(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'gallery'") ?? 0
    }

    /// Counts a change to the gallery; returns the new revision. Inside every write.
    private static func bump(_ db: Database) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO counters (name, value) VALUES ('gallery', 1)
            ON CONFLICT(name) DO UPDATE SET value = value + 1
            """)
        return try revision(db)
    }

    /// Adds one embedding for the person `name` (creating the identity when new).
    public func enroll(name: String, embedding: [Float], model: String, source: String?) throws {
        try add(embedding, to: name, kind: .person, model: model, source: source)
    }

    /// Enrols many (name, embedding) pairs of one model in a single transaction.
    public func enrollMany(_ entries: [(name: String, embedding: [Float])], model: String, source: String?) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try pool.write { db in
            let insertIdentity = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO identities (name, kind, created_ms) VALUES (?, 'person', ?)")
            let insertEmbedding = try db.cachedStatement(sql: """
                INSERT INTO embeddings (identity_id, model, dimension, vector, source, created_ms)
                VALUES ((SELECT id FROM identities WHERE name = ?), ?, ?, ?, ?, ?)
                """)
            for entry in entries {
                try insertIdentity.execute(arguments: [entry.name, now])
                try insertEmbedding.execute(arguments: [entry.name, model, entry.embedding.count,
                                                        protection.seal(Self.blob(entry.embedding), .embedding), source, now])
            }
            _ = try Self.bump(db)
        }
        try reload()
    }

    private func add(_ embedding: [Float], to name: String, kind: Kind, model: String, source: String?) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let newRevision = try pool.write { db -> Int64 in
            try db.execute(sql: "INSERT OR IGNORE INTO identities (name, kind, created_ms) VALUES (?, ?, ?)",
                           arguments: [name, kind.rawValue, now])
            let id = try Int64.fetchOne(db, sql: "SELECT id FROM identities WHERE name = ?", arguments: [name])!
            try db.execute(sql: """
                INSERT INTO embeddings (identity_id, model, dimension, vector, source, created_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [id, model, embedding.count, protection.seal(Self.blob(embedding), .embedding), source, now])
            return try Self.bump(db)
        }
        let key = IndexKey(model: model, kind: kind)
        indexes.withLock { $0[key, default: Index(dimension: embedding.count)].append(embedding, for: name) }
        // In step unless another writer changed the gallery meanwhile (then refresh reloads).
        revision.withLock { if $0 == newRevision - 1 { $0 = newRevision } }
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
        let count = indexes.withLock { all -> Int in
            guard let index = all[IndexKey(model: model, kind: .unknown)], let owner = index.ownerOf[name] else { return 0 }
            return index.owners.count(where: { $0 == owner })
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
            _ = try Self.bump(db)
        }
        try reload()
    }

    /// Removes a person (or unknown cluster) completely: every embedding and the identity row;
    /// the identity and snapshot references of their events are cleared, and — given the data
    /// directory — those snapshot files are deleted; given the face_db root, their folder there
    /// too (else the next start would enrol them again). Deleted rows are overwritten
    /// (secure_delete) and the write-ahead log is checkpointed and truncated, so the bytes do
    /// not linger in the database files. False when nobody has that name.
    @discardableResult
    public func remove(name: String, dataDir: String? = nil, faceDB: String? = nil) throws -> Bool {
        var removed = try !remove(names: [name], dataDir: dataDir).isEmpty
        if let faceDB, !name.contains("/"), name != ".", name != ".." {
            let folder = (faceDB as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: folder) {
                try FileManager.default.removeItem(atPath: folder)
                removed = true
            }
        }
        return removed
    }

    /// Removes each name as `remove(name:dataDir:)` does, in one transaction and with one
    /// index reload. Returns the names that were there.
    @discardableResult
    public func remove(names: [String], dataDir: String? = nil) throws -> [String] {
        let (removed, files) = try pool.write { db -> ([String], [String]) in
            var removed: [String] = [], files: [String] = []
            for name in names {
                try db.execute(sql: "DELETE FROM identities WHERE name = ?", arguments: [name])
                let existed = db.changesCount > 0
                let rows = try Row.fetchAll(db, sql: """
                    SELECT snapshot_face, snapshot_frame FROM events WHERE identity = ?
                    """, arguments: [name])
                let theirs = rows.flatMap { [$0["snapshot_face"], $0["snapshot_frame"]] as [String?] }.compactMap { $0 }
                try db.execute(sql: """
                    UPDATE events SET identity = NULL, snapshot_face = NULL, snapshot_frame = NULL WHERE identity = ?
                    """, arguments: [name])
                if existed || !theirs.isEmpty { removed.append(name) }
                files += theirs
            }
            if !removed.isEmpty { _ = try Self.bump(db) }
            return (removed, files)
        }
        if let dataDir {
            for file in files {
                try? FileManager.default.removeItem(atPath: (dataDir as NSString).appendingPathComponent(file))
            }
        }
        _ = try? pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        if !removed.isEmpty { try reload() }
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
            let queryNorm = query.reduce(0) { $0 + $1 * $1 }
            var best = [Float](repeating: .infinity, count: index.names.count)
            best.withUnsafeMutableBufferPointer { best in
                index.vectors.withUnsafeBufferPointer { vectors in
                    index.owners.withUnsafeBufferPointer { owners in
                        index.squaredNorms.withUnsafeBufferPointer { norms in
                            query.withUnsafeBufferPointer { q in
                                let d = index.dimension
                                for i in 0..<owners.count {
                                    let v = vectors.baseAddress! + i * d
                                    let dot = metric == .chiSquare ? 0 : Self.dot(q.baseAddress!, v, d)
                                    let dist: Float
                                    switch metric {
                                    case .chiSquare:
                                        dist = Self.chiSquare(q.baseAddress!, v, d)
                                    case .cosine:
                                        let denominator = (queryNorm * norms[i]).squareRoot()
                                        dist = denominator > 0 ? max(0, 1 - dot / denominator) : 2
                                    case .euclidean:
                                        dist = max(0, queryNorm + norms[i] - 2 * dot).squareRoot()
                                    }
                                    let owner = Int(owners[i])
                                    if dist < best[owner] { best[owner] = dist }
                                }
                            }
                        }
                    }
                }
            }
            // Keep the k smallest without sorting every identity.
            var top: [(owner: Int, distance: Float)] = []
            top.reserveCapacity(k + 1)
            for (owner, distance) in best.enumerated() where distance.isFinite {
                if top.count == k, let worst = top.last, distance >= worst.distance { continue }
                let at = top.firstIndex { distance < $0.distance } ?? top.count
                top.insert((owner, distance), at: at)
                if top.count > k { top.removeLast() }
            }
            return top.map { Candidate(name: index.names[$0.owner], distance: Double($0.distance)) }
        }
    }

    /// Number of embeddings of `model` and `kind` in the index.
    public func count(model: String, kind: Kind = .person) -> Int {
        indexes.withLock { $0[IndexKey(model: model, kind: kind)]?.count ?? 0 }
    }

    /// Dot product of two float vectors of length `n`, eight lanes at a time.
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            sum += va * vb
            i += 8
        }
        var total = sum.sum()
        while i < n {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    /// OpenCV's HISTCMP_CHISQR_ALT: sum of 2 (a - b)^2 / (a + b) over bins where a + b > 0.
    static func chiSquare(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for i in 0..<n {
            let total = a[i] + b[i]
            if total > 0 {
                let diff = a[i] - b[i]
                sum += 2 * diff * diff / total
            }
        }
        return sum
    }

    static func distance(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, metric: DistanceMetric) -> Double {
        if metric == .chiSquare { return Double(chiSquare(a.baseAddress!, b.baseAddress!, a.count)) }
        let dot = Self.dot(a.baseAddress!, b.baseAddress!, a.count)
        let na = Self.dot(a.baseAddress!, a.baseAddress!, a.count), nb = Self.dot(b.baseAddress!, b.baseAddress!, b.count)
        switch metric {
        case .cosine:
            let denominator = (na * nb).squareRoot()
            return denominator > 0 ? Double(max(0, 1 - dot / denominator)) : 2
        case .euclidean, .chiSquare:
            return Double(max(0, na + nb - 2 * dot).squareRoot())
        }
    }

    static func blob(_ vector: [Float]) -> Data {
        vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
