import Foundation
import GRDB
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

/// The event log through SIGKILL and a full disk: real `occur` processes, a real tmpfs.
@Suite(.serialized) struct StorageFaultTests {
    /// A small seeded generator: the kill moments are varied but the same on every run.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `PRAGMA integrity_check`, the number of `tick` results and the newest one's time_ms.
    static func inspect(_ database: String) throws -> (integrity: [String], ticks: Int, newest: Int64?) {
        guard FileManager.default.fileExists(atPath: database) else { return (["ok"], 0, nil) }
        let db = try DatabaseQueue(path: database)
        return try db.read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check"),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE kind = 'tick'") ?? 0,
             try Int64.fetchOne(db, sql: "SELECT MAX(time_ms) FROM events WHERE kind = 'tick'"))
        }
    }

    @Test func theEventLogSurvivesSIGKILLDuringHeavyWriting() throws {
        let setup = try EndToEndTests.Setup(cameras: """
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
                loop: true
                realtime: true
            recognition: { backend: none, snapshots: false }
            api: { enabled: false }
            """, plugins: "")
        // Everything appended more than a flush interval and one batch's write before the kill
        // must be on disk. A second of margin covers the write and a loaded machine.
        let bound = StorageConfiguration().flushInterval + 1.0
        var random = SplitMix64(state: 0x0CC0_5EED)
        var checked = 0, worstLost = [1: 0, 100: 0], worstTailMs: Int64 = 0, totalTicks = 0
        for run in 1...10 {
            // fixture_ok stores results for every frame: 100 each (2,400 events a second,
            // batches fill up) in odd runs, one each (the flush interval writes) in even runs.
            let perFrame = run.isMultiple(of: 2) ? 1 : 100
            try """
                plugins_dir: ./plugins
                plugins:
                  fixture_ok:
                    enabled: true
                    library: libFixtureOK.so
                    events: [frame]
                    queue: { capacity: 8 }
                    config: { record: "\(setup.record)", emit: tick, emit_count: \(perFrame) }
                """.write(toFile: setup.plugins, atomically: true, encoding: .utf8)
            let linesBefore = lineCount(setup.record)
            let ticksBefore = try Self.inspect(setup.database).ticks
            let host = try HostProcess(["run", "--quiet"], in: setup.dir)
            let startWaiting = Date()
            while lineCount(setup.record) == linesBefore, host.process.isRunning,
                  Date().timeIntervalSince(startWaiting) < 60 { usleep(20_000) }
            try #require(lineCount(setup.record) > linesBefore, "run \(run): no frame reached the plugin; stderr: \(host.stderr)")

            // Kill at a varied moment, sampling how many frames the plugin had handled meanwhile.
            let killAt = Date(timeIntervalSinceNow: Double.random(in: 0.2...4.5, using: &random))
            var samples: [(time: Date, lines: Int)] = []
            while Date() < killAt {
                samples.append((Date(), lineCount(setup.record) - linesBefore))
                usleep(50_000)
            }
            host.send(SIGKILL)
            let killed = Date()
            host.process.waitUntilExit()
            #expect(host.process.terminationReason == .uncaughtSignal)

            let (integrity, ticks, newest) = try Self.inspect(setup.database)
            #expect(integrity == ["ok"], "run \(run): \(integrity)")
            let stored = ticks - ticksBefore
            totalTicks = ticks
            // The plugin writes its record line before it emits: all but the last handled frame's
            // results had been published when the sample was taken.
            if let sample = samples.last(where: { killed.timeIntervalSince($0.time) >= bound }) {
                let published = max(0, sample.lines - 1) * perFrame
                #expect(stored >= published,
                        "run \(run): \(published) results published \(bound) s before the kill, only \(stored) on disk")
                checked += 1
            }
            let handled = lineCount(setup.record) - linesBefore
            worstLost[perFrame] = max(worstLost[perFrame]!, handled * perFrame - stored)
            if let newest { worstTailMs = max(worstTailMs, Int64(killed.timeIntervalSince1970 * 1000) - newest) }
        }
        #expect(checked >= 3, "too few runs lasted past the bound to check it")
        print("SIGKILL x10: integrity ok; \(totalTicks) results stored; bound checked in \(checked) runs; "
              + "at most \(worstLost[100]!) (heavy) / \(worstLost[1]!) (light) results lost per kill, "
              + "newest stored at most \(worstTailMs) ms before the kill (bound \(Int(bound * 1000)) ms)")
    }

    /// The pieces `occur run` wires together for storage, on a data dir of `dir`.
    struct Storage {
        let store: EventStore
        let metrics = HostMetrics()
        let space: StorageSpace
        let snapshots: SnapshotStore
        let writer: EventWriter
        let bus: EventBus

        init(dir: String, minFreeBytes: Int64, maxHeldEvents: Int = 100_000) throws {
            store = try EventStore(path: dir + "/occur.db", encryption: false)
            var storage = StorageConfiguration()
            storage.batchSize = 64
            storage.flushInterval = 0.05
            storage.maxHeldEvents = maxHeldEvents
            let log = WeakBox<EventBus>()
            space = StorageSpace(dataDir: dir, minFreeBytes: minFreeBytes, metrics: metrics, logger: Fixtures.logger,
                                 report: { log.value?.logHostEvent(kind: $0, cameraID: "", payload: $1) })
            snapshots = SnapshotStore(dataDir: dir, cooldown: 0, protection: store.protection, space: space, metrics: metrics,
                                      logger: Fixtures.logger)
            writer = EventWriter(store: store, configuration: storage, metrics: metrics, space: space, logger: Fixtures.logger)
            bus = EventBus(writer: writer)
            log.value = bus
            writer.start()
            snapshots.start()
        }

        /// Books a snapshot of Obama's face; nil when it was skipped.
        func snapshot(_ sequence: UInt64) throws -> SnapshotStore.Paths? {
            let frame = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
            return snapshots.request(frame: frame, face: Face(box: Box(x: 200, y: 230, width: 270, height: 400)),
                                     label: "obama", camera: "door", sequence: sequence, timestampNanos: Int64(sequence),
                                     wallTime: Date())
        }

        func publish(_ range: ClosedRange<Int>) {
            for i in range { bus.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: Int64(i))) }
        }

        func hostEvents() throws -> [StoredEvent] {
            var query = EventStore.Query()
            query.kinds = ["storage_full", "storage_recovered"]
            return try store.events(query)
        }

        func metric(_ line: String) -> Bool { metrics.registry.emitToString().contains(line + "\n") }
    }

    static func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date(timeIntervalSinceNow: seconds)
        while Date() < end {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func aFullDiskStopsSnapshotsFirstHoldsEventsAndResumesWhenSpaceReturns() throws {
        let disk = try TinyDisk(megabytes: 32)
        defer { disk.unmount() }
        let s = try Storage(dir: disk.path, minFreeBytes: 4 << 20)
        defer { s.writer.stopAndFlush(); s.snapshots.stopAndDrain() }

        // Room: snapshots and events are written.
        s.space.check()
        #expect(try s.snapshot(1) != nil)
        s.publish(1...500)
        #expect(Self.waitUntil(10) { s.writer.eventsWritten == 500 && s.snapshots.snapshotsWritten == 1 })

        // Below the 4 MiB reserve: snapshots stop, events go on.
        try disk.fill(leaving: 2 << 20)
        s.space.check()
        #expect(!s.space.allowsSnapshots)
        #expect(try s.snapshot(2) == nil)
        #expect(s.snapshots.snapshotsSkipped == 1)
        s.publish(501...1000)
        #expect(Self.waitUntil(10) { s.writer.eventsWritten == 1001 })  // and storage_full
        #expect(s.metric(#"occur_storage_full{store="snapshots"} 1.0"#))
        #expect(s.metric(#"occur_snapshots_skipped_total{reason="disk_full"} 1"#))

        // Full: SQLite refuses the writes; the events are held in memory, none lost.
        try disk.fill(leaving: 0)
        s.publish(1001...21_000)
        #expect(Self.waitUntil(30) { s.writer.eventsHeld > 0 && !s.space.eventsWritable })
        #expect(s.writer.eventsLost == 0)
        #expect(s.metric(#"occur_storage_full{store="events"} 1.0"#))
        let storedWhileFull = try s.store.count()
        #expect(storedWhileFull < 21_001)

        // Space returns: everything held is written, in order, and snapshots resume.
        disk.release()
        s.space.check()
        #expect(Self.waitUntil(30) { s.writer.eventsHeld == 0 && s.space.eventsWritable })
        #expect(try Self.waitUntil(10) { try s.hostEvents().count == 3 })
        #expect(try s.snapshot(3) != nil)
        s.writer.stopAndFlush()
        s.snapshots.stopAndDrain()
        #expect(s.writer.eventsLost == 0)
        #expect(s.snapshots.snapshotsWritten == 2)
        var query = EventStore.Query()
        query.kinds = ["face_appeared"]
        query.limit = 100_000
        let appeared = try s.store.events(query)
        #expect(appeared.map(\.trackID) == (1...21_000).map { Int64($0) })
        let host = try s.hostEvents()
        #expect(host.map(\.kind) == ["storage_full", "storage_full", "storage_recovered"])
        #expect(host.first?.payload.contains(#""stopped":"snapshots""#) == true)
        #expect(host.first?.payload.contains(#""reason":"low_space""#) == true)
        #expect(host.dropFirst().first?.payload.contains(#""stopped":"events""#) == true)
        #expect(host.allSatisfy { $0.camera == "" && $0.plugin == nil })
        #expect(s.metric(#"occur_storage_full{store="snapshots"} 0.0"#))
        #expect(s.metric(#"occur_storage_full{store="events"} 0.0"#))
        #expect(try Self.inspect(disk.path + "/occur.db").integrity == ["ok"])
    }

    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func aSnapshotThatMeetsAFullDiskStopsSnapshotsAndLeavesNoHalfPair() throws {
        let disk = try TinyDisk(megabytes: 16)
        defer { disk.unmount() }
        let s = try Storage(dir: disk.path, minFreeBytes: 0)  // no reserve: only the failed write tells
        defer { s.writer.stopAndFlush(); s.snapshots.stopAndDrain() }
        try disk.fill(leaving: 0)
        s.space.check()
        #expect(s.space.allowsSnapshots)
        let paths = try #require(try s.snapshot(1))
        #expect(Self.waitUntil(10) { !s.space.allowsSnapshots })
        #expect(s.snapshots.snapshotsSkipped == 1 && s.snapshots.snapshotsWritten == 0)
        for path in [paths.face, paths.frame] {
            #expect(!FileManager.default.fileExists(atPath: disk.path + "/" + path))
        }
        #expect(try s.snapshot(2) == nil)
        disk.release()
        s.space.check()
        #expect(s.space.allowsSnapshots)
        #expect(try s.snapshot(3) != nil)
        s.snapshots.stopAndDrain()
        s.writer.stopAndFlush()
        #expect(s.snapshots.snapshotsWritten == 1)
        let host = try s.hostEvents()
        #expect(host.contains { $0.kind == "storage_full" && $0.payload.contains(#""reason":"snapshot_write_failed""#) })
        #expect(host.last?.kind == "storage_recovered")
    }

    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func heldEventsBeyondTheBoundOrStillHeldAtExitAreCountedAsLost() throws {
        let disk = try TinyDisk(megabytes: 16)
        defer { disk.unmount() }
        let s = try Storage(dir: disk.path, minFreeBytes: 0, maxHeldEvents: 1000)
        try disk.fill(leaving: 0)
        s.publish(1...20_000)
        // Every event (the 20,000 and storage_full) is stored, held or lost; 1,000 at most are held.
        #expect(try Self.waitUntil(30) { try s.store.count() + s.writer.eventsHeld + s.writer.eventsLost == 20_001 })
        let (stored, lost) = (try s.store.count(), s.writer.eventsLost)
        #expect(!s.space.eventsWritable && s.writer.eventsHeld == 1000 && lost > 0)
        s.writer.stopAndFlush()  // the disk is still full
        #expect(s.writer.eventsLost == lost + 1000 && s.writer.eventsHeld == 0)
        #expect(s.metric(#"occur_events_lost_total{reason="disk_full"} \#(lost + 1000)"#))
        #expect(try s.store.count() == stored)
    }

    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func theHostOnAFillingDiskHoldsItsEventsAndRecoversWithoutLosingAny() throws {
        let disk = try TinyDisk(megabytes: 48)
        defer { disk.unmount() }
        let setup = try EndToEndTests.Setup(cameras: """
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
                loop: true
                realtime: true
            recognition: { backend: none }
            api: { enabled: false }
            storage: { min_free_bytes: 8M, flush_interval: 0.2 }
            """, plugins: """
              fixture_ok:
                enabled: true
                library: libFixtureOK.so
                events: [frame]
                config: { emit: tick }
            """)
        let config = try String(contentsOfFile: setup.config, encoding: .utf8)
        try config.replacingOccurrences(of: "data_dir: ./data", with: "data_dir: \(disk.path)")
            .write(toFile: setup.config, atomically: true, encoding: .utf8)
        let database = disk.path + "/occur.db"
        /// Results stored so far, and the host events in order.
        func log() throws -> (ticks: Int, host: [StoredEvent]) {
            let store = try EventStore(path: database, readOnly: true)
            var query = EventStore.Query()
            query.kinds = ["storage_full", "storage_recovered"]
            var ticks = EventStore.Query()
            ticks.kinds = ["tick"]
            ticks.limit = 1_000_000
            return (try store.events(ticks).count, try store.events(query))
        }
        let host = try HostProcess(["run", "--quiet"], in: setup.dir)
        defer { if host.process.isRunning { host.waitForExit(within: 0) } }
        // (The database may exist before its tables do: a failed read is just "not yet".)
        #expect(try Self.waitUntil(60) { ((try? log())?.ticks ?? 0) > 0 },
                "stderr: \(host.stderr)")

        // Below the 8 MiB reserve: storage_full (snapshots) is logged and events go on.
        try disk.fill(leaving: 4 << 20)
        #expect(try Self.waitUntil(10) { try log().host.count == 1 })
        let afterLow = try log().ticks
        #expect(try Self.waitUntil(10) { try log().ticks > afterLow })

        // Full: SQLite refuses; the host holds the events and says so.
        try disk.fill(leaving: 0)
        #expect(Self.waitUntil(20) { host.stderr.contains("the event log's disk is full") }, "stderr: \(host.stderr)")
        usleep(500_000)

        // Space returns: what was held is written, then storage_recovered.
        disk.release()
        #expect(try Self.waitUntil(20) { try log().host.count == 3 })
        host.send(SIGTERM)
        #expect(host.waitForExit(within: 30))
        #expect(host.process.terminationStatus == 0, "stderr: \(host.stderr)")
        let summary = try ShutdownTests.Summary(host.stdout, camera: "video", plugin: "fixture_ok")
        let (ticks, events) = try log()
        #expect(ticks == summary.delivered && summary.events["tick"] == ticks)
        #expect(!host.stdout.contains(" lost"), "\(host.stdout)")
        #expect(events.map(\.kind) == ["storage_full", "storage_full", "storage_recovered"])
        #expect(events.first?.payload.contains(#""stopped":"snapshots""#) == true)
        #expect(events.dropFirst().first?.payload.contains(#""stopped":"events""#) == true)
        #expect(try Self.inspect(database).integrity == ["ok"])
    }

    @Test func snapshotsStopBelowTheReserveAndResumeAboveIt() {
        let free = Mutex<Int64>(500 << 20)
        let reports = Mutex<[String]>([])
        let space = StorageSpace(dataDir: "/unused", minFreeBytes: 200 << 20, logger: Fixtures.logger,
                                 freeBytes: { free.withLock { $0 } }, report: { kind, _ in reports.withLock { $0.append(kind) } })
        space.check()
        #expect(space.allowsSnapshots)
        free.withLock { $0 = 150 << 20 }
        space.check()
        space.check()
        #expect(!space.allowsSnapshots)
        space.databaseFull(held: 10)
        free.withLock { $0 = 300 << 20 }
        space.check()
        #expect(space.allowsSnapshots && !space.eventsWritable)  // snapshots back; events not yet
        space.databaseWritable()
        #expect(reports.withLock { $0 } == ["storage_full", "storage_full", "storage_recovered"])
    }

    @Test func storageAndShutdownKeysAreReadWithTheirDefaults() throws {
        let defaults = HostConfiguration()
        #expect(defaults.storage.minFreeBytes == 200 << 20 && defaults.storage.maxHeldEvents == 100_000)
        #expect(defaults.shutdownTimeout == 5)
        let parsed = try HostConfiguration(ConfigNode.parse("""
            shutdown_timeout: 2.5
            storage: { min_free_bytes: 1G, max_held_events: 500 }
            """, file: "occur.yaml"))
        #expect(parsed.shutdownTimeout == 2.5)
        #expect(parsed.storage.minFreeBytes == 1 << 30 && parsed.storage.maxHeldEvents == 500)
    }
}
