import Foundation
import Logging

/// `occur eval detection FILE.xml`: the pipeline's faces (every `face_appeared` of a still
/// is a detected face) against dlib imglab ground truth, recall and precision at IoU 0.5,
/// once per detector.
public struct DetectionEvaluation: Sendable {
    public static let iouThreshold = 0.5

    public struct DetectorResult: Codable, Sendable, Equatable {
        public var detector: String
        public var truths: Int
        public var detections: Int
        public var hits: Int
        public var falseAlarms: Int
        public var ignoredDetections: Int
        public var recall: Double
        public var precision: Double

        enum CodingKeys: String, CodingKey {
            case detector, truths, detections, hits, falseAlarms = "false_alarms",
                 ignoredDetections = "ignored_detections", recall, precision
        }
    }

    public struct Report: Codable, Sendable, Equatable {
        public var file: String
        public var images: Int
        public var iou: Double
        /// The detection settings of occur.yaml other than the detector (scores, sizes).
        public var scoreThreshold: Double
        public var secondScoreThreshold: Double
        public var minFaceSize: Int
        public var detectors: [DetectorResult]

        enum CodingKeys: String, CodingKey {
            case file, images, iou, scoreThreshold = "score_threshold", secondScoreThreshold = "second_score_threshold", minFaceSize = "min_face_size", detectors
        }
    }

    public static let knownDetectors = ["yunet", "ssd", "blazeface", "haar", "dlib_hog", "dlib_mmod"]

    public let dataset: ImglabDataset
    public let host: HostConfiguration
    public let registry: PluginRegistry
    public let detectors: [String]

    /// `detectors` empty: what occur.yaml configures. `a` is that detector alone, `a+b` detector
    /// a with second_detector b (MergedFaceDetector).
    public init(file: String, detectors: [String], host: HostConfiguration, registry: PluginRegistry) throws {
        dataset = try ImglabDataset.load(contentsOf: file)
        for d in detectors {
            let parts = d.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2, parts.allSatisfy(Self.knownDetectors.contains), parts.count == 1 || parts[1] == "ssd" else {
                throw EvaluationError("--detector \(d): unknown detector (known: \(Self.knownDetectors.joined(separator: ", ")), "
                    + "each alone or followed by +ssd, the second detector)")
            }
        }
        self.detectors = detectors.isEmpty ? [host.detection.detectorName] : detectors
        self.host = host
        self.registry = registry
    }

    public func evaluate(logger: Logger, progress: (@Sendable (String, [String: Int64]) -> Void)? = nil) async throws -> Report {
        // The images, in XML order, as one image-directory camera: links numbered so that
        // frame index i is the XML's i-th image.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("occur-eval-images-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, image) in dataset.images.enumerated() {
            let ext = (image.path as NSString).pathExtension
            try FileManager.default.createSymbolicLink(atPath: String(format: "%@/%05d.%@", dir, i, ext), withDestinationPath: image.path)
        }
        var results: [DetectorResult] = []
        for detector in detectors {
            var host = self.host
            let parts = detector.split(separator: "+").map(String.init)
            host.detection.detector = parts[0]
            host.detection.secondDetector = parts.count > 1 ? parts[1] : "none"
            let run = EvaluationRun(host: host, registry: registry, cameras: [CameraConfiguration(id: "images", source: dir)])
            var perCamera: (@Sendable ([String: Int64]) -> Void)?
            if let progress {
                perCamera = { counts in progress(detector, counts) }
            }
            let output = try await run.run(logger: logger, progress: perCamera)
            results.append(score(output.events, detector: detector))
        }
        return Report(file: dataset.file, images: dataset.images.count, iou: Self.iouThreshold,
                      scoreThreshold: host.detection.scoreThreshold,
                      secondScoreThreshold: host.detection.secondScoreThreshold, minFaceSize: host.detection.minFaceSize,
                      detectors: results)
    }

    func score(_ events: [StoredEvent], detector: String) -> DetectorResult {
        let appeared = Dictionary(grouping: events.filter { $0.kind == EventKind.faceAppeared.name && $0.frameIndex != nil },
                                  by: { $0.frameIndex! })
        var match = DetectionMatch()
        for (i, image) in dataset.images.enumerated() {
            let detected = (appeared[Int64(i)] ?? []).compactMap(\.box)
            match.add(detected: detected, truth: image.boxes, ignored: image.ignored, iou: Self.iouThreshold)
        }
        return DetectorResult(detector: detector, truths: match.truths, detections: match.detections, hits: match.hits,
                              falseAlarms: match.falseAlarms, ignoredDetections: match.ignoredDetections,
                              recall: match.recall, precision: match.precision)
    }
}
