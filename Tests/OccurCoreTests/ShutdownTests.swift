import Foundation
import GRDB
import Testing
import OccurTestSupport
@testable import OccurCore

/// SIGTERM under load: plugin queues drain up to `shutdown_timeout`, the log is flushed, exit 0.
@Suite(.serialized) struct ShutdownTests {
    /// The figures `occur run` prints when it ends.
    struct Summary {
        var processed = 0
        var delivered = 0, droppedByCooldown = 0, droppedByOverflow = 0, droppedAtShutdown = 0
        var events: [String: Int] = [:]

        init(_ text: String, camera: String, plugin: String) throws {
            let frames = try #require(text.firstMatch(of: try Regex("camera \(camera): [0-9]+ frames read, ([0-9]+) processed")))
            processed = Int(frames.output[1].substring!)!
            let counts = try #require(text.firstMatch(of: try Regex(
                "plugin \(plugin): ([0-9]+) delivered, ([0-9]+) dropped by cooldown, ([0-9]+) dropped by overflow, ([0-9]+) dropped at shutdown")))
            (delivered, droppedByCooldown, droppedByOverflow, droppedAtShutdown) = (
                Int(counts.output[1].substring!)!, Int(counts.output[2].substring!)!,
                Int(counts.output[3].substring!)!, Int(counts.output[4].substring!)!)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("  events: ") })
            for item in line.dropFirst("  events: ".count).split(separator: ", ") {
                let parts = item.split(separator: " ")
                events[String(parts[0])] = Int(parts[1])
            }
        }
    }

    @Test func sigtermUnderLoadDrainsToTheDeadlineFlushesTheLogAndExitsZero() throws {
        let deadline = 2.0
        // A live-like camera that never ends, and a slow plugin (0.5 s a frame) with a big queue.
        let setup = try EndToEndTests.Setup(cameras: """
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
                loop: true
                realtime: true
            recognition: { backend: none, snapshots: false }
            api: { enabled: false }
            shutdown_timeout: \(deadline)
            """, plugins: """
              fixture_ok:
                enabled: true
                library: libFixtureOK.so
                events: [frame]
                queue: { capacity: 100 }
                config: { record: "RECORD", sleep_ms: 500, emit: tick }
            """)
        let host = try HostProcess(["run", "--quiet"], in: setup.dir)
        // Once the plugin has handled 4 frames (2 s), its queue holds far more than it can
        // handle in the 2 s it gets after the signal.
        let started = Date()
        while lineCount(setup.record) < 4, host.process.isRunning, Date().timeIntervalSince(started) < 60 { usleep(20_000) }
        try #require(lineCount(setup.record) >= 4, "stderr: \(host.stderr)")
        host.send(SIGTERM)
        let signalled = Date()
        #expect(host.waitForExit(within: 30), "still running 30 s after SIGTERM")
        let seconds = Date().timeIntervalSince(signalled)
        #expect(host.process.terminationReason == .exit)
        #expect(host.process.terminationStatus == 0, "stderr: \(host.stderr)")

        let summary = try Summary(host.stdout, camera: "video", plugin: "fixture_ok")
        // Every frame event went to the plugin and was either delivered or counted as dropped.
        #expect(summary.delivered == lineCount(setup.record))
        #expect(summary.droppedByCooldown == 0)
        #expect(summary.delivered + summary.droppedByOverflow + summary.droppedAtShutdown == summary.processed,
                "\(summary)")
        #expect(summary.droppedAtShutdown > 0, "the deadline should have cut the queue: \(summary)")
        // Everything published, up to the plugin's last result, is in an intact database.
        let db = try DatabaseQueue(path: setup.database)
        let (integrity, stored) = try db.read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check"),
             try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM events GROUP BY kind")
                .reduce(into: [String: Int]()) { $0[$1["kind"]] = $1["n"] })
        }
        #expect(integrity == ["ok"])
        #expect(stored == summary.events)
        #expect(stored["tick"] == summary.delivered)
        print(String(format: "SIGTERM under load: exited 0 after %.2f s (shutdown_timeout %.1f s); %d frames, %d delivered, %d dropped by overflow, %d dropped at shutdown; %d events in the log",
                     seconds, deadline, summary.processed, summary.delivered, summary.droppedByOverflow,
                     summary.droppedAtShutdown, stored.values.reduce(0, +)))
    }

    /// A fixture_ok worker that records what it receives.
    func slowWorker(sleepMilliseconds: Int, timeout: Double = 5) throws -> (PluginWorker, String) {
        let record = Fixtures.temporaryDirectory("record") + "/events.txt"
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        var settings = PluginSettings.fixture("fixture_ok", library: library.path,
                                              config: #"{"record": "\#(record)", "sleep_ms": \#(sleepMilliseconds)}"#)
        settings.queueCapacity = 100
        settings.timeout = timeout
        return (try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }, record)
    }

    @Test func theDeadlineDropsWhatIsStillQueuedAndCountsIt() async throws {
        // 30 s of work queued against a 0.5 s deadline: some is left however slowly the test is scheduled.
        let (worker, record) = try slowWorker(sleepMilliseconds: 1000)
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...30 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: 1)) }
        let abandoned = await dispatcher.stop(deadline: 0.5, logger: Fixtures.logger)
        #expect(abandoned.isEmpty)
        #expect(worker.hasStopped)
        let c = worker.counters
        #expect(c.delivered + c.droppedAtShutdown == 30)
        #expect(c.droppedAtShutdown > 0 && c.delivered > 0)
        #expect(RecordedEvent.read(record).count == Int(c.delivered))
        dispatcher.publish(TestEvents.faceAppeared(sequence: 31, track: 1))  // after the close
        #expect(worker.counters.droppedAtShutdown == c.droppedAtShutdown + 1)
    }

    @Test func aPluginStuckInOnEventIsLeftBehindAfterTwiceItsTimeout() async throws {
        // 30 s a call: still running however slowly this machine schedules the test (the worker is
        // left behind, and its thread sleeps on after the test).
        let (worker, record) = try slowWorker(sleepMilliseconds: 30_000, timeout: 0.3)
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...3 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: 1)) }
        while RecordedEvent.read(record).isEmpty { try await Task.sleep(for: .milliseconds(10)) }  // the first call runs
        let abandoned = await dispatcher.stop(deadline: 0.1, logger: Fixtures.logger)
        #expect(abandoned == ["fixture_ok"])
        #expect(!worker.hasStopped)
        #expect(worker.counters.droppedAtShutdown == 2)
    }
}
