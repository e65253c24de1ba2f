import Foundation
import Logging

/// `occur bench recognition` and `occur bench gallery`: per-stage figures of the face
/// pipeline on a real video, and nearest-neighbour search over a large gallery.
public enum RecognitionBenchmark {
    public struct Stats: Sendable {
        public var median: Double
        public var p95: Double
        public var count: Int

        init(_ samples: [Double]) {
            let sorted = samples.sorted()
            count = sorted.count
            median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            p95 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))]
        }

        public var text: String { String(format: "median %.2f ms, p95 %.2f ms (n=%d)", median, p95, count) }
    }

    public struct PipelineResult: Sendable {
        public var detector: String
        public var backend: String
        public var frames: Int
        public var faces: Int
        public var tracks: Int
        public var recognitions: Int
        public var seconds: Double
        public var decode: Stats
        public var detect: Stats
        public var recognize: Stats
        public var embedPerFace: Stats
        public var peakRSSMiB: Double

        public var framesPerSecond: Double { Double(frames) / seconds }
        public var facesPerSecond: Double { Double(faces) / seconds }
    }

    /// Decode -> detect -> track -> recognise once per track (recheck_seconds), as `occur run`
    /// does, on the first `frames` frames of `video` (a video file or a folder of images);
    /// every stage timed.
    public static func pipeline(video: String, frames limit: Int, host: HostConfiguration, logger: Logger) throws
        -> PipelineResult
    {
        let work = Fixtureless.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let gallery = try FaceGallery(store: EventStore(path: work + "/bench.db"))
        let models = ModelFiles(directory: host.modelsDir)
        let detector = try makeFaceDetector(host.detection, models: models)
        guard let recognizer = try makeFaceRecognizer(host, gallery: gallery, logger: logger) else {
            throw StoreError(message: "recognition backend '\(host.recognition.backend)' is not available here")
        }
        let recognition = TrackRecognition(recognizer: recognizer, configuration: host.recognition, logger: logger)
        var tracker = FaceTracker(configuration: host.tracking)
        let source = try CameraSource(configuration: CameraConfiguration(id: "bench", source: video), logger: logger) { false }
        var decode: [Double] = [], detect: [Double] = [], recognize: [Double] = []
        var frames = 0, faces = 0, tracks = 0
        var kept: [(Frame, Face)] = []
        let start = monotonicNanos()
        while frames < limit {
            let t0 = monotonicNanos()
            guard let input = source.next() else { break }
            let frame = input.frame
            let t1 = monotonicNanos()
            if source.kind.isStill { tracker.finish().forEach { recognition.forget($0.id) } }  // each image its own scene
            let detected = detector.detect(in: frame)
            let t2 = monotonicNanos()
            var update = tracker.update(detected, at: input.timestampNanos)
            for i in update.faces.indices { _ = recognition.process(&update.faces[i], in: frame, at: input.timestampNanos) }
            for track in update.left { recognition.forget(track.id) }
            let t3 = monotonicNanos()
            decode.append(Double(t1 - t0) / 1e6)
            detect.append(Double(t2 - t1) / 1e6)
            recognize.append(Double(t3 - t2) / 1e6)
            frames += 1
            faces += detected.count
            tracks += update.appeared.count
            if kept.count < 40, let face = detected.first, frames % 3 == 0 { kept.append((frame, face)) }
        }
        let seconds = Double(monotonicNanos() - start) / 1e9
        // The embedding alone, per face, on faces met in the clip.
        var embed: [Double] = []
        for (frame, face) in kept {
            let t = monotonicNanos()
            _ = recognizer.embedder.embed(face, in: frame)
            embed.append(Double(monotonicNanos() - t) / 1e6)
        }
        return PipelineResult(
            detector: host.detection.detectorName, backend: recognizer.embedder.model, frames: frames, faces: faces,
            tracks: tracks, recognitions: recognition.recognitions, seconds: seconds, decode: Stats(decode),
            detect: Stats(detect), recognize: Stats(recognize), embedPerFace: Stats(embed),
            peakRSSMiB: Benchmarks.residentMemory().peak)
    }

    /// Detection alone: ms per frame and faces found, on the first `frames` frames.
    public static func detection(video: String, frames limit: Int, detector: FaceDetector, logger: Logger) throws
        -> (stats: Stats, faces: Int)
    {
        let source = try CameraSource(configuration: CameraConfiguration(id: "bench", source: video), logger: logger) { false }
        var samples: [Double] = []
        var faces = 0
        while samples.count < limit, let frame = source.next()?.frame {
            let t = monotonicNanos()
            faces += detector.detect(in: frame).count
            samples.append(Double(monotonicNanos() - t) / 1e6)
        }
        return (Stats(samples), faces)
    }

    /// Top-k search over `size` random unit vectors of dimension `dimension`, `queries` times.
    public static func gallerySearch(size: Int, dimension: Int, queries: Int, k: Int, metric: DistanceMetric) throws
        -> Stats
    {
        let work = Fixtureless.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let gallery = try FaceGallery(store: EventStore(path: work + "/gallery.db"))
        var generator = SystemRandomNumberGenerator()
        func randomUnit() -> [Float] {
            var v = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in v.indices { v[i] /= norm }
            return v
        }
        try gallery.enrollMany((0..<size).map { ("person-\($0 / 2)", randomUnit()) }, model: "bench", source: nil)
        var samples: [Double] = []
        for _ in 0..<queries {
            let q = randomUnit()
            let t = monotonicNanos()
            let found = gallery.nearest(q, model: "bench", metric: metric, k: k)
            samples.append(Double(monotonicNanos() - t) / 1e6)
            precondition(found.count == k, "search returned \(found.count) of \(k)")
        }
        return Stats(samples)
    }
}

/// Scratch directories for benchmarks (tests have their own in OccurTestSupport).
enum Fixtureless {
    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("occur-bench-\(getpid())-\(UUID().uuidString.prefix(6))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
