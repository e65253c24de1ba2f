import Foundation
import Logging

/// Enrolment and one-off recognition on still images (`occur faces enroll`, `occur recognize`),
/// with the same detector and recogniser as the cameras.
public final class StillImageFaces {
    public enum EnrollOutcome: Sendable, Equatable {
        case enrolled(path: String)
        case unreadable(path: String, reason: String)
        case noFace(path: String)
        case severalFaces(path: String, count: Int)
        case notEmbeddable(path: String)

        public var enrolled: Bool { if case .enrolled = self { true } else { false } }

        public var message: String {
            switch self {
            case let .enrolled(path): "\(path): enrolled"
            case let .unreadable(path, reason): "\(path): skipped, unreadable (\(reason))"
            case let .noFace(path): "\(path): skipped, no face found"
            case let .severalFaces(path, count): "\(path): skipped, \(count) faces found (use an image with exactly one)"
            case let .notEmbeddable(path): "\(path): skipped, the face could not be aligned for recognition"
            }
        }
    }

    public let recognizer: FaceRecognizer
    let detector: FaceDetector
    private let detection: DetectionConfiguration

    public init(configuration: HostConfiguration, gallery: FaceGallery, logger: Logger) throws {
        detection = configuration.detection
        detector = try makeFaceDetector(configuration.detection, models: ModelFiles(directory: configuration.modelsDir))
        guard let recognizer = try makeFaceRecognizer(configuration, gallery: gallery, logger: logger) else {
            throw ConfigError(file: "occur.yaml", keyPath: "recognition.backend",
                              message: "no recognition backend is available (backend: \(configuration.recognition.backend), detector: \(configuration.detection.detector)); use detector yunet with the SFace model, or any detector with the dlib models, from scripts/models")
        }
        self.recognizer = recognizer
    }

    /// Adds `name` from each image that shows exactly one face; reports the others.
    public func enroll(name: String, images: [String]) throws -> [EnrollOutcome] {
        var outcomes: [EnrollOutcome] = []
        for path in images {
            let frame: Frame
            do { frame = detection.lightingCorrected(try Frame.read(contentsOf: path)) } catch {
                outcomes.append(.unreadable(path: path, reason: "\(error)"))
                continue
            }
            outcomes.append(try enroll(name: name, frame: frame, source: path))
        }
        return outcomes
    }

    /// Adds `name` from a decoded image (`source` names it in the gallery and the outcome)
    /// when it shows exactly one face.
    public func enroll(name: String, frame: Frame, source: String) throws -> EnrollOutcome {
        let faces = detector.detect(in: frame)
        guard faces.count == 1 else {
            return faces.isEmpty ? .noFace(path: source) : .severalFaces(path: source, count: faces.count)
        }
        guard let embedding = recognizer.embedder.embed(faces[0], in: frame) else { return .notEmbeddable(path: source) }
        try recognizer.gallery.enroll(name: name, embedding: embedding, model: recognizer.embedder.model, source: source)
        return .enrolled(path: source)
    }

    /// Lighting correction as the cameras apply it.
    public func prepared(_ frame: Frame) -> Frame { detection.lightingCorrected(frame) }

    /// Every face in the image with what recognition says (nil when it could not embed).
    public func recognize(imageAt path: String) throws -> [(face: Face, recognition: Recognition?)] {
        let frame = detection.lightingCorrected(try Frame.read(contentsOf: path))
        return detector.detect(in: frame).map { ($0, recognizer.recognize($0, in: frame)) }
    }
}

/// Names people may be enrolled under: letters, digits, `_`, `-`, `.`, space; not `unknown-…`.
public func validatePersonName(_ name: String) -> String? {
    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-. "))
    if name.trimmingCharacters(in: .whitespaces).isEmpty { return "the name is empty" }
    if name.count > 100 { return "the name is longer than 100 characters" }
    if name.unicodeScalars.contains(where: { !allowed.contains($0) }) {
        return "use letters, digits, space, '_', '-' and '.' only"
    }
    if name.lowercased().hasPrefix("unknown") { return "names starting with 'unknown' are reserved" }
    return nil
}
