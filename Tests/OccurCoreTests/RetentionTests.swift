import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

/// Retention removes exactly what is past each limit — events, unknown clusters, snapshot
/// files by age and by total size — on a real database with real (sealed) JPEG snapshots.
@Suite struct RetentionTests {
    /// A data directory with an event log, a gallery, and snapshot files written like the
    /// SnapshotStore writes them (`snapshots/<day>/<camera>/<n>-<label>-{face,frame}.jpg.sealed`).
    final class Site {
        let dir = Fixtures.temporaryDirectory("retention")
        let store: EventStore
        let gallery: FaceGallery
        let now = Date()
        private var sequence = 0
        /// One real face crop and one real full frame, sealed as with encryption on.
        static let images: (face: Data, frame: Data) = {
            let photo = try! Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
            let half = Box(x: 0, y: 0, width: Double(photo.width) / 2, height: Double(photo.height) / 2)
            return (try! photo.cropped(to: half)!.jpeg(), try! photo.jpeg())
        }()

        init() throws {
            store = try EventStore(path: dir + "/occur.db", encryption: true)
            gallery = try FaceGallery(store: store)
        }

        func date(daysAgo: Double) -> Date { now.addingTimeInterval(-daysAgo * 86_400) }

        func sweeper(_ yaml: String) throws -> RetentionSweeper {
            let configuration = try HostConfiguration(ConfigNode.parse("retention:\n" + yaml, file: dir + "/occur.yaml"))
            return RetentionSweeper(configuration: configuration.retention, store: store, gallery: gallery,
                                    logger: Fixtures.logger)
        }

        /// Logs an event `daysAgo` days back; with `snapshots` its face crop and frame are written too.
        @discardableResult
        func event(daysAgo: Double, identity: String? = nil, snapshots: Bool = false,
                   sealed: Bool = true) throws -> (id: Int64, files: [String]) {
            sequence += 1
            let time = date(daysAgo: daysAgo)
            var files: [String] = []
            if snapshots {
                let day = SnapshotStore.dayFormatter.string(from: time)
                let base = "snapshots/\(day)/door/\(sequence)-\(identity ?? "x")"
                let suffix = sealed ? DataProtection.sealedExtension : ""
                files = [base + "-face.jpg" + suffix, base + "-frame.jpg" + suffix]
                for (file, image) in zip(files, [Self.images.face, Self.images.frame]) {
                    try write(sealed ? store.protection.seal(image, .image) : image, to: file)
                }
            }
            let id = try store.pool.write { db -> Int64 in
                try db.execute(sql: """
                    INSERT INTO events (time_ms, camera, kind, identity, snapshot_face, snapshot_frame)
                    VALUES (?, 'door', ?, ?, ?, ?)
                    """, arguments: [Int64(time.timeIntervalSince1970 * 1000),
                                     identity?.hasPrefix("unknown-") == true ? "face_unknown" : "face_recognized",
                                     identity, files.first, files.last])
                return db.lastInsertedRowID
            }
            return (id, files)
        }

