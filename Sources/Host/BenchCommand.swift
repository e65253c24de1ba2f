import ArgumentParser
import Foundation
import Logging
import OccurCore

extension Occur {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks that print figures (they assert nothing).",
            subcommands: [DispatchBench.self, MemoryBench.self, RecognitionBench.self, GalleryBench.self,
                          PluginsBench.self, IsolationBench.self, QualityBench.self])
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
            let frames = try benchFrames(of: video, bench: "dispatch")
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

    struct IsolationBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "isolation",
            abstract: "Per-event cost of isolation: process against in_process: the no-op C plugin fed 640x480 frame events.")

        @Option(help: "Events per run.") var events = 20_000
        @Option(help: "The no-op plugin library.") var library = executableDirectory() + "/libFixtureNoop.so"
        @Option(help: "Video whose frames the events carry.") var video = defaultSampleVideo()

        func run() throws {
            let logger = bootstrapLogging(level: "warning")
            let frames = try benchFrames(of: video, bench: "isolation")
            print("input:   \(events) frame events carrying \(frames.count) decoded 640x480 BGR frames (921,600 bytes) of \(video)")
            print("plugin:  \(library)")
            let results = try Benchmarks.isolation(libraryPath: library, events: events, frames: frames, logger: logger)
            for r in results {
                print(String(format: "%-10@  call p50 %7.2f µs  p99 %7.2f µs  mean %7.2f µs   through the dispatcher %8.0f events/s",
                             r.isolation.rawValue, r.callP50Micros, r.callP99Micros, r.callMeanMicros, r.deliveredPerSecond))
                if r.isolation == .process {
                    print(String(format: "            per event: %.0f bytes through the socket (pixels: none), %.2f frame copies into shared memory of %.1f µs each",
                                 r.socketBytesPerEvent, r.framesCopiedPerEvent, r.copyMeanMicros))
                    print(String(format: "            frame already in shared memory (a second isolated plugin on the same frame): call p50 %.2f µs",
                                 r.callP50WithoutCopyMicros))
                }
            }
            if let a = results.first(where: { $0.isolation == .inProcess }), let b = results.first(where: { $0.isolation == .process }) {
                print(String(format: "overhead of isolation: %.2f µs per event (p50), %.2f µs (p99)",
                             b.callP50Micros - a.callP50Micros, b.callP99Micros - a.callP99Micros))
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
            print("input:   \(written) frames, 640x480, of \(video); default detection (YuNet) and recognition (SFace); 4 plugins (sample, fixture_ok, noop, thrower) receiving every event kind incl. frames")
            print(String(format: "occur run: peak RSS %.1f MiB, %.1f s (%.1f frames/s), exit %d", Double(usage.ru_maxrss) / 1024,
                         seconds, Double(written) / seconds, process.terminationStatus))
            print(summary.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    struct RecognitionBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recognition",
            abstract: "Per-stage figures of decode -> detect -> track -> recognise on a video, per detector and backend.")

        @Option(help: "Video or folder of images with faces (default: opencv-doc's Megamind.avi).")
        var video = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
        @Option(help: "Frames to process.") var frames = 270
        @Option(help: "Recognition backends to run, comma-separated.") var backend = "sface"
        @Option(help: "Detector for the pipeline runs.") var detector = "yunet"
        @Option(help: "Detectors to time alone, comma-separated.") var detectors = "haar,yunet"
        @Option(help: "Host settings whose detection/recognition sections to use (models_dir too).")
        var config: String?

        func run() throws {
            let logger = bootstrapLogging(level: "error")
            let host = try loadHostConfiguration(config)
            var isFolder: ObjCBool = false
            let size = FileManager.default.fileExists(atPath: video, isDirectory: &isFolder) && isFolder.boolValue
                ? "images" : (try Benchmarks.decodeFrames(of: video, count: 1).first.map { "\($0.width)x\($0.height)" } ?? "?")
            print("occur bench recognition")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(video) (\(size)), first \(frames) frames")
            for name in detectors.split(separator: ",").map(String.init) {
                var d = host.detection
                d.detector = name
                do {
                    let detector = try makeFaceDetector(d, models: ModelFiles(directory: host.modelsDir))
                    let r = try RecognitionBenchmark.detection(video: video, frames: frames, detector: detector, logger: logger)
                    print("detect \(d.detectorName): \(r.stats.text) per frame; \(r.faces) faces in \(r.stats.count) frames")
                } catch {
                    print("detect \(name): not available (\(error))")
                }
            }
            for name in backend.split(separator: ",").map(String.init) {
                var h = host
                h.detection.detector = detector
                h.recognition.backend = name
                do {
                    let r = try RecognitionBenchmark.pipeline(video: video, frames: frames, host: h, logger: logger)
                    print("pipeline \(r.detector) + \(r.backend): \(r.frames) frames in \(String(format: "%.2f", r.seconds)) s")
                    print("  end-to-end: \(String(format: "%.1f", r.framesPerSecond)) frames/s, \(String(format: "%.1f", r.facesPerSecond)) faces/s; \(r.tracks) tracks, \(r.recognitions) recognitions")
                    print("  decode    \(r.decode.text) per frame")
                    print("  detect    \(r.detect.text) per frame")
                    print("  recognise \(r.recognize.text) per frame (tracking + recognition once per track)")
                    print("  embed     \(r.embedPerFace.text) per face")
                    print("  peak RSS  \(String(format: "%.1f", r.peakRSSMiB)) MiB")
                    print(String(format: "RESULT occur backend=%@ detector=%@ fps=%.2f frames=%d faces=%d detect_ms_median=%.2f embed_ms_median=%.2f",
                                 name, r.detector, r.framesPerSecond, r.frames, r.faces, r.detect.median, r.embedPerFace.median))
                } catch {
                    print("pipeline \(detector) + \(name): not available (\(error))")
                }
            }
        }
    }

    struct QualityBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "quality",
            abstract: "Sizes and sharpness of the faces the detector finds in a video or folder of frames, as the quality gate measures them.",
            discussion: """
                Prints, per band of face size, how many faces were found, percentiles of their sharpness \
                (the gate's measure: variance of the Laplacian over the face, scaled down to 112 px when \
                wider, contrast-normalised, on the lighting-corrected frame the detector saw; and the raw \
                variance without the normalisation) and how many would pass recognition.quality. --scale, --brightness, \
                --blur and --jpeg-quality measure a changed copy of every frame instead (stated in the output).
                """)

        @Argument(help: "Videos or folders of frames.") var sources: [String]
        @Option(help: "Frames per source at most.") var frames = 100_000
        @Option(help: "Scale each frame by this factor first (0.5 = faces half as big).") var scale = 1.0
        @Option(help: "Keep this fraction of the light (0.3 = every pixel times 0.3).") var brightness = 1.0
        @Option(help: "Gaussian blur of this standard deviation in pixels, after scaling (0 = none).") var blur = 0.0
        @Option(help: "Re-encode each changed frame as JPEG of this quality.") var jpegQuality: Int?
        @Option(help: "Host settings whose detection and recognition.quality sections to use (models_dir too).")
        var config: String?

        func run() throws {
            let logger = bootstrapLogging(level: "error")
            let host = try loadHostConfiguration(config)
            var variant = QualityBenchmark.Variant()
            variant.scale = scale
            variant.brightness = brightness
            variant.blur = blur
            variant.jpegQuality = jpegQuality
            let d = host.detection
            print("occur bench quality")
            print("machine:  \(Benchmarks.machineDescription())")
            print("detector: \(d.detector) (score_threshold \(d.scoreThreshold), min_face_size \(d.minFaceSize), lighting \(d.lighting))")
            print("frames:   \(variant.text)")
            var all: [QualityBenchmark.Sample] = []
            for source in sources {
                let r = try QualityBenchmark.measure(source: source, frames: frames, variant: variant, detection: d,
                                                     models: ModelFiles(directory: host.modelsDir), logger: logger)
                print(String(format: "input:    %@: %d frames %dx%d, mean brightness %.0f, %d faces", source, r.frames,
                             r.width, r.height, r.meanBrightness, r.samples.count))
                all += r.samples
            }
            for line in QualityBenchmark.table(all, minFaceSize: host.recognition.minQualityFaceSize,
                                               minSharpness: host.recognition.minSharpness) {
                print("  " + line)
            }
        }
    }

    struct GalleryBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gallery",
            abstract: "Top-k nearest-neighbour search over a large gallery of embeddings.")

        @Option(help: "Embeddings in the gallery.") var size = 100_000
        @Option(help: "Embedding dimension.") var dimension = 128
        @Option(help: "Queries to time.") var queries = 200
        @Option(help: "Neighbours per query.") var k = 5

        func run() throws {
            print("occur bench gallery")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(size) random unit \(dimension)-d embeddings (2 per identity), \(queries) random queries, top-\(k)")
            for metric in [DistanceMetric.cosine, .euclidean] {
                let stats = try RecognitionBenchmark.gallerySearch(size: size, dimension: dimension, queries: queries,
                                                                   k: k, metric: metric)
                print("search (\(metric.rawValue)): \(stats.text) per query")
            }
        }
    }

    struct PluginsBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plugins",
            abstract: "Per-plugin cost (ms per call, median and p95) and the pipeline's frames/s with the analysis plugins enabled at their plugins.yaml settings.")

        @Option(help: "Video to run on.") var video = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
        @Option(help: "Plugin registry whose entries (cooldowns, queues, config) to use.") var plugins = "plugins.yaml"
        @Option(help: "Plugins to enable, comma-separated.") var enable = "mask,pose,clothes,movement"

        func run() async throws {
            let logger = bootstrapLogging(level: "error")
            let registry: PluginRegistry
            do { registry = try PluginRegistry.load(contentsOf: plugins) } catch let error as ConfigError {
                throw CleanExit.message("error: \(error)", code: 2)
            }
            let wanted = Set(enable.split(separator: ",").map(String.init))
            let dir = executableDirectory()
            var chosen = registry.plugins.filter { wanted.contains($0.id) }
            for i in chosen.indices {
                chosen[i].enabled = true
                chosen[i].library = (dir as NSString).appendingPathComponent(chosen[i].library)
            }
            print("occur bench plugins")
            print("machine: \(Benchmarks.machineDescription())")
            print("input:   \(video); default detection and recognition; plugins \(chosen.map(\.id).joined(separator: ", ")) as configured in \(plugins)")
            for (label, set) in [("without plugins", [PluginSettings]()), ("with plugins", chosen)] {
                let work = FileManager.default.temporaryDirectory.appendingPathComponent("occur-bench-plugins-\(getpid())").path
                try? FileManager.default.removeItem(atPath: work)
                defer { try? FileManager.default.removeItem(atPath: work) }
                var host = HostConfiguration()
                host.dataDir = work
                host.cameras = [CameraConfiguration(id: "bench", source: video)]
                let runtime = try HostRuntime(configuration: host, registry: PluginRegistry(pluginsDir: dir, plugins: set),
                                              logger: logger)
                let start = Date()
                try await runtime.run()
                let seconds = Date().timeIntervalSince(start)
                let frames = runtime.cameras.map(\.counters.framesProcessed).reduce(0, +)
                print(String(format: "%@: %lld frames in %.2f s = %.1f frames/s", label, frames, seconds, Double(frames) / seconds))
                for worker in runtime.dispatcher.workers {
                    let c = worker.counters, p = worker.callPercentiles
                    print(String(format: "  %@: %llu calls, median %.2f ms, p95 %.2f ms, max %.2f ms; dropped %llu by cooldown, %llu by overflow; %llu errors",
                                 worker.id, c.delivered, p.median, p.p95, c.maxCallMicros / 1000, c.droppedByCooldown,
                                 c.droppedByOverflow, c.errors))
                }
                let results = runtime.bus.publishedCounts.filter { !$0.key.hasPrefix("face_") }.sorted { $0.key < $1.key }
                if !results.isEmpty { print("  results: " + results.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
            }
        }
    }
}

/// 100 frames of `video` at 640x480 for the dispatch benchmarks, after the bench's heading.
private func benchFrames(of video: String, bench: String) throws -> [Frame] {
    let frames = try Benchmarks.decodeFrames(of: video, count: 100, width: 640, height: 480)
    guard !frames.isEmpty else { throw CleanExit.message("error: no frames in \(video)", code: 1) }
    print("occur bench \(bench)")
    print("machine: \(Benchmarks.machineDescription())")
    return frames
}
