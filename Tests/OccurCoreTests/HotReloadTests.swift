import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// plugins.yaml edited while a real video plays (Megamind.avi, looping, paced at its own
/// frame rate): deliveries follow the new settings, every frame still reaches the plugin
/// that was left alone, and a broken edit keeps the running configuration. Plus the
/// watchdog on a plugin that sleeps past its timeout.
@Suite(.serialized) struct HotReloadTests {
    struct Site {
        let dir = Fixtures.temporaryDirectory("reload")
        var plugins: String { dir + "/plugins.yaml" }
        var record: String { dir + "/record.txt" }

        func writePlugins(okEnabled: Bool, okCooldown: Double, noopCapacity: Int = 10_000) throws {
            try """
                plugins_dir: \(Fixtures.buildDirectory)
                plugins:
                  noop:
                    enabled: true
                    library: libFixtureNoop.so
                    events: [frame]
                    queue: { capacity: \(noopCapacity), overflow: block }
                  fixture_ok:
                    enabled: \(okEnabled)
                    library: libFixtureOK.so
                    events: [frame]
                    cooldown: \(okCooldown)
                    cooldown_scope: global
                    config: { record: \(record) }
                """.write(toFile: plugins, atomically: true, encoding: .utf8)
        }

        func runtime() throws -> HostRuntime {
            try """
                data_dir: ./data
                log_level: warning
                api: { enabled: false }
                recognition: { backend: none }
                cameras:
                  video: { source: \(Fixtures.openCVData)/Megamind.avi, loop: true, realtime: true }
                """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
            return try HostRuntime(configuration: HostConfiguration.load(contentsOf: dir + "/occur.yaml"),
                                   registry: PluginRegistry.load(contentsOf: plugins), logger: Fixtures.logger)
        }

        /// Media times (seconds) of the frames fixture_ok recorded.
        func recordedTimes() -> [Double] { RecordedEvent.read(record).map { Double($0.timestampNanos) / 1e9 } }
    }

