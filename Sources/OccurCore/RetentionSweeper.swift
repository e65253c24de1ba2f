import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Enforces `retention:` (RetentionConfiguration): removes events, unknown clusters and
/// snapshot files past their limits, once when the host starts and then every
/// `sweep_interval` seconds, and logs what each sweep removed. Nothing else is touched: the
/// audit log, enrolled people and data inside the limits stay.
///
/// Order within a sweep: unknown clusters (judged by their events before any is deleted),
/// events, snapshot files by age, then by total size, then empty directories under
/// `snapshots/`. Rows are changed before files are deleted, so a crash in between leaves a
/// stray file (which the snapshot limits, when set, remove later) rather than an event
/// naming a missing file.
public final class RetentionSweeper: Service, Sendable {
    /// What one limit removed.
    public struct Removed: Sendable, Equatable {
        /// Event rows, unknown clusters or snapshot files, by limit.
        public var count = 0
        /// Snapshot files deleted.
        public var files = 0
        /// Their size (bytes).
        public var bytes: Int64 = 0
    }

    /// What one sweep removed, per limit.
    public struct Report: Sendable, Equatable, CustomStringConvertible {
        /// Events past `events_days` (count = rows), with the snapshot files they named.
        public var events = Removed()
        /// Clusters past `unknown_days` (count = clusters), with their events' snapshot files.
        public var unknownClusters = Removed()
        public var unknownNames: [String] = []
        /// Snapshot files past `snapshots_days`.
        public var oldSnapshots = Removed()
        /// Snapshot files removed, oldest first, to get within `snapshots_max_bytes`.
        public var excessSnapshots = Removed()
        /// Directories under `snapshots/` that were empty.
        public var emptyDirectories = 0

        public var isEmpty: Bool { self == Report() }

        public var description: String {
            func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
            func files(_ r: Removed) -> String { "\(count(r.files, "snapshot file")), \(formatBytes(r.bytes))" }
            var parts: [String] = []
            if events.count > 0 { parts.append("\(count(events.count, "event")) (\(files(events)))") }
            if unknownClusters.count > 0 {
                parts.append("\(count(unknownClusters.count, "unknown cluster")) "
                             + "[\(unknownNames.joined(separator: ", "))] (\(files(unknownClusters)))")
            }
            if oldSnapshots.files > 0 { parts.append("\(files(oldSnapshots)) past their age") }
            if excessSnapshots.files > 0 { parts.append("\(files(excessSnapshots)) over the size cap") }
            if emptyDirectories > 0 {
                parts.append("\(emptyDirectories) empty \(emptyDirectories == 1 ? "directory" : "directories")")
            }
            return parts.isEmpty ? "nothing" : parts.joined(separator: "; ")
        }
    }

    public let configuration: RetentionConfiguration
    private let store: EventStore
    private let gallery: FaceGallery
    private let logger: Logger
    private var dataDir: String { store.dataDir }

    /// Snapshots live under `store.dataDir`; unknown clusters are removed through `gallery`,
    /// so its in-memory index follows.
    public init(configuration: RetentionConfiguration, store: EventStore, gallery: FaceGallery, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.gallery = gallery
        self.logger = logger
    }