        func write(_ data: Data, to file: String, modified: Date? = nil) throws {
            let url = URL(fileURLWithPath: dir).appendingPathComponent(file)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
            if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: url.path) }
        }

        func exists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/" + file) }
        func size(_ file: String) -> Int64 {
            (try! FileManager.default.attributesOfItem(atPath: dir + "/" + file)[.size] as! NSNumber).int64Value
        }

        /// Every snapshot file left, relative to the data directory, sorted.
        func snapshotFiles() -> [String] {
            (FileManager.default.enumerator(atPath: dir + "/snapshots")?.allObjects as? [String] ?? [])
                .filter { $0.contains(".jpg") }.map { "snapshots/" + $0 }.sorted()
        }

        func row(_ id: Int64) throws -> Row? {
            try store.pool.read { try Row.fetchOne($0, sql: "SELECT * FROM events WHERE id = ?", arguments: [id]) }
        }

        func eventIDs() throws -> [Int64] {
            try store.pool.read { try Int64.fetchAll($0, sql: "SELECT id FROM events ORDER BY id") }
        }

        /// An unknown cluster created `createdDaysAgo` days back (identity and embedding).
        func unknown(createdDaysAgo days: Double, embedding: [Float]) throws -> String {
            let name = try gallery.newUnknown(embedding: embedding, model: "test-model", source: nil)
            let ms = Int64(date(daysAgo: days).timeIntervalSince1970 * 1000)
            try store.pool.write { db in
                try db.execute(sql: "UPDATE identities SET created_ms = ? WHERE name = ?", arguments: [ms, name])
                try db.execute(sql: """
                    UPDATE embeddings SET created_ms = ? WHERE identity_id = (SELECT id FROM identities WHERE name = ?)
                    """, arguments: [ms, name])
            }
            return name
        }
    }

    static func vector(_ hot: Int) -> [Float] { (0..<8).map { $0 == hot ? 1 : 0 } }

    @Test func eventsPastTheLimitGoWithTheirSnapshotsAndNothingElse() throws {
        let site = try Site()
        let old = try site.event(daysAgo: 40, identity: "obama", snapshots: true)
        try site.event(daysAgo: 30.01)
        let oldPlain = try site.event(daysAgo: 31, identity: "obama", snapshots: true, sealed: false)
        let justInside = try site.event(daysAgo: 29.99, identity: "obama", snapshots: true)
        let recent = try site.event(daysAgo: 1, identity: "obama", snapshots: true)
        try AuditLog(store: site.store).record(actor: "cli", action: "faces.enroll", target: "obama", result: "ok")
        let removedFiles = old.files + oldPlain.files
        let removedBytes = removedFiles.map(site.size).reduce(0, +)

        let report = try site.sweeper("  events_days: 30").sweep(now: site.now)

        #expect(try site.eventIDs() == [justInside.id, recent.id])
        #expect(report.events == .init(count: 3, files: 4, bytes: removedBytes))
        #expect(removedFiles.allSatisfy { !site.exists($0) })
        #expect(site.snapshotFiles() == (justInside.files + recent.files).sorted())
        #expect(report.unknownClusters == .init() && report.oldSnapshots == .init() && report.excessSnapshots == .init())
        // The day directories of the deleted snapshots went with them; the audit log is never swept.
        let days = try FileManager.default.contentsOfDirectory(atPath: site.dir + "/snapshots").sorted()
        #expect(days == [justInside, recent].map { String($0.files[0].split(separator: "/")[1]) }.sorted())
        #expect(report.emptyDirectories == 4)   // two days, each with its camera directory
        #expect(try AuditLog(store: site.store).entries().count == 1)
    }

    @Test func unknownClustersNotSeenForTooLongAreRemovedCompletely() throws {
        let site = try Site()
        // Seen 10 days ago (created 20): past 7 days.
        let stale = try site.unknown(createdDaysAgo: 20, embedding: Self.vector(0))
        let staleEvent = try site.event(daysAgo: 10, identity: stale, snapshots: true)
        // Created 20 days ago, seen 2 days ago: kept.
        let active = try site.unknown(createdDaysAgo: 20, embedding: Self.vector(1))
        let activeOld = try site.event(daysAgo: 15, identity: active, snapshots: true)
        let activeEvent = try site.event(daysAgo: 2, identity: active, snapshots: true)
        // Never in an event: by creation. 10 days: removed; 3 days: kept.
        let silentOld = try site.unknown(createdDaysAgo: 10, embedding: Self.vector(2))
        let silentNew = try site.unknown(createdDaysAgo: 3, embedding: Self.vector(3))
        // An enrolled person is never an unknown cluster, however old.
        try site.gallery.enroll(name: "obama", embedding: Self.vector(4), model: "test-model", source: nil)
        try site.store.pool.write { try $0.execute(sql: "UPDATE identities SET created_ms = 0 WHERE name = 'obama'") }
        let sizes = staleEvent.files.map(site.size).reduce(0, +)
        #expect(site.gallery.count(model: "test-model", kind: .unknown) == 4)

        let report = try site.sweeper("  unknown_days: 7").sweep(now: site.now)

        #expect(report.unknownNames == [stale, silentOld])
        #expect(report.unknownClusters == .init(count: 2, files: 2, bytes: sizes))
        #expect(try site.gallery.identities().map(\.name).sorted() == [active, silentNew, "obama"].sorted())
        // The running host's index follows: the removed clusters can no longer be matched.
        #expect(site.gallery.count(model: "test-model", kind: .unknown) == 2)
        let nearest = site.gallery.nearest(Self.vector(0), model: "test-model", metric: .cosine, k: 10, kind: .unknown)
        #expect(Set(nearest.map(\.name)) == [active, silentNew])
        // Their events stay (events_days is not set), without identity or snapshots.
        let row = try #require(try site.row(staleEvent.id))
        #expect(row["identity"] as String? == nil && row["snapshot_face"] as String? == nil)
        #expect(staleEvent.files.allSatisfy { !site.exists($0) })
        #expect(site.snapshotFiles() == (activeOld.files + activeEvent.files).sorted())
        #expect(try site.row(activeOld.id)?["identity"] as String? == active)
        let embeddings = try site.store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM embeddings") }
        #expect(embeddings == 3)
    }

    @Test func snapshotsPastTheirAgeGoByEventTimeOrFileTime() throws {
        let site = try Site()
        let old = try site.event(daysAgo: 20, identity: "obama", snapshots: true)
        let young = try site.event(daysAgo: 10, identity: "obama", snapshots: true, sealed: false)
        // Files no event names: their modification time counts.
        let orphanOld = "snapshots/2001-01-01/door/1-x-face.jpg.sealed"
        let orphanNew = "snapshots/\(SnapshotStore.dayFormatter.string(from: site.now))/door/2-x-face.jpg"
        try site.write(Site.images.face, to: orphanOld, modified: site.date(daysAgo: 15))
        try site.write(Site.images.face, to: orphanNew)
        // An old file that merely sits there is kept when an event names it as young:
        // the event's time wins over the file's.
        try FileManager.default.setAttributes([.modificationDate: site.date(daysAgo: 30)],
                                              ofItemAtPath: site.dir + "/" + young.files[0])
        let bytes = (old.files + [orphanOld]).map(site.size).reduce(0, +)

        let report = try site.sweeper("  snapshots_days: 14").sweep(now: site.now)

        #expect(report.oldSnapshots == .init(count: 3, files: 3, bytes: bytes))
        #expect(site.snapshotFiles() == (young.files + [orphanNew]).sorted())
        // The event stays, without its snapshots; the other keeps them.
        let row = try #require(try site.row(old.id))
        #expect(row["snapshot_face"] as String? == nil && row["snapshot_frame"] as String? == nil)
        #expect(row["identity"] as String? == "obama")
        #expect(try site.row(young.id)?["snapshot_face"] as String? == young.files[0])
        #expect(try site.eventIDs() == [old.id, young.id])
        #expect(!FileManager.default.fileExists(atPath: site.dir + "/snapshots/2001-01-01"))
    }

    @Test func overTheSizeCapTheOldestSnapshotsGoFirstUntilTheRestFits() throws {
        let site = try Site()
        let events = try [50, 40, 30, 20, 10].map { try site.event(daysAgo: Double($0), identity: "obama", snapshots: true) }
        let all = events.flatMap(\.files)
        let total = all.map(site.size).reduce(0, +)
        // One byte less than everything but the oldest event's pair: its two files and the
        // next event's face crop (the older of that pair by name) must go, nothing more.
        let cap = total - events[0].files.map(site.size).reduce(0, +) - 1
        let gone = events[0].files + [events[1].files[0]]
        let goneBytes = gone.map(site.size).reduce(0, +), lastGone = site.size(events[1].files[0])

        let report = try site.sweeper("  snapshots_max_bytes: \(cap)").sweep(now: site.now)

        #expect(report.excessSnapshots == .init(count: 3, files: 3, bytes: goneBytes))
        #expect(site.snapshotFiles() == all.filter { !gone.contains($0) }.sorted())
        #expect(try site.row(events[1].id)?["snapshot_face"] as String? == nil)
        #expect(try site.row(events[1].id)?["snapshot_frame"] as String? == events[1].files[1])
        #expect(try site.eventIDs().count == 5)
        let left = site.snapshotFiles().map(site.size).reduce(0, +)
        #expect(left <= cap && left + lastGone > cap)

        // Under the cap now: a second sweep removes nothing.
        #expect(try site.sweeper("  snapshots_max_bytes: \(cap)").sweep(now: site.now).isEmpty)
    }

    @Test func withoutLimitsNothingIsEverRemoved() throws {
        let site = try Site()
        let old = try site.event(daysAgo: 3000, identity: "obama", snapshots: true)
        _ = try site.unknown(createdDaysAgo: 3000, embedding: Self.vector(0))
        let sweeper = RetentionSweeper(configuration: HostConfiguration().retention, store: site.store,
                                       gallery: site.gallery, logger: Fixtures.logger)
        #expect(!sweeper.configuration.hasLimits)
        #expect(try sweeper.sweep(now: site.now).isEmpty)
        #expect(try site.eventIDs() == [old.id])
        #expect(site.snapshotFiles() == old.files.sorted())
        #expect(try site.gallery.identities().count == 1)
    }

    @Test func theServiceSweepsAtStartLogsWhatWentAndStopsOnShutdown() async throws {
        let site = try Site()
        let old = try site.event(daysAgo: 40, identity: "obama", snapshots: true)
        let kept = try site.event(daysAgo: 1)
        let logs = LogCapture()
        let configuration = try HostConfiguration(ConfigNode.parse("retention: { events_days: 30 }", file: "occur.yaml"))
        let sweeper = RetentionSweeper(configuration: configuration.retention, store: site.store, gallery: site.gallery,
                                       logger: Logger(label: "test") { _ in logs })
        let group = ServiceGroup(services: [sweeper], logger: Fixtures.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // The first sweep runs at start, not after the first interval (an hour).
            let deadline = ContinuousClock.now + .seconds(30)
            while !logs.messages.contains(where: { $0.contains("removed") }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try site.eventIDs() == [kept.id])
        #expect(!site.exists(old.files[0]))
        #expect(logs.messages.contains { $0.contains("retention: removed 1 event (2 snapshot files,") })
    }

    // MARK: Configuration

    func retention(_ yaml: String) throws -> RetentionConfiguration {
        try HostConfiguration(ConfigNode.parse(yaml, file: "/srv/occur/occur.yaml")).retention
    }

    func retentionError(_ yaml: String) -> ConfigError? {
        #expect(throws: ConfigError.self) { try retention(yaml) }
    }

    @Test func configurationHasDefaultsAndReadsSizes() throws {
        let defaults = try retention("cameras: {}")
        #expect(defaults == RetentionConfiguration())
        #expect(defaults.eventsDays == 0 && defaults.snapshotsMaxBytes == 0 && defaults.sweepInterval == 3600)
        let c = try retention("""
            retention:
              events_days: 30
              unknown_days: 7
              snapshots_days: 14
              snapshots_max_bytes: 2GB
              sweep_interval: 600
            """)
        #expect(c.eventsDays == 30 && c.unknownDays == 7 && c.snapshotsDays == 14 && c.sweepInterval == 600)
        #expect(c.snapshotsMaxBytes == 2 << 30)
        let sizes = ["1048576": 1 << 20, "512K": 512 << 10, "500M": 500 << 20, "1.5G": 3 << 29, "3GiB": 3 << 30,
                     "10kb": 10 << 10, "2T": 2 << 40, "100B": 100, "0": 0]
        for (text, bytes) in sizes {
            #expect(try retention("retention: { snapshots_max_bytes: \(text) }").snapshotsMaxBytes == Int64(bytes), "\(text)")
        }
    }

    @Test func configurationErrorsNameFileLineAndKey() throws {
        let size = retentionError("retention:\n  events_days: 30\n  snapshots_max_bytes: 2 parsecs\n")
        #expect(size?.description.hasPrefix("/srv/occur/occur.yaml:3:") == true)
        #expect(size?.keyPath == "retention.snapshots_max_bytes")
        #expect(size?.message == "expected a size in bytes: a whole number, or a number with K, M, G or T "
                + "(powers of 1024), e.g. 2G; got '2 parsecs'")
        for bad in ["1.5", "-1G", "G", "2iB", "\"\""] {
            #expect(retentionError("retention: { snapshots_max_bytes: \(bad) }")?.keyPath == "retention.snapshots_max_bytes",
                    "\(bad)")
        }
        let negative = retentionError("retention:\n  unknown_days: -1\n")
        #expect(negative?.line == 2 && negative?.keyPath == "retention.unknown_days")
        #expect(negative?.message == "must be between 0 and 1000000")
        let fraction = retentionError("retention:\n  events_days: 1.5\n")
        #expect(fraction?.message == "expected a whole number, got '1.5'")
        let interval = retentionError("retention:\n  sweep_interval: 0\n")
        #expect(interval?.keyPath == "retention.sweep_interval")
        // A cluster's last sighting is its newest event: it cannot outlive the events.
        let outlives = retentionError("retention:\n  events_days: 7\n  unknown_days: 30\n")
        #expect(outlives?.line == 3 && outlives?.keyPath == "retention.unknown_days")
        #expect(outlives?.message.hasSuffix("set unknown_days to at most 7") == true)
        #expect(try retention("retention: { events_days: 7, unknown_days: 7 }").unknownDays == 7)
        let typo = retentionError("retention:\n  event_days: 30\n")
        #expect(typo?.line == 2 && typo?.keyPath == "retention.event_days")
        #expect(typo?.message.contains("unknown key (known here: events_days, ") == true)
    }
}

/// Keeps every logged message, for tests.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var messages: [String] { lock.withLock { stored } }
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lock.withLock { stored.append("\(event.message)") }
    }
}
