import Foundation
import Logging
import Testing
import OccurTestSupport
@testable import OccurCore

/// `isolation: process`: plugins in child runners, fed real 640x480 frames of opencv-doc's
/// vtest.avi through shared memory. Misbehaving fixtures (segfault, abort, hang, leak) run
/// isolated beside an in-process fixture_ok that must receive every event.
@Suite(.serialized) struct IsolationTests {
    static let frames: [Frame] = {
        // The tests run inside the test binary: runners are the `occur` the package built.
        IsolatedPlugin.runnerExecutable = Fixtures.occurExecutable
        return (try? Benchmarks.decodeFrames(of: Fixtures.openCVData + "/vtest.avi", count: 8, width: 640,
                                             height: 480)) ?? []
    }()

    /// A worker for a fixture plugin (ids are those the fixtures declare).
    func worker(_ fixture: String, id: String, config: String = "{}", isolated: Bool, logger: Logger = Fixtures.logger,
                _ adjust: (inout PluginSettings) -> Void = { _ in },
                onEmit: @escaping @Sendable (PluginResult, Event?) -> Void = { _, _ in }) throws -> PluginWorker {
        let library = try PluginLibrary.load(path: Fixtures.plugin(fixture), expectedID: id)
        var settings = PluginSettings.fixture(id, library: library.path, config: config)
        settings.isolation = isolated ? .process : .inProcess
        settings.queueCapacity = 1000
        settings.restartBackoffMax = 0.05  // restarts at once: the tests wait for them anyway
        adjust(&settings)
        return try PluginWorker(library: library, settings: settings, logger: logger, onEmit: onEmit)
    }

