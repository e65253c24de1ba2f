import Foundation
import Logging

/// `occur eval mask DIR`: DIR/with_mask/ and DIR/without_mask/ through the pipeline with the
/// Mask plugin, each image scored by the label its largest face got.
///
/// An image is right when the `mask` result for its largest detected face (the person the
/// photo is of) has the folder's label. It is wrong otherwise, and the reason is counted:
/// the other label, `unsure`, no face found, or no `mask` result for the face.
public struct MaskEvaluation: Sendable {
    public static let classes = [(folder: "with_mask", label: "mask"), (folder: "without_mask", label: "no_mask")]

    public struct ClassResult: Codable, Sendable, Equatable {
        public var folder: String
        /// The label an image of this folder must get.
        public var expected: String
        public var images: Int
        public var right: Int
        /// The other confident label.
        public var wrongLabel: Int
        public var unsure: Int
        public var noFace: Int
        /// A face was found but the plugin gave no `mask` result for it.
        public var noResult: Int
        /// right / images.
        public var accuracy: Double = 0
        /// The same over the images at even positions (0, 2, 4 ... in file-name order) and at odd
        /// ones: a held-out check for anything tuned on one half.
        public var evenRight = 0, evenImages = 0, oddRight = 0, oddImages = 0
        /// The wrongly labelled files (names inside the folder), with what they got.
        public var misses: [String: String] = [:]

        enum CodingKeys: String, CodingKey {
            case folder, expected, images, right, wrongLabel = "wrong_label", unsure, noFace = "no_face",
                 noResult = "no_result", accuracy, misses, evenRight = "even_right", evenImages = "even_images",
                 oddRight = "odd_right", oddImages = "odd_images"
        }

        init(folder: String, expected: String) {
            self.folder = folder
            self.expected = expected
            images = 0; right = 0; wrongLabel = 0; unsure = 0; noFace = 0; noResult = 0
        }
    }

    public struct Report: Codable, Sendable, Equatable {
        public var directory: String
        public var detector: String
        public var classes: [ClassResult]
        /// The mean of the per-class accuracies.
        public var balancedAccuracy: Double
        /// Balanced accuracy over the even-position and the odd-position images alone.
        public var balancedEven: Double
        public var balancedOdd: Double
        /// What the evaluation changed in plugins.yaml to run the plugin (EvaluationRun.requirePlugin).
        public var adjustments: [String]

        enum CodingKeys: String, CodingKey {
            case directory, detector, classes, balancedAccuracy = "balanced_accuracy", balancedEven = "balanced_accuracy_even",
                 balancedOdd = "balanced_accuracy_odd", adjustments
        }
    }

    public let directory: String
    public private(set) var run: EvaluationRun
    /// Per camera (class folder), its images in frame-index order.
    let images: [String: [String]]

    /// Checks DIR and prepares the run: one image-directory camera per class, the mask plugin
    /// required (EvaluationRun.requirePlugin).
    public init(directory: String, host: HostConfiguration, registry: PluginRegistry) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EvaluationError("\(directory): no such directory (expected \(directory)/with_mask/ and \(directory)/without_mask/)")
        }
        var images: [String: [String]] = [:]
        for c in Self.classes {
            images[c.folder] = try evaluationImages(in: directory + "/" + c.folder, role: "the \(c.label) class of eval mask")
        }
        self.directory = directory
        self.images = images
        run = EvaluationRun(host: host, registry: registry, cameras: Self.classes.map {
            CameraConfiguration(id: $0.folder, source: directory + "/" + $0.folder)
        })
        run.requirePlugin("mask", events: [.faceAppeared])
    }

    public var imageCount: Int { images.values.map(\.count).reduce(0, +) }

    public func evaluate(logger: Logger, progress: (@Sendable ([String: Int64]) -> Void)? = nil) async throws -> Report {
        if let library = run.libraryPath(of: "mask"), !FileManager.default.fileExists(atPath: library) {
            throw EvaluationError("\(library): no such file: eval mask needs the Mask plugin in plugins_dir "
                + "(swift build -c release && cp .build/release/libMask.so \((library as NSString).deletingLastPathComponent)/)")
        }
        let events = try await run.run(logger: logger, progress: progress)
        return score(events.events)
    }

    /// Scores the logged events against the folders.
    func score(_ events: [StoredEvent]) -> Report {
        var results: [ClassResult] = []
        for c in Self.classes {
            var result = ClassResult(folder: c.folder, expected: c.label)
            let files = images[c.folder] ?? []
            let camera = events.filter { $0.camera == c.folder }
            let appeared = Dictionary(grouping: camera.filter { $0.kind == EventKind.faceAppeared.name && $0.frameIndex != nil },
                                      by: { $0.frameIndex! })
            let labels = Dictionary(camera.filter { $0.plugin == "mask" && $0.kind == "mask" }.compactMap { e in
                e.trackID.map { ($0, e.payloadObject["label"] as? String ?? "?") }
            }, uniquingKeysWith: { first, _ in first })
            for (index, file) in files.enumerated() {
                result.images += 1
                if index % 2 == 0 { result.evenImages += 1 } else { result.oddImages += 1 }
                let name = (file as NSString).lastPathComponent
                guard let largest = appeared[Int64(index)]?.max(by: { ($0.box?.area ?? 0) < ($1.box?.area ?? 0) }) else {
                    result.noFace += 1
                    result.misses[name] = "no face"
                    continue
                }
                guard let track = largest.trackID, let label = labels[track] else {
                    result.noResult += 1
                    result.misses[name] = "no mask result"
                    continue
                }
                if label == c.label {
                    result.right += 1
                    if index % 2 == 0 { result.evenRight += 1 } else { result.oddRight += 1 }
                } else {
                    if label == "unsure" { result.unsure += 1 } else { result.wrongLabel += 1 }
                    result.misses[name] = label
                }
            }
            result.accuracy = result.images > 0 ? Double(result.right) / Double(result.images) : 0
            results.append(result)
        }
        let mean = { (values: [Double]) in values.reduce(0, +) / Double(max(1, values.count)) }
        let ratio = { (right: Int, of: Int) in of > 0 ? Double(right) / Double(of) : 0 }
        return Report(directory: directory, detector: run.host.detection.detectorName, classes: results,
                      balancedAccuracy: mean(results.map(\.accuracy)),
                      balancedEven: mean(results.map { ratio($0.evenRight, $0.evenImages) }),
                      balancedOdd: mean(results.map { ratio($0.oddRight, $0.oddImages) }),
                      adjustments: run.adjustments)
    }
}
