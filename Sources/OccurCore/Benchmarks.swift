import Foundation
import Logging

/// The figures `occur bench` prints. Programs, not tests: nothing here asserts a time.
public enum Benchmarks {
    public struct DispatchResult: Sendable {
        public var events: Int
        public var plugins: Int
        public var seconds: Double
        public var publishPerSecond: Double
        public var deliveredPerSecond: Double
        public var p50Micros: Double
        public var p99Micros: Double
        public var p999Micros: Double
        public var maxMicros: Double
        public var framesUsed: Int
        public var frameBuffersAllocatedDuringDispatch: UInt64
        public var delivered: UInt64
        public var dropped: UInt64
    }

    /// Publishes `events` frame events (cycling over `frames`) into `plugins` instances of
    /// the no-op plugin at `libraryPath` (each under the id it declares — loaded once per
    /// worker), cooldown 0 and a queue that cannot fill.
    public static func dispatch(libraryPath: String, events: Int, plugins: Int, frames: [Frame],
                                logger: Logger) throws -> DispatchResult {
        let library = try PluginLibrary.load(path: libraryPath, expectedID: nil)
        var workers: [PluginWorker] = []
        for _ in 0..<plugins {
            var settings = PluginSettings(id: library.id)
            settings.enabled = true
            settings.events = [.frame]
            settings.queueCapacity = events
            settings.overflow = .dropNewest
            workers.append(try PluginWorker(library: library, settings: settings, logger: logger) { _, _ in })
        }
        let dispatcher = Dispatcher(workers: workers)
        var latencies = [Int64](repeating: 0, count: events)
        let buffersBefore = Frame.buffersAllocated
        let start = monotonicNanos()
        let base = start
        for i in 0..<events {
            let event = Event(kind: .frame, sequence: UInt64(i + 1), cameraID: "bench",
                              timestampNanos: base + Int64(i) * 1000, frame: frames[i % frames.count],
                              frameIndex: Int64(i))
            let t0 = monotonicNanos()
            dispatcher.publish(event)
            latencies[i] = monotonicNanos() - t0
        }
        let published = monotonicNanos()
        dispatcher.drainBlocking()
        let end = monotonicNanos()
        let buffersAfter = Frame.buffersAllocated
        latencies.sort()
        func percentile(_ p: Double) -> Double {
            Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
        }
        let counters = dispatcher.counters.map(\.counters)
        return DispatchResult(
            events: events, plugins: plugins, seconds: Double(end - start) / 1e9,
            publishPerSecond: Double(events) / (Double(published - start) / 1e9),
            deliveredPerSecond: Double(events) / (Double(end - start) / 1e9),
            p50Micros: percentile(0.5), p99Micros: percentile(0.99), p999Micros: percentile(0.999),
            maxMicros: Double(latencies.last ?? 0) / 1000, framesUsed: frames.count,
            frameBuffersAllocatedDuringDispatch: buffersAfter - buffersBefore,
            delivered: counters.reduce(0) { $0 + $1.delivered },
            dropped: counters.reduce(0) { $0 + $1.droppedByOverflow + $1.droppedByCooldown })
    }

    public struct IsolationResult: Sendable {
        public var isolation: Isolation
        public var events: Int
        /// One on_event call as the worker makes it, in µs: for `process` that is the frame's
        /// copy into shared memory, the event message, the runner's call and its answer.
        public var callP50Micros: Double
        public var callP99Micros: Double
        public var callMeanMicros: Double
        /// Events/s through Dispatcher and PluginWorker, one plugin, queue never full.
        public var deliveredPerSecond: Double
        /// Bytes written to the runner's socket per event (0 in process).
        public var socketBytesPerEvent: Double
        /// Frame copies into shared memory per event, and their mean time.
        public var framesCopiedPerEvent: Double
        public var copyMeanMicros: Double
        /// p50 of calls whose frame is in shared memory already (as for a second isolated
        /// plugin given the same frame): the round trip without the copy.
        public var callP50WithoutCopyMicros: Double
    }

