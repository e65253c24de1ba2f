import Foundation
import Logging

/// What recognition concluded about one face.
public struct Recognition: Sendable, Equatable {
    /// The enrolled name, or nil for unknown.
    public var identity: String?
    /// Distance to the nearest enrolled identity (infinity with an empty gallery).
    public var distance: Double
    /// The runner-up identity's distance, if any.
    public var secondDistance: Double?
    public var embedding: [Float]
}

/// Embeds a face and matches it against the gallery, open-set: a face is named only when its
/// nearest identity is within the threshold AND beats the second-nearest identity by `margin`.
/// One per camera thread (its embedder is not thread-safe); the gallery is shared.
public final class FaceRecognizer {
    public let embedder: FaceEmbedder
    public let gallery: FaceGallery
    public let threshold: Double
    public let margin: Double

    /// Distances that still name a person, per model, when occur.yaml sets none.
    /// SFace: cosine similarity 0.363 (OpenCV's published threshold for SFace) = distance 0.637.
    public static func defaultThreshold(model: String) -> Double {
        switch model {
        case "sface-2021dec": 1 - 0.363
        case "dlib-resnet-v1": 0.6  // face_recognition's default tolerance
        // Chi-square between LBPH histograms. On dlib's johns set (55 aligned crops) same-person
        // pairs have median 81.6, different-person pairs 10th percentile 81.8, minimum 68.9:
        // LBPH cannot separate them by threshold alone, so 75 names only close matches.
        case "lbph-r1-n8-g8": 75
        default: 0.6
        }
    }

    public init(embedder: FaceEmbedder, gallery: FaceGallery, threshold: Double? = nil, margin: Double = 0.05) {
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = threshold ?? Self.defaultThreshold(model: embedder.model)
        self.margin = margin
    }

    /// Nil when the face cannot be embedded (for SFace: a detector without landmarks).
    public func recognize(_ face: Face, in frame: Frame) -> Recognition? {
        try? recognition(of: face, in: frame).get()
    }

    /// The recognition, or why the face could not be embedded.
    public func recognition(of face: Face, in frame: Frame) -> Result<Recognition, UnassessedReason> {
        guard let embedding = embedder.embed(face, in: frame) else {
            if embedder.alignsByLandmarks, face.landmarks.count < 5 {
                return .failure(UnassessedReason(.noLandmarks, value: Double(face.landmarks.count), threshold: 5,
                                                 measure: "landmarks"))
            }
            return .failure(UnassessedReason(.embedderFailed))
        }
        let nearest = gallery.nearest(embedding, model: embedder.model, metric: embedder.metric, k: 2)
        let best = nearest.first
        let second = nearest.count > 1 ? nearest[1].distance : nil
        var identity: String?
        if let best, best.distance <= threshold, second.map({ $0 - best.distance >= margin }) ?? true {
            identity = best.name
        }
        return .success(Recognition(identity: identity, distance: best?.distance ?? .infinity, secondDistance: second,
                                    embedding: embedding))
    }
}

/// The recogniser occur.yaml asks for, or nil for `none` (or `auto` with no usable backend).
public func makeFaceRecognizer(_ configuration: HostConfiguration, gallery: FaceGallery, logger: Logger) throws
    -> FaceRecognizer?
{
    let models = ModelFiles(directory: configuration.modelsDir)
    let c = configuration.recognition
    switch c.backend {
    case "none":
        return nil
    case "sface":
        guard configuration.detection.detector == "yunet" else {
            throw ConfigError(file: "occur.yaml", keyPath: "recognition.backend",
                              message: "sface aligns faces by landmarks: it needs detection.detector: yunet")
        }
        return FaceRecognizer(embedder: try SFaceEmbedder(modelPath: models.require(.sface)), gallery: gallery,
                              threshold: c.threshold, margin: c.margin)
    case "dlib":
        return FaceRecognizer(embedder: try DlibEmbedder(models: models), gallery: gallery,
                              threshold: c.threshold, margin: c.margin)
    case "lbph":
        return FaceRecognizer(embedder: LBPHEmbedder(), gallery: gallery, threshold: c.threshold, margin: c.margin)
    default:  // auto: SFace behind YuNet, else dlib (it finds its own landmarks behind any detector)
        if configuration.detection.detector == "yunet", models.has(.sface) {
            return FaceRecognizer(embedder: try SFaceEmbedder(modelPath: models.path(.sface)), gallery: gallery,
                                  threshold: c.threshold, margin: c.margin)
        }
        if models.has(.dlibShapePredictor), models.has(.dlibResNet) {
            return FaceRecognizer(embedder: try DlibEmbedder(models: models), gallery: gallery,
                                  threshold: c.threshold, margin: c.margin)
        }
        return nil
    }
}