    /// fixture_ok in process, recording what it receives.
    func recorder() throws -> (PluginWorker, String) {
        let record = Fixtures.temporaryDirectory("isolation") + "/events.txt"
        return (try worker("FixtureOK", id: "fixture_ok", config: #"{"record": "\#(record)"}"#, isolated: false), record)
    }

    /// Events of every kind over the test frames: faces with identities, landmarks, embeddings.
    func events(_ count: Int, from first: UInt64 = 1) -> [Event] {
        (0..<count).map { i in
            let sequence = first + UInt64(i)
            var face = Face(trackID: Int64(i % 3), box: Box(x: 100 + Double(i), y: 80, width: 64, height: 72), score: 0.9)
            face.landmarks = [(120, 100), (140, 100), (130, 115), (122, 130), (138, 130)]
            face.identity = i.isMultiple(of: 2) ? "person-\(i)" : nil
            face.distance = i.isMultiple(of: 2) ? 0.31 : nil
            face.embedding = i.isMultiple(of: 3) ? (0..<128).map { Float($0) / 128 } : nil
            let kind: EventKind = [.frame, .faceAppeared, .faceRecognized, .faceUnknown, .faceLeft][i % 5]
            return Event(kind: kind, sequence: sequence, cameraID: "cam\(i % 2)", timestampNanos: Int64(sequence) * 40_000_000,
                         frame: kind == .faceLeft ? nil : Self.frames[i % Self.frames.count], frameIndex: Int64(i),
                         faces: [face], payloadJSON: #"{"n": \#(i)}"#)
        }
    }

    /// Waits until `condition` holds; false after 60 s (a guard against hanging, not a timing check).
    func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = monotonicNanos() + 60_000_000_000
        while !condition() {
            if monotonicNanos() > deadline { return false }
            usleep(2000)
        }
        return true
    }

    /// Publishes events one at a time, each after the isolated plugin has handled the one before
    /// and its runner is back up after any crash: so every event meets a running runner.
    func publishOneByOne(_ events: [Event], to dispatcher: Dispatcher, isolated: PluginWorker) {
        for event in events {
            dispatcher.publish(event)
            #expect(eventually { isolated.isIdle })
            let runner = isolated.counters.runner
            if !runner.failed { #expect(eventually { isolated.counters.runner.restarts == runner.crashes }) }
        }
    }

    func pixelSum(_ frame: Frame) -> UInt64 {
        let row = frame.width * frame.channels
        return (0..<frame.height).reduce(UInt64(0)) { total, y in
            (0..<row).reduce(total) { $0 + UInt64(frame.pixels[y * frame.stride + $1]) }
        }
    }

    @Test func anIsolatedPluginReceivesAndEmitsWhatAnInProcessOneDoes() throws {
        #expect(Self.frames.count == 8)
        var records: [Bool: [RecordedEvent]] = [:]
        var results: [Bool: [PluginResult]] = [:]
        for isolated in [false, true] {
            let record = Fixtures.temporaryDirectory("same") + "/events.txt"
            let bus = EventBus(writer: nil)
            let emitted = EmittedResults()
            let plugin = try worker("FixtureOK", id: "fixture_ok",
                                    config: #"{"record": "\#(record)", "emit": "seen", "pixel_sum": 1}"#,
                                    isolated: isolated, onEmit: { result, event in
                emitted.append(result)
                bus.publishResult(result, from: "fixture_ok", during: event)
            })
            let dispatcher = Dispatcher(workers: [plugin])
            bus.attach(dispatcher)
            for event in events(20) { bus.publish(event) }
            #expect(eventually { plugin.counters.delivered == 20 })
            dispatcher.drainBlocking()
            records[isolated] = RecordedEvent.read(record)
            results[isolated] = emitted.all
            // Results emitted in the runner reached the bus.
            #expect(bus.publishedCounts["seen"] == 20)
            #expect(plugin.counters.errors == 0)
            if isolated {
                let sent = (plugin.endpoint as? IsolatedPlugin)?.eventBytesSent.load(ordering: .relaxed) ?? .max
                // 16 of the 20 events carry a 921,600-byte frame; what went through the socket is tiny.
                #expect(sent / 20 < 2048, "\(sent) bytes sent for 20 events")
            }
        }
        // The same events, field by field (not the pixel address: the runner maps the frame elsewhere).
        let strip = { (r: RecordedEvent) -> RecordedEvent in var r = r; r.pixels = ""; return r }
        #expect(records[true]!.count == 20)
        #expect(records[true]!.map(strip) == records[false]!.map(strip))
        // The same results, and the runner read the very pixels of each frame.
        let expectedSums = events(20).map { $0.frame.map(pixelSum) }
        for isolated in [false, true] {
            let r = results[isolated]!
            #expect(r.map(\.kind) == Array(repeating: "seen", count: 20))
            #expect(r.map(\.trackID) == events(20).map { $0.faces.first?.trackID })
            let sums = r.map { result -> UInt64? in
                let json = try? JSONSerialization.jsonObject(with: Data(result.payloadJSON.utf8)) as? [String: Any]
                return (json?["pixel_sum"] as? NSNumber)?.uint64Value
            }
            #expect(sums == expectedSums)
        }
    }

    @Test(arguments: [("FixtureSegfault", "segfault", #"{"crash_every": 3}"#, "SIGSEGV"),
                      ("FixtureAbort", "abort", #"{"abort_every": 3}"#, "SIGABRT")])
    func aCrashingRunnerIsCountedAndRestartedAndOthersGetEveryEvent(
        fixture: String, id: String, config: String, signal: String
    ) throws {
        let logs = LogLines()
        let crasher = try worker(fixture, id: id, config: config, isolated: true, logger: logs.logger) {
            $0.maxCrashes = 100
        }
        let (ok, record) = try recorder()
        let dispatcher = Dispatcher(workers: [crasher, ok])
        publishOneByOne(events(9), to: dispatcher, isolated: crasher)
        var c = crasher.counters
        #expect(c.delivered == 9)
        #expect(c.errors == 3)  // the three events the runner died on
        #expect(c.runner.crashes == 3)
        #expect(c.runner.restarts == 3)
        #expect(c.runner.lastCrash?.hasPrefix("crashed (\(signal)") == true, "\(c.runner.lastCrash ?? "-")")
        #expect(c.lastError?.contains("the runner crashed (\(signal)") == true, "\(c.lastError ?? "-")")
        let lines = logs.lines.withLock { $0 }
        #expect(lines.contains { $0.contains("plugin \(id): runner crashed (\(signal)") && $0.contains("crashes in 60 s; restarting in") })

        // A burst while it keeps crashing: events that meet a runner that is down are dropped
        // and counted; the in-process plugin gets every one.
        for event in events(30, from: 10) { dispatcher.publish(event) }
        #expect(eventually { crasher.isIdle && ok.isIdle })
        c = crasher.counters
        #expect(c.delivered + c.droppedWhileDown == 39)
        #expect(c.runner.crashes >= 4)
        dispatcher.drainBlocking()
        #expect(RecordedEvent.read(record).map(\.sequence) == Array(1...39))
        #expect(ok.counters.errors == 0)
    }

    @Test func aHungRunnerIsKilledAfterItsTimeoutAndRestarted() throws {
        let logs = LogLines()
        let hang = try worker("FixtureHang", id: "hang", config: #"{"hang_on_sequence": 2}"#, isolated: true,
                              logger: logs.logger) { $0.timeout = 0.5 }
        let (ok, record) = try recorder()
        let dispatcher = Dispatcher(workers: [hang, ok])
        publishOneByOne(events(4), to: dispatcher, isolated: hang)
        dispatcher.drainBlocking()
        let c = hang.counters
        #expect(c.delivered == 4)
        #expect(c.errors == 1)
        #expect(c.runner.stallKills == 1)
        #expect(c.runner.crashes == 1)
        #expect(c.runner.restarts == 1)
        #expect(c.runner.lastCrash == "killed (stalled: on_event ran past its 0.5 s timeout)")
        #expect(c.lastError == "the runner killed (stalled: on_event ran past its 0.5 s timeout) during on_event for face_appeared #2")
        #expect(logs.lines.withLock { $0 }.contains { $0.contains("plugin hang: runner killed (stalled") })
        #expect(RecordedEvent.read(record).map(\.sequence) == [1, 2, 3, 4])
    }

    @Test func aLeakingRunnerIsKilledAtItsMemoryLimitAndRestarted() throws {
        let leak = try worker("FixtureLeak", id: "leak", config: #"{"mb_per_event": 40}"#, isolated: true) {
            $0.memoryLimitMB = 300
        }
        let (ok, record) = try recorder()
        let dispatcher = Dispatcher(workers: [leak, ok])
        // 40 MB a call: a runner passes 300 MB within 8 calls whatever its start-up size.
        publishOneByOne(events(16), to: dispatcher, isolated: leak)
        dispatcher.drainBlocking()
        let c = leak.counters
        #expect(c.delivered == 16)
        #expect(c.errors == 0)  // killed after a call had returned: no event lost
        #expect(c.runner.crashes >= 1)
        #expect(c.runner.restarts == c.runner.crashes)
        #expect(c.runner.lastCrash?.contains("over its memory_limit_mb of 300") == true, "\(c.runner.lastCrash ?? "-")")
        #expect(RecordedEvent.read(record).count == 16)
    }

    @Test func afterMaxCrashesInTheWindowThePluginFailsUntilEnabledAgain() throws {
        let logs = LogLines()
        let crasher = try worker("FixtureSegfault", id: "segfault", config: #"{"crash_every": 1}"#, isolated: true,
                                 logger: logs.logger) { $0.maxCrashes = 3; $0.crashWindow = 600 }
        let (ok, record) = try recorder()
        let dispatcher = Dispatcher(workers: [crasher, ok])
        publishOneByOne(events(3), to: dispatcher, isolated: crasher)
        var c = crasher.counters
        #expect(c.runner.crashes == 3)
        #expect(c.runner.restarts == 2)
        #expect(c.runner.failed)
        #expect(logs.lines.withLock { $0 }.contains { $0.contains("3 crashes in 600 s: plugin failed, no more restarts") })

        // Failed: nothing is delivered and nothing restarts.
        for event in events(5, from: 4) { dispatcher.publish(event) }
        #expect(eventually { crasher.isIdle })
        c = crasher.counters
        #expect(c.droppedWhileDown == 5)
        #expect(c.delivered == 3)
        #expect(c.runner.restarts == 2)

        // Enabling it through the API (resume) starts a runner again.
        crasher.setPaused(false)
        #expect(eventually { crasher.counters.runner.restarts == 3 })
        #expect(!crasher.counters.runner.failed)
        publishOneByOne(events(1, from: 9), to: dispatcher, isolated: crasher)
        #expect(crasher.counters.delivered == 4)
        #expect(crasher.counters.runner.crashes == 4)
        dispatcher.drainBlocking()
        #expect(RecordedEvent.read(record).count == 9)
    }

    @Test func aPluginWhoseCreateFailsInItsRunnerIsRefusedLikeInProcess() throws {
        #expect(throws: PluginLoadError.createFailed(path: Fixtures.plugin("FixtureOK"), status: -2)) {
            try worker("FixtureOK", id: "fixture_ok", config: #"{"fail_create": true}"#, isolated: true)
        }
    }

    @Test func aRunnerChecksTheLibraryAgainBeforeLoadingIt() throws {
        // The host's own load does not check integrity (PluginLoader does, before): the runner does.
        let error = #expect(throws: PluginLoadError.self) {
            try worker("FixtureOK", id: "fixture_ok", isolated: true) { $0.sha256 = String(repeating: "0", count: 64) }
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("sha256 mismatch"), "\(String(describing: error))")
    }

    @Test func aFrameIsCopiedIntoSharedMemoryOnceForAllRunners() throws {
        let store = SharedFrameStore()
        let a = Self.frames[0], b = Self.frames[1]
        let first = try store.lease(a)
        let second = try store.lease(a)  // another runner, same frame
        #expect(first.index == second.index && first.generation == second.generation)
        let other = try store.lease(b)
        #expect(other.index != first.index)
        [first, second, other].forEach(store.release)
        let again = try store.lease(a)  // still held: no copy
        store.release(again)
        let s = store.statistics
        #expect(s.copies == 2)
        #expect(s.reused == 2)
        #expect(s.bytesCopied == 2 * 640 * 480 * 3)
    }

    @Test func occurRunWithAnIsolatedSegfaultingPluginExitsCleanlyAndLogsTheCrashes() throws {
        let dir = Fixtures.temporaryDirectory("isolated-run")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        for name in ["FixtureOK", "FixtureSegfault"] {
            try FileManager.default.copyItem(atPath: Fixtures.plugin(name), toPath: "\(dir)/plugins/lib\(name).so")
        }
        let frames = try Benchmarks.writeResizedClip(of: Fixtures.openCVData + "/vtest.avi", to: dir + "/clip.avi",
                                                     frames: 40, width: 320, height: 240)
        try """
            data_dir: ./data
            log_level: warning
            detection: { detector: haar }
            cameras:
              clip: { source: \(dir)/clip.avi }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        try """
            plugins_dir: ./plugins
            plugins:
              segfault:
                enabled: true
                library: libFixtureSegfault.so
                isolation: process
                events: [frame]
                queue: { capacity: 1000, overflow: block }
                restart_backoff_max: 0.5
                max_crashes: 3
                config: { crash_every: 4 }
              fixture_ok:
                enabled: true
                library: libFixtureOK.so
                events: [frame]
                queue: { capacity: 1000, overflow: block }
                config: { record: "\(dir)/record.txt" }
            """.write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        let run = try runProcess(Fixtures.occurExecutable, ["run", "--quiet"], currentDirectory: dir)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stderr.contains("plugin segfault: runner crashed (SIGSEGV"), "stderr: \(run.stderr)")
        #expect(run.stderr.contains("1 crash in 60 s; restarting in 0.5 s"), "stderr: \(run.stderr)")
        // The summary counts them.
        let runnerLine = run.stdout.split(separator: "\n").first { $0.hasPrefix("    runner: ") }.map(String.init) ?? ""
        #expect(runnerLine.contains(" crashes (0 stalled), ") && !runnerLine.hasPrefix("    runner: 0 crashes"),
                "stdout: \(run.stdout)")
        // The in-process plugin got every frame.
        #expect(RecordedEvent.read(dir + "/record.txt").count == frames)
    }
}
