import Foundation
import Vision

/// How embeddings of one model are compared.
public enum DistanceMetric: String, Sendable {
    /// 1 - cosine similarity of the vectors (0 = same direction, 2 = opposite).
    case cosine
    /// Euclidean distance.
    case euclidean
    /// Chi-square between histograms, as OpenCV's LBPH recogniser compares them
    /// (HISTCMP_CHISQR_ALT: sum of 2 (a - b)^2 / (a + b)).
    case chiSquare = "chi_square"
}

/// Turns an aligned face into a vector. One instance per thread (not thread-safe).
public protocol FaceEmbedder: AnyObject {
    /// Names the model; embeddings of different models are never compared.
    var model: String { get }
    var dimension: Int { get }
    var metric: DistanceMetric { get }
    /// Nil when the face cannot be embedded (for SFace: no landmarks).
    func embed(_ face: Face, in frame: Frame) -> [Float]?
    /// True when the embedder aligns by the detector's five landmarks and cannot work without them.
    var alignsByLandmarks: Bool { get }
}

extension FaceEmbedder {
    public var alignsByLandmarks: Bool { false }
}

/// OpenCV's FaceRecognizerSF on SFace 2021dec (weights dequantized to fp32):
/// alignCrop by YuNet's 5 landmarks, 128 floats, compared by cosine.
public final class SFaceEmbedder: FaceEmbedder {
    public let model = "sface-2021dec"
    public let alignsByLandmarks = true
    public let dimension = 128
    public let metric = DistanceMetric.cosine
    private let handle: OpaquePointer

    public init(modelPath: String) throws {
        handle = try withErrorBuffer { ov_sface_create(modelPath, $0, $1) }
    }

    deinit { ov_sface_release(handle) }

    public func embed(_ face: Face, in frame: Frame) -> [Float]? {
        guard face.landmarks.count >= 5 else { return nil }
        var c = cFace(face)
        var out = [Float](repeating: 0, count: dimension)
        let written = out.withUnsafeMutableBufferPointer { ov_sface_embed(handle, frame.handle, &c, $0.baseAddress, Int32(dimension)) }
        return written == dimension ? out : nil
    }
}

/// LBPH spatial histograms (OpenCV contrib), compared by chi-square: the classic, weakest
/// backend, kept for machines without the DNN models. Needs no landmarks.
public final class LBPHEmbedder: FaceEmbedder {
    public let model = "lbph-r1-n8-g8"
    public let dimension = 8 * 8 * 256
    public let metric = DistanceMetric.chiSquare

    public init() {}

    public func embed(_ face: Face, in frame: Frame) -> [Float]? {
        var c = cFace(face)
        var out = [Float](repeating: 0, count: dimension)
        let written = out.withUnsafeMutableBufferPointer { ov_lbph_histogram(frame.handle, &c, $0.baseAddress, Int32(dimension)) }
        return written == dimension ? out : nil
    }
}

/// Distance between two embeddings of the same model.
public func distance(_ a: [Float], _ b: [Float], metric: DistanceMetric) -> Double {
    precondition(a.count == b.count, "embeddings of different dimension")
    return a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in FaceGallery.distance(pa, pb, metric: metric) }
    }
}
