import ArgumentParser
import Foundation
import Logging
import OccurCore

extension Occur {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks that print figures (they assert nothing).",
            subcommands: [DispatchBench.self, MemoryBench.self])
    }
}

/// The directory of the running executable (where SwiftPM also puts the fixture plugins).
func executableDirectory() -> String {
    (Bundle.main.executablePath.map { ($0 as NSString).deletingLastPathComponent }) ?? "."
}

func defaultSampleVideo() -> String {
    "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
}

extension Occur.Bench {
    struct DispatchBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dispatch",
            abstract: "Events/s through the dispatcher into the no-op C plugin, enqueue latency, pixel copies.")

        @Option(help: "Events to publish.") var events = 1_000_000
        @Option(help: "Plugin workers fed from one publisher (comma-separated list runs each).") var plugins = "1,4"
        @Option(help: "The no-op plugin library.") var library = executableDirectory() + "/libFixtureNoop.so"
        @Option(help: "Video whose frames the events carry.") var video = defaultSampleVideo()

        func run() throws {
            let logger = bootstrapLogging(level: "warning")
            let frames = try Benchmarks.decodeFrames(of: video, count: 100, width: 640, height: 480)
            guard !frames.isEmpty else { throw CleanExit.message("error: no frames in \(video)", code: 1) }
            print("occur bench dispatch")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(events) frame events carrying \(frames.count) decoded 640x480 frames of \(video)")
            print("plugin:  \(library) (cooldown 0, queue capacity \(events): never full)")
            for count in plugins.split(separator: ",").compactMap({ Int($0) }) {
                let r = try Benchmarks.dispatch(libraryPath: library, events: events, plugins: count,
                                                frames: frames, logger: logger)
                print(String(format: "plugins=%d  publish %.0f events/s  delivered %.0f events/s per plugin  enqueue p50 %.2f µs  p99 %.2f µs  p99.9 %.2f µs  max %.1f µs",
                             r.plugins, r.publishPerSecond, r.deliveredPerSecond, r.p50Micros, r.p99Micros,
                             r.p999Micros, r.maxMicros))
                print("           delivered \(r.delivered) of \(r.events * r.plugins), dropped \(r.dropped); frame buffers allocated during dispatch: \(r.frameBuffersAllocatedDuringDispatch) (pixel copies per plugin: \(r.frameBuffersAllocatedDuringDispatch / UInt64(max(1, r.events))))")
            }
        }
    }

    struct MemoryBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "memory",
            abstract: "Peak RSS of the host running one 640x480 camera with four fixture plugins enabled.")

        @Option(help: "Source video (resized to 640x480 first).") var video = defaultSampleVideo()
        @Option(help: "Frames to process.") var frames = 600

        func run() async throws {
            let logger = bootstrapLogging(level: "warning")
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("occur-bench-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            // A 640x480 copy of the video, so the figure is for the size the target names.
            let clip = work + "/clip640x480.avi"
            do {
                let writer = try VideoWriter(path: clip, fps: 25, width: 640, height: 480)
                for frame in try Benchmarks.decodeFrames(of: video, count: frames, width: 640, height: 480) {
                    writer.write(frame)
                }
            }
            var host = HostConfiguration()
            host.dataDir = work
            host.cameras = [CameraConfiguration(id: "bench", source: clip)]
            let dir = executableDirectory()
            let plugins: [(String, String, String)] = [
                ("sample", "libSample.so", "{}"), ("fixture_ok", "libFixtureOK.so", "{}"),
                ("noop", "libFixtureNoop.so", "{}"), ("thrower", "libFixtureThrower.so", "{\"throw_every\": 0}"),
            ]
            let registry = PluginRegistry(pluginsDir: dir, plugins: plugins.map { id, library, config in
                var s = PluginSettings(id: id)
                s.enabled = true
                s.library = library
                s.events = Set(EventKind.allCases)
                s.configJSON = config
                return s
            })
            let before = Benchmarks.residentMemory()
            let runtime = try HostRuntime(configuration: host, registry: registry, logger: logger)
            let start = Date()
            try await runtime.run()
            let seconds = Date().timeIntervalSince(start)
            let after = Benchmarks.residentMemory()
            let camera = runtime.cameras[0].counters
            print("occur bench memory")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(camera.framesProcessed) frames, 640x480, of \(video); Haar face detection; 4 plugins (sample, fixture_ok, noop, thrower) receiving every event kind incl. frames")
            print(String(format: "RSS before start %.1f MiB, after %.1f MiB, peak %.1f MiB; %.1f frames/s", before.current,
                         after.current, after.peak, Double(camera.framesProcessed) / seconds))
            for (id, c) in runtime.dispatcher.counters {
                print("  \(id): \(c.delivered) delivered, \(c.droppedByOverflow) dropped by overflow")
            }
        }
    }
}
