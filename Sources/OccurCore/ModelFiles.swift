import Foundation

/// The model files scripts/models prepares (from Debian and PyPI packages only; nothing is
/// downloaded at run time).
public struct ModelFiles: Sendable {
    public enum Model: String, CaseIterable, Sendable {
        case yunet = "face_detection_yunet_2023mar.onnx"
        case sface = "face_recognition_sface_2021dec.onnx"
        case dlibShapePredictor = "shape_predictor_5_face_landmarks.dat"
        case dlibResNet = "dlib_face_recognition_resnet_model_v1.dat"
        case dlibMMOD = "mmod_human_face_detector.dat"
        case ssdPrototxt = "deploy.prototxt"
        case ssdWeights = "res10_300x300_ssd_iter_140000.caffemodel"
        case blazeFace = "face_detection_short_range.onnx"
        case blazePose = "pose_landmark_full.onnx"
        case openPose = "openpose_mobilenet_thin.pb"
        case maskClassifier = "face_mask_detector.onnx"
    }

    /// `$OCCUR_MODELS`, else `$OCCUR_CACHE/models`, else `~/.cache/occur/models` (as scripts/models).
    public static var defaultDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        return environment["OCCUR_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["OCCUR_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/occur")) + "/models")
    }

    public let directory: String

    public init(directory: String = ModelFiles.defaultDirectory) {
        self.directory = directory
    }

    public func path(_ model: Model) -> String { (directory as NSString).appendingPathComponent(model.rawValue) }

    public func has(_ model: Model) -> Bool { FileManager.default.fileExists(atPath: path(model)) }

    /// The model's path, or an error naming the command that prepares it.
    public func require(_ model: Model) throws -> String {
        guard has(model) else { throw MissingModelError(file: path(model)) }
        return path(model)
    }
}

public struct MissingModelError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var description: String {
        "model file \(file) is missing: run scripts/models (or scripts/setup) to prepare it"
    }
}
