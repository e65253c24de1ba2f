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

    struct MemoryBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "memory",
            abstract: "Peak RSS of `occur run` on one 640x480 camera with four fixture plugins enabled.",
            discussion: "The host runs as a child process; its peak RSS is the kernel's (getrusage of children).")

        @Option(help: "Source video (resized to 640x480 first).") var video = defaultSampleVideo()
        @Option(help: "Frames to process.") var frames = 600

        func run() throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("occur-bench-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            // A 640x480 copy of the video, so the figure is for the size the target names.
            let clip = work + "/clip640x480.avi"
            let written = try Benchmarks.writeResizedClip(of: video, to: clip, frames: frames, width: 640, height: 480)
            let dir = executableDirectory()
            try """
                data_dir: \(work)/data
                log_level: warning
                cameras:
                  bench: { source: \(clip) }
                """.write(toFile: work + "/occur.yaml", atomically: true, encoding: .utf8)
            let all = "[frame, face_appeared, face_recognized, face_unknown, face_left, plugin_result]"
            try """
                plugins_dir: \(dir)
                plugins:
                  sample: { enabled: true, library: libSample.so, events: \(all) }
                  fixture_ok: { enabled: true, library: libFixtureOK.so, events: \(all) }
                  noop: { enabled: true, library: libFixtureNoop.so, events: \(all) }
                  thrower: { enabled: true, library: libFixtureThrower.so, events: \(all), config: { throw_every: 0 } }
                """.write(toFile: work + "/plugins.yaml", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: dir + "/occur")
            process.arguments = ["run", "--quiet", "--config", work + "/occur.yaml", "--plugins", work + "/plugins.yaml"]
            let output = Pipe()
            process.standardOutput = output
            let start = Date()
            try process.run()
            let summary = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let seconds = Date().timeIntervalSince(start)
            var usage = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &usage)
            print("occur bench memory")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(written) frames, 640x480, of \(video); Haar face detection; 4 plugins (sample, fixture_ok, noop, thrower) receiving every event kind incl. frames")
            print(String(format: "occur run: peak RSS %.1f MiB, %.1f s (%.1f frames/s), exit %d", Double(usage.ru_maxrss) / 1024,
                         seconds, Double(written) / seconds, process.terminationStatus))
            print(summary.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