    /// The per-event cost of `isolation: process`: the no-op plugin at `libraryPath` called
    /// directly (`events` calls, after 200 to warm up) and through the dispatcher, in process
    /// and isolated, with frame events cycling over `frames`.
    public static func isolation(libraryPath: String, events: Int, frames: [Frame], logger: Logger) throws
        -> [IsolationResult]
    {
        let library = try PluginLibrary.load(path: libraryPath, expectedID: nil)
        let event = { (i: Int) in
            Event(kind: .frame, sequence: UInt64(i + 1), cameraID: "bench", timestampNanos: Int64(i) * 40_000_000,
                  frame: frames[i % frames.count], frameIndex: Int64(i))
        }
        var results: [IsolationResult] = []
        for isolation in [Isolation.inProcess, .process] {
            var settings = PluginSettings(id: library.id)
            settings.enabled = true
            settings.events = [.frame]
            settings.isolation = isolation
            settings.queueCapacity = events
            settings.overflow = .dropNewest

            // Direct calls, timed one by one on this thread.
            let copiesBefore = SharedFrameStore.shared.statistics
            let endpoint: any PluginEndpoint = isolation == .process
                ? IsolatedPlugin(library: library, settings: settings, logger: logger) { _, _ in }
                : PluginInstance(library: library, context: PluginHostContext(pluginID: library.id, logger: logger) { _, _ in })
            endpoint.bindWorkerThread()
            try endpoint.create(configJSON: "{}")
            for i in 0..<200 { _ = endpoint.deliver(event(i)) }
            var calls = [Int64](repeating: 0, count: events)
            for i in 0..<events {
                let e = event(i)
                let t0 = monotonicNanos()
                _ = endpoint.deliver(e)
                calls[i] = monotonicNanos() - t0
            }
            let socketBytes = (endpoint as? IsolatedPlugin)?.eventBytesSent.load(ordering: .relaxed) ?? 0
            let copies = SharedFrameStore.shared.statistics
            var sameFrame = [Int64](repeating: 0, count: min(events, 5000))
            for i in sameFrame.indices {
                let e = Event(kind: .frame, sequence: UInt64(events + i), cameraID: "bench", timestampNanos: 0,
                              frame: frames[0], frameIndex: 0)
                let t0 = monotonicNanos()
                _ = endpoint.deliver(e)
                sameFrame[i] = monotonicNanos() - t0
            }
            sameFrame.sort()
            endpoint.destroy()
            calls.sort()
            let percentile = { (p: Double) in Double(calls[min(calls.count - 1, Int(Double(calls.count) * p))]) / 1000 }
            let copied = copies.copies - copiesBefore.copies

            // Through the dispatcher and a worker thread.
            let worker = try PluginWorker(library: library, settings: settings, logger: logger) { _, _ in }
            let dispatcher = Dispatcher(workers: [worker])
            let start = monotonicNanos()
            for i in 0..<events { dispatcher.publish(event(i)) }
            dispatcher.drainBlocking()
            let seconds = Double(monotonicNanos() - start) / 1e9

            results.append(IsolationResult(
                isolation: isolation, events: events, callP50Micros: percentile(0.5), callP99Micros: percentile(0.99),
                callMeanMicros: Double(calls.reduce(0, +)) / Double(events) / 1000,
                deliveredPerSecond: Double(worker.counters.delivered) / seconds,
                socketBytesPerEvent: Double(socketBytes) / Double(events + 200),
                framesCopiedPerEvent: Double(copied) / Double(events + 200),
                copyMeanMicros: copied == 0 ? 0 : Double(copies.copyNanos - copiesBefore.copyNanos) / Double(copied) / 1000,
                callP50WithoutCopyMicros: Double(sameFrame[sameFrame.count / 2]) / 1000))
        }
        return results
    }

    /// Resident set size now and at its peak, in MiB (from /proc/self/status).
    public static func residentMemory() -> (current: Double, peak: Double) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
            return (kb ?? 0) / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// One line naming the machine: CPU model, cores, memory.
    public static func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        return String(format: "%@, %d cores, %.0f GiB", model, ProcessInfo.processInfo.activeProcessorCount, memory)
    }

    /// Decodes up to `count` frames of a video (for benchmarks that need real frames).
    public static func decodeFrames(of path: String, count: Int, width: Int? = nil, height: Int? = nil) throws -> [Frame] {
        let capture = try VideoCapture(source: path, kind: .file)
        var frames: [Frame] = []
        while frames.count < count, let frame = capture.read() {
            if let width, let height, frame.width != width || frame.height != height {
                frames.append(frame.resized(width: width, height: height))
            } else {
                frames.append(frame)
            }
        }
        return frames
    }

    /// Writes the first `frames` frames of a video, resized, to an MJPG AVI; returns how many.
    public static func writeResizedClip(of path: String, to output: String, frames: Int, width: Int, height: Int) throws -> Int {
        let capture = try VideoCapture(source: path, kind: .file)
        let writer = try VideoWriter(path: output, fps: capture.framesPerSecond > 0 ? capture.framesPerSecond : 25,
                                     width: width, height: height)
        var count = 0
        while count < frames, let frame = capture.read() {
            writer.write(frame.width == width && frame.height == height ? frame : frame.resized(width: width, height: height))
            count += 1
        }
        return count
    }
}