    /// Polls without holding a thread of Swift's cooperative pool (the host under test runs on it).
    static func eventually(_ seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    static func waitUntil(_ seconds: Double = 30, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// The host's parts run on their own threads here, as `occur run` runs them, but without the
    /// ServiceGroup: the test must not wait for Swift's cooperative pool, which other tests keep busy.
    @Test func editsApplyWhileTheVideoPlaysAndABrokenEditChangesNothing() async throws {
        let site = Site()
        try site.writePlugins(okEnabled: false, okCooldown: 0)
        let runtime = try site.runtime()
        #expect(runtime.dispatcher.workers.map(\.id) == ["noop"])
        let camera = try #require(runtime.cameras.first)
        let cameraDone = Completion()
        runtime.writer.start()
        Thread { camera.run(); cameraDone.complete() }.start()
        #expect(await Self.eventually { camera.counters.framesProcessed >= 20 })

        // 1. Enable fixture_ok with no cooldown: it gets frames.
        try site.writePlugins(okEnabled: true, okCooldown: 0)
        let enabled = runtime.reloader.reload()
        #expect(enabled.changes == ["fixture_ok: enabled"])
        #expect(Set(runtime.dispatcher.workers.map(\.id)) == ["noop", "fixture_ok"])
        #expect(await Self.eventually { site.recordedTimes().count >= 20 })

        // 2. Cooldown 1 s (global, on media time): from now on at most one frame a second.
        try site.writePlugins(okEnabled: true, okCooldown: 1.0)
        let slowed = runtime.reloader.reload()
        #expect(slowed.changes == ["fixture_ok: cooldown 0.0 → 1.0"])
        let before = site.recordedTimes().count
        #expect(await Self.eventually { site.recordedTimes().count >= before + 3 })
        let after = Array(site.recordedTimes().dropFirst(before + 1))   // the first may be one admitted under the old setting
        for (a, b) in zip(after, after.dropFirst()) { #expect(b - a >= 0.99, "\(a) → \(b)") }
        // Before the change it had taken every frame (~24 a second of media time).
        let early = site.recordedTimes().prefix(10)
        #expect(early.last! - early.first! < 1.0)

        // 3. A broken edit: rejected with its place, nothing changes.
        try "plugins:\n  fixture_ok:\n    cooldown: fast\n".write(toFile: site.plugins, atomically: true, encoding: .utf8)
        let broken = runtime.reloader.reload()
        #expect(broken.rejected?.contains("plugins.yaml:3:15: plugins.fixture_ok.cooldown") == true)
        #expect(broken.changes.isEmpty)
        #expect(Set(runtime.dispatcher.workers.map(\.id)) == ["noop", "fixture_ok"])
        #expect(runtime.dispatcher.workers.first { $0.id == "fixture_ok" }?.settings.cooldown == 1.0)

        // 4. Disabled again: it stops receiving.
        try site.writePlugins(okEnabled: false, okCooldown: 1.0)
        #expect(runtime.reloader.reload().changes == ["fixture_ok: disabled"])
        #expect(runtime.dispatcher.workers.map(\.id) == ["noop"])

        // The plugin left alone saw every processed frame: no gap, nothing dropped.
        camera.stop()
        await cameraDone.wait()
        runtime.dispatcher.drainBlocking()
        runtime.writer.stopAndFlush()
        let noop = try #require(runtime.dispatcher.workers.first)
        #expect(noop.counters.delivered == UInt64(camera.counters.framesProcessed))
        #expect(noop.counters.droppedByOverflow == 0 && noop.counters.droppedByCooldown == 0)
    }

    @Test func theRunningHostPicksUpEditsAndSIGHUP() throws {
        let site = Site()
        try site.writePlugins(okEnabled: false, okCooldown: 0)
        try """
            data_dir: ./data
            log_level: info
            api: { enabled: false }
            recognition: { backend: none }
            cameras:
              video: { source: \(Fixtures.openCVData)/Megamind.avi, loop: true, realtime: true }
            """.write(toFile: site.dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Fixtures.occurExecutable)
        process.arguments = ["run", "--quiet", "--config", site.dir + "/occur.yaml", "--plugins", site.plugins]
        let log = site.dir + "/stderr.txt"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(Self.waitUntil { logText().contains("camera started") })

        // The file watch: an edit is applied within about a second.
        try site.writePlugins(okEnabled: true, okCooldown: 0)
        #expect(Self.waitUntil(10) { logText().contains("plugins.yaml reloaded: fixture_ok: enabled") })
        #expect(Self.waitUntil { !site.recordedTimes().isEmpty })
        // SIGHUP reloads too (here: nothing changed since).
        kill(process.processIdentifier, SIGHUP)
        #expect(Self.waitUntil(10) { logText().contains("SIGHUP: reloading") && logText().contains("nothing changed") })
        #expect(process.isRunning)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(logText())")
    }

    @Test func aCallPastItsTimeoutIsReportedStalledAndNeverBlocksTheCamera() throws {
        let dir = Fixtures.temporaryDirectory("stall")
        var slow = PluginSettings.fixture("fixture_ok", library: Fixtures.plugin("FixtureOK"), config: #"{"sleep_ms": 1500}"#)
        slow.timeout = 0.3
        slow.queueCapacity = 1
        slow.overflow = .block
        let noop = PluginSettings.fixture("noop", library: Fixtures.plugin("FixtureNoop"))
        let registry = PluginRegistry(pluginsDir: dir, plugins: [slow, noop], file: dir + "/plugins.yaml")
        let (workers, statuses) = PluginLoader(registry: registry).start(logger: Fixtures.logger) { _, _, _ in }
        #expect(workers.count == 2)
        let dispatcher = Dispatcher(workers: workers)
        let reports = EmittedResults()
        let reloader = PluginReloader(registry: registry, statuses: statuses, dispatcher: dispatcher, logger: Fixtures.logger,
                                      onEmit: { _, _, _ in }, report: { _, kind, payload in
            reports.append(PluginResult(kind: kind, payloadJSON: payload, trackID: nil, box: nil, confidence: nil))
        })
        let frame = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        func event(_ n: UInt64) -> Event {
            Event(kind: .faceAppeared, sequence: n, cameraID: "cam", timestampNanos: Int64(n) * 1_000_000_000, frame: frame,
                  frameIndex: Int64(n), faces: [], payloadJSON: "{}")
        }
        let worker = try #require(workers.first { $0.id == "fixture_ok" })
        dispatcher.publish(event(1))                                   // taken at once: sleeps 1.5 s
        #expect(Self.waitUntil(5) { worker.counters.queueDepth == 0 })
        dispatcher.publish(event(2))                                   // fills the one-slot queue
        #expect(Self.waitUntil(5) { reloader.watch(now: monotonicNanos()); return worker.counters.stalled })
        #expect(worker.counters.stalls == 1)
        #expect(reports.all.map(\.kind) == ["plugin_stalled"])
        // The queue is full and the policy is block, but the plugin is stalled: refused, not waited for.
        dispatcher.publish(event(3))
        #expect(worker.counters.droppedByOverflow == 1)
        // It recovers when the call returns; the other plugin got everything.
        #expect(Self.waitUntil(10) { !worker.counters.stalled })
        dispatcher.drainBlocking()
        #expect(worker.counters.delivered == 2 && worker.counters.stalls == 1)
        #expect(workers.first { $0.id == "noop" }?.counters.delivered == 3)
    }
}

extension HotReloadTests {
    /// A new build of an isolated plugin's library dropped into plugins_dir: the reloader's
    /// poll restarts its runner, which loads the new file; events flow to the new instance.
    @Test func aReplacedLibraryRestartsItsIsolatedRunner() throws {
        IsolatedPlugin.runnerExecutable = Fixtures.occurExecutable   // not this test binary
        let dir = Fixtures.temporaryDirectory("reload-library") + "/plugins"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let library = dir + "/libFixtureOK.so"
        try FileManager.default.copyItem(atPath: Fixtures.plugin("FixtureOK"), toPath: library)
        var settings = PluginSettings.fixture("fixture_ok", library: "libFixtureOK.so")
        settings.isolation = .process
        let registry = PluginRegistry(pluginsDir: dir, plugins: [settings], file: dir + "/plugins.yaml")
        let (workers, statuses) = PluginLoader(registry: registry).start(logger: Fixtures.logger) { _, _, _ in }
        let dispatcher = Dispatcher(workers: workers)
        let reloader = PluginReloader(registry: registry, statuses: statuses, dispatcher: dispatcher, logger: Fixtures.logger,
                                      onEmit: { _, _, _ in })
        let first = try #require(dispatcher.workers.first)
        #expect(reloader.restartReplacedLibraries().isEmpty)   // first look: remembered
        #expect(reloader.restartReplacedLibraries().isEmpty)   // unchanged
        // A new version arrives (a new file in its place, as `cp` of a build or a package upgrade does).
        try FileManager.default.removeItem(atPath: library)
        try FileManager.default.copyItem(atPath: Fixtures.plugin("FixtureOK"), toPath: library)
        #expect(reloader.restartReplacedLibraries() == ["fixture_ok"])
        let second = try #require(dispatcher.workers.first)
        #expect(second !== first && dispatcher.workers.count == 1)
        dispatcher.publish(TestEvents.faceAppeared(sequence: 1, track: 1))
        dispatcher.drainBlocking()
        #expect(second.counters.delivered == 1)
        #expect(reloader.statuses.first { $0.id == "fixture_ok" }?.state == .loaded)
    }
}
