import Foundation
import GRDB

/// Who did what to which target, and how it went: every enrolment, naming, deletion, token
/// change, plugin toggle, snapshot download, refused plugin library and failed
/// authentication. Append-only: the database refuses UPDATE and DELETE on it (triggers).
public struct AuditLog: Sendable {
    public struct Entry: Sendable, Equatable, Codable {
        public var id: Int64
        public var timeMilliseconds: Int64
        /// The API token that acted; nil for the command line, the host itself, or no valid token.
        public var tokenID: Int64?
        /// "token 3 (ops laptop)", "cli", "host", "anonymous".
        public var actor: String
        /// "faces.enroll", "faces.remove", "faces.name", "tokens.create", "tokens.revoke",
        /// "plugins.enable", "plugins.disable", "snapshots.download", "plugins.load", "auth".
        public var action: String
        public var target: String?
        /// "ok", "denied", "unauthorized", "refused", "not_found", "error".
        public var result: String
        public var detail: String?

        public var time: Date { Date(timeIntervalSince1970: Double(timeMilliseconds) / 1000) }
    }

    let store: EventStore

    public init(store: EventStore) { self.store = store }

    public func record(actor: String, tokenID: Int64? = nil, action: String, target: String?, result: String,
                       detail: String? = nil) throws {
        try store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO audit (time_ms, token_id, actor, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [Int64(Date().timeIntervalSince1970 * 1000), tokenID, actor, action, target, result, detail])
        }
    }

    /// Entries oldest first: the newest `limit` since `since`.
    public func entries(since: Date? = nil, limit: Int = 100) throws -> [Entry] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM audit WHERE time_ms >= ? ORDER BY id DESC LIMIT ?
                """, arguments: [since.map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0, max(0, limit)])
                .map { row in
                    Entry(id: row["id"], timeMilliseconds: row["time_ms"], tokenID: row["token_id"], actor: row["actor"],
                          action: row["action"], target: row["target"], result: row["result"], detail: row["detail"])
                }
                .reversed()
        }
    }
}
