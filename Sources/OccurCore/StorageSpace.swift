import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization

/// What the host does as the data dir's disk fills up: snapshots stop first, events go on as
/// long as SQLite can write them, and both resume when space returns.
///
/// - Snapshots stop while the free space on the data dir's filesystem (statvfs, what an
///   unprivileged user may use) is below `storage.min_free_bytes`, or after a snapshot write
///   failed for lack of space. Each snapshot not taken is counted; its event is logged without
///   one. They resume once free space is back at the reserve (after a failed write: and at
///   least `failureMargin` more than was free then, so a reserve of 0 does not flap).
/// - Events are written into the reserve. When SQLite reports the disk full, the EventWriter
///   holds the rows in memory (`storage.max_held_events`) and retries every flush interval.
/// - Each change is logged once, shown by `occur_storage_full{store}`, and stored in the event
///   log as a host event (no camera, no plugin): `storage_full` when snapshots or events stop,
///   `storage_recovered` when both run again. While the database is full such an event is
///   held with the others and written when space returns.
///
/// `run()` measures the free space every `checkInterval` seconds.
public final class StorageSpace: Service, Sendable {
    private struct State {
        var snapshotsStopped = false
        var eventsHeld = false
        /// Free bytes needed before snapshots resume.
        var resumeAt: Int64 = 0
    }

    /// What a check or a report changed; announced outside the lock.
    private enum Change {
        case snapshotsStopped(reason: String)
        case snapshotsResumed(recovered: Bool)
        case eventsHeld(count: Int)
        case eventsWritable(recovered: Bool)
    }

    public let dataDir: String
    public let minFreeBytes: Int64
    /// Free space above a failed write's before snapshots resume. 8 MiB: some 40 snapshot pairs.
    static let failureMargin: Int64 = 8 << 20
    private let checkInterval: Double
    private let freeBytes: @Sendable () -> Int64?
    private let metrics: HostMetrics?
    private let logger: Logger
    private let report: @Sendable (_ kind: String, _ payload: [String: Any]) -> Void
    private let state = Mutex(State())

    /// `freeBytes` measures the free space (default: statvfs on `dataDir`; nil when it cannot).
    /// `report` stores a host event in the log (EventBus.logHostEvent).
    public init(dataDir: String, minFreeBytes: Int64, checkInterval: Double = 1, metrics: HostMetrics? = nil,
                logger: Logger, freeBytes: (@Sendable () -> Int64?)? = nil,
                report: @escaping @Sendable (_ kind: String, _ payload: [String: Any]) -> Void = { _, _ in }) {
        self.dataDir = dataDir
        self.minFreeBytes = minFreeBytes
        self.checkInterval = checkInterval
        self.freeBytes = freeBytes ?? { Self.availableBytes(at: dataDir) }
        self.metrics = metrics
        self.logger = logger
        self.report = report
        metrics?.storageFull("snapshots", false)
        metrics?.storageFull("events", false)
    }

    /// False while snapshots are stopped.
    public var allowsSnapshots: Bool { state.withLock { !$0.snapshotsStopped } }

    /// False while the event writer holds events the database refused.
    public var eventsWritable: Bool { state.withLock { !$0.eventsHeld } }

    /// Measures the free space and stops or resumes snapshots. Returns the free bytes.
    @discardableResult
    public func check() -> Int64? {
        guard let free = freeBytes() else { return nil }
        metrics?.storageFreeBytes(free)
        let change = state.withLock { s -> Change? in
            if !s.snapshotsStopped, free < minFreeBytes {
                s.snapshotsStopped = true
                s.resumeAt = minFreeBytes
                return .snapshotsStopped(reason: "low_space")
            }
            if s.snapshotsStopped, free >= s.resumeAt {
                s.snapshotsStopped = false
                return .snapshotsResumed(recovered: !s.eventsHeld)
            }
            return nil
        }
        announce(change, free: free)
        return free
    }

    /// A snapshot could not be written for lack of space: snapshots stop now.
    func snapshotWriteFailed() {
        let free = freeBytes() ?? 0
        let change = state.withLock { s -> Change? in
            s.resumeAt = max(s.resumeAt, minFreeBytes, free + Self.failureMargin)
            guard !s.snapshotsStopped else { return nil }
            s.snapshotsStopped = true
            return .snapshotsStopped(reason: "snapshot_write_failed")
        }
        announce(change, free: free)
    }

    /// The database refused a write for lack of space; `held` events wait in memory.
    func databaseFull(held: Int) {
        let change = state.withLock { s -> Change? in
            guard !s.eventsHeld else { return nil }
            s.eventsHeld = true
            return .eventsHeld(count: held)
        }
        announce(change, free: freeBytes() ?? 0)
    }

    /// The database took the held events again.
    func databaseWritable() {
        let change = state.withLock { s -> Change? in
            guard s.eventsHeld else { return nil }
            s.eventsHeld = false
            return .eventsWritable(recovered: !s.snapshotsStopped)
        }
        announce(change, free: freeBytes() ?? 0)
    }

    private func announce(_ change: Change?, free: Int64) {
        guard let change else { return }
        let space = "\(free) bytes free, reserve \(minFreeBytes)"
        switch change {
        case let .snapshotsStopped(reason):
            logger.warning("storage: snapshots stopped (\(reason == "low_space" ? "free space below storage.min_free_bytes" : "a snapshot write failed: no space left")); \(space); events are still written")
            metrics?.storageFull("snapshots", true)
            report("storage_full", ["stopped": "snapshots", "reason": reason, "free_bytes": free, "min_free_bytes": minFreeBytes])
        case let .eventsHeld(count):
            logger.error("storage: the event log's disk is full; \(count) events held in memory and retried until space returns; \(space)")
            metrics?.storageFull("events", true)
            report("storage_full", ["stopped": "events", "reason": "database_full", "held_events": count, "free_bytes": free,
                                    "min_free_bytes": minFreeBytes])
        case let .snapshotsResumed(recovered):
            logger.notice("storage: snapshots resumed; \(space)")
            metrics?.storageFull("snapshots", false)
            if recovered { reportRecovered(free: free) }
        case let .eventsWritable(recovered):
            logger.notice("storage: the event log is written again; \(space)")
            metrics?.storageFull("events", false)
            if recovered { reportRecovered(free: free) }
        }
    }

    private func reportRecovered(free: Int64) {
        report("storage_recovered", ["free_bytes": free, "min_free_bytes": minFreeBytes])
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            check()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(self.checkInterval)) }
        }
    }

    /// Bytes an unprivileged user may still write on the filesystem holding `path`, or nil.
    static func availableBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// True for the errors a full disk causes: SQLite's SQLITE_FULL, ENOSPC and EDQUOT
    /// (directly or as a Foundation file error's cause).
    static func isDiskFull(_ error: Error) -> Bool {
        if let error = error as? DatabaseError { return error.resultCode == .SQLITE_FULL }
        if let error = error as? ProtectionError, let code = error.code { return code == ENOSPC || code == EDQUOT }
        if let error = error as? CocoaError, error.code == .fileWriteOutOfSpace { return true }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain, ns.code == Int(ENOSPC) || ns.code == Int(EDQUOT) { return true }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? Error { return isDiskFull(underlying) }
        return false
    }
}