    /// Sweeps at once and then every `sweep_interval` until graceful shutdown. A failed sweep
    /// is logged and tried again at the next interval; it never stops the host. With no limit
    /// set it only waits for shutdown.
    public func run() async throws {
        guard configuration.hasLimits else {
            try? await gracefulShutdown()
            return
        }
        logger.info("retention: \(limitsText), swept every \(Int(configuration.sweepInterval)) s")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // The sweep blocks on SQLite and the file system: its own thread, off Swift's pool.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    sweepAndLog()
                    done.resume()
                }
                thread.name = "retention"
                thread.start()
            }
            let interval = configuration.sweepInterval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
        }
    }

    private func sweepAndLog() {
        do {
            let report = try sweep()
            if report.isEmpty {
                logger.debug("retention: nothing past its limit")
            } else {
                logger.info("retention: removed \(report)")
            }
        } catch {
            logger.error("retention sweep failed (tried again in \(Int(configuration.sweepInterval)) s): \(error)")
        }
    }

    private var limitsText: String {
        let c = configuration
        var limits: [String] = []
        if c.eventsDays > 0 { limits.append("events \(c.eventsDays) days") }
        if c.unknownDays > 0 { limits.append("unknown clusters \(c.unknownDays) days") }
        if c.snapshotsDays > 0 { limits.append("snapshots \(c.snapshotsDays) days") }
        if c.snapshotsMaxBytes > 0 { limits.append("snapshots at most \(formatBytes(c.snapshotsMaxBytes))") }
        return limits.joined(separator: ", ")
    }

    /// Removes everything past a limit as of `now`; returns what went.
    public func sweep(now: Date = Date()) throws -> Report {
        var report = Report()
        let nowMs = Int64(now.timeIntervalSince1970 * 1000)
        func cutoff(days: Int) -> Int64 { nowMs - Int64(days) * 86_400_000 }
        let c = configuration
        if c.unknownDays > 0 { try removeUnknownClusters(lastSeenBefore: cutoff(days: c.unknownDays), into: &report) }
        if c.eventsDays > 0 { try removeEvents(before: cutoff(days: c.eventsDays), into: &report.events) }
        if c.snapshotsDays > 0 || c.snapshotsMaxBytes > 0 {
            try removeSnapshots(before: c.snapshotsDays > 0 ? cutoff(days: c.snapshotsDays) : nil,
                                maxBytes: c.snapshotsMaxBytes, into: &report)
        }
        report.emptyDirectories = removeEmptyDirectories(today: SnapshotStore.dayFormatter.string(from: now))
        return report
    }

    // MARK: Unknown clusters

    /// Clusters whose newest sign of life — their last event, their newest embedding, or
    /// their creation — is older than `cutoff`, removed as `occur faces remove` does.
    private func removeUnknownClusters(lastSeenBefore cutoff: Int64, into report: inout Report) throws {
        let (names, files) = try store.pool.read { db -> ([String], [String]) in
            let names = try String.fetchAll(db, sql: """
                SELECT name FROM identities AS i
                WHERE kind = 'unknown' AND MAX(created_ms,
                    COALESCE((SELECT MAX(time_ms) FROM events WHERE identity = i.name), 0),
                    COALESCE((SELECT MAX(created_ms) FROM embeddings WHERE identity_id = i.id), 0)) < ?
                ORDER BY id
                """, arguments: [cutoff])
            var files: [String] = []
            for name in names {
                for row in try Row.fetchAll(db, sql: """
                    SELECT snapshot_face, snapshot_frame FROM events WHERE identity = ?
                    """, arguments: [name]) {
                    files += [row["snapshot_face"], row["snapshot_frame"]].compactMap { $0 as String? }
                }
            }
            return (names, files)
        }
        guard !names.isEmpty else { return }
        let sizes = files.map { ($0, fileSize($0)) }
        report.unknownNames = try gallery.remove(names: names, dataDir: dataDir)
        report.unknownClusters.count = report.unknownNames.count
        for case let (file, size?) in sizes where fileSize(file) == nil {
            report.unknownClusters.files += 1
            report.unknownClusters.bytes += size
        }
    }

    // MARK: Events

    /// Deletes events older than `cutoff`, a batch per transaction so the event writer is
    /// never held up long, and the snapshot files they name.
    private func removeEvents(before cutoff: Int64, into removed: inout Removed) throws {
        let batch = 5000
        while true {
            let (count, files) = try store.pool.write { db -> (Int, [String]) in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT id, snapshot_face, snapshot_frame FROM events WHERE time_ms < ? ORDER BY time_ms LIMIT ?
                    """, arguments: [cutoff, batch])
                let delete = try db.cachedStatement(sql: "DELETE FROM events WHERE id = ?")
                var files: [String] = []
                for row in rows {
                    try delete.execute(arguments: [row["id"] as Int64])
                    files += [row["snapshot_face"], row["snapshot_frame"]].compactMap { $0 as String? }
                }
                return (rows.count, files)
            }
            removed.count += count
            for file in files { deleteFile(file, into: &removed) }
            if count < batch { break }
        }
    }

    // MARK: Snapshots

    private struct SnapshotFile {
        /// Relative to the data directory, as events name it.
        var path: String
        var bytes: Int64
        /// The time of the event naming it, else the file's modification time (ms).
        var time: Int64
    }

    /// Snapshot files older than `cutoff` (when given), then the oldest until they total at
    /// most `maxBytes` (when above 0). The events that named them keep their rows.
    private func removeSnapshots(before cutoff: Int64?, maxBytes: Int64, into report: inout Report) throws {
        let (files, references) = try snapshotFiles()
        var kept: [SnapshotFile] = []
        var old: [SnapshotFile] = []
        for file in files {
            if let cutoff, file.time < cutoff { old.append(file) } else { kept.append(file) }
        }
        try remove(old, references: references, into: &report.oldSnapshots)

        guard maxBytes > 0 else { return }
        var total = kept.reduce(0) { $0 + $1.bytes }
        guard total > maxBytes else { return }
        var excess: [SnapshotFile] = []
        for file in kept.sorted(by: { ($0.time, $0.path) < ($1.time, $1.path) }) where total > maxBytes {
            excess.append(file)
            total -= file.bytes
        }
        try remove(excess, references: references, into: &report.excessSnapshots)
    }

    /// Every snapshot file (`*.jpg`, `*.jpg.sealed`) under `snapshots/`, and which event
    /// columns name each.
    private func snapshotFiles() throws -> ([SnapshotFile], [String: [(id: Int64, column: String)]]) {
        var references: [String: [(id: Int64, column: String)]] = [:]
        var eventTimes: [String: Int64] = [:]
        try store.pool.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT id, time_ms, snapshot_face, snapshot_frame FROM events
                WHERE snapshot_face IS NOT NULL OR snapshot_frame IS NOT NULL
                """)
            while let row = try rows.next() {
                for column in ["snapshot_face", "snapshot_frame"] {
                    guard let path: String = row[column] else { continue }
                    references[path, default: []].append((row["id"], column))
                    let time: Int64 = row["time_ms"]
                    eventTimes[path] = min(eventTimes[path] ?? time, time)
                }
            }
        }
        let root = (dataDir as NSString).appendingPathComponent("snapshots")
        var files: [SnapshotFile] = []
        for case let relative as String in FileManager.default.enumerator(atPath: root) ?? .init() {
            guard relative.hasSuffix(".jpg") || relative.hasSuffix(".jpg" + DataProtection.sealedExtension) else { continue }
            let path = "snapshots/" + relative
            var info = stat()
            guard lstat((dataDir as NSString).appendingPathComponent(path), &info) == 0,
                  info.st_mode & S_IFMT == S_IFREG else { continue }
            let modified = Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
            files.append(SnapshotFile(path: path, bytes: Int64(info.st_size), time: eventTimes[path] ?? modified))
        }
        return (files, references)
    }

    /// Clears the events' references to `files`, then deletes them.
    private func remove(_ files: [SnapshotFile], references: [String: [(id: Int64, column: String)]],
                        into removed: inout Removed) throws {
        guard !files.isEmpty else { return }
        try store.pool.write { db in
            for file in files {
                for reference in references[file.path] ?? [] {
                    // The column name is one of two literals, never input.
                    try db.execute(sql: "UPDATE events SET \(reference.column) = NULL WHERE id = ? AND \(reference.column) = ?",
                                   arguments: [reference.id, file.path])
                }
            }
        }
        for file in files { deleteFile(file.path, into: &removed) }
        removed.count = removed.files
    }

    // MARK: Files

    private func absolute(_ relative: String) -> String { (dataDir as NSString).appendingPathComponent(relative) }

    private func fileSize(_ relative: String) -> Int64? {
        var info = stat()
        return lstat(absolute(relative), &info) == 0 ? Int64(info.st_size) : nil
    }

    private func deleteFile(_ relative: String, into removed: inout Removed) {
        guard let size = fileSize(relative) else { return }
        do {
            try FileManager.default.removeItem(atPath: absolute(relative))
            removed.files += 1
            removed.bytes += size
        } catch {
            logger.warning("retention: could not delete \(absolute(relative)): \(error)")
        }
    }

    /// Removes empty directories under `snapshots/`, deepest first, except today's day
    /// directory (the snapshot writer may be about to fill it). rmdir(2) removes only empty
    /// directories, so a file written meanwhile is never lost.
    private func removeEmptyDirectories(today: String) -> Int {
        let root = absolute("snapshots")
        var directories: [String] = []
        for case let relative as String in FileManager.default.enumerator(atPath: root) ?? .init() {
            guard relative != today, !relative.hasPrefix(today + "/") else { continue }
            var info = stat()
            let path = (root as NSString).appendingPathComponent(relative)
            if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { directories.append(path) }
        }
        var removed = 0
        for path in directories.sorted(by: { $0.count > $1.count }) where rmdir(path) == 0 { removed += 1 }
        return removed
    }
}

/// Bytes in powers of 1024: `512 B`, `3.1 MiB`, `2.0 GiB`.
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}
