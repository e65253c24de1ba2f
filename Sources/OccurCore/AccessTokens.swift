import Crypto
import Foundation
import GRDB

/// API bearer tokens. A token is "occur_" and 32 random bytes in base64url, shown once when
/// made; the database keeps only its SHA-256. Roles are ordered: viewer (read) < operator
/// (enrol, name, enable/disable plugins) < admin (tokens, deletion, audit, settings).
public struct AccessTokens: Sendable {
    public enum Role: String, Sendable, Comparable, CaseIterable, Codable {
        case viewer, `operator`, admin
        public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
        private var rank: Int { Role.allCases.firstIndex(of: self)! }
    }

    public struct Token: Sendable, Equatable, Codable {
        public var id: Int64
        public var name: String
        public var role: Role
        public var createdMilliseconds: Int64
        public var revoked: Bool
    }

    let store: EventStore

    public init(store: EventStore) { self.store = store }

    static let prefix = "occur_"

    /// Makes a token; returns its record and the secret (the only time it is seen).
    public func create(role: Role, name: String) throws -> (Token, secret: String) {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let secret = Self.prefix + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let id = try store.pool.write { db -> Int64 in
            try db.execute(sql: "INSERT INTO tokens (name, role, hash, created_ms) VALUES (?, ?, ?, ?)",
                           arguments: [name, role.rawValue, Self.hash(secret), now])
            return db.lastInsertedRowID
        }
        return (Token(id: id, name: name, role: role, createdMilliseconds: now, revoked: false), secret)
    }

    /// The live token whose secret this is, or nil.
    public func authenticate(_ secret: String) throws -> Token? {
        guard secret.hasPrefix(Self.prefix), secret.count < 128 else { return nil }
        return try store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE hash = ? AND revoked_ms IS NULL",
                             arguments: [Self.hash(secret)]).map(Self.token)
        }
    }

    public func list() throws -> [Token] {
        try store.pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY id").map(Self.token) }
    }

    /// Revokes a token; false when there is no live token with that id.
    @discardableResult
    public func revoke(id: Int64) throws -> Bool {
        try store.pool.write { db in
            try db.execute(sql: "UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                           arguments: [Int64(Date().timeIntervalSince1970 * 1000), id])
            return db.changesCount > 0
        }
    }

    /// The first run's admin token: made when no token exists yet, written to `path` with mode
    /// 0600. Returns the path when it made one.
    public func bootstrapAdmin(writingTo path: String) throws -> String? {
        let none = try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tokens") ?? 0 } == 0
        guard none else { return nil }
        let (_, secret) = try create(role: .admin, name: "first-run admin")
        try PrivateFiles.write(Data((secret + "\n").utf8), to: path, describing: "the admin token file")
        return path
    }

    static func hash(_ secret: String) -> Data { Data(SHA256.hash(data: Data(secret.utf8))) }

    private static func token(_ row: Row) -> Token {
        Token(id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .viewer,
              createdMilliseconds: row["created_ms"], revoked: (row["revoked_ms"] as Int64?) != nil)
    }
}
