import Foundation
import Vision

/// Finds faces in a frame. One instance per camera thread (not thread-safe).
public protocol FaceDetector: AnyObject {
    /// Faces with box, score and (when the detector gives them) 5 landmarks; trackID -1.
    func detect(in frame: Frame) -> [Face]
}

/// Makes the detector occur.yaml names, followed by its second detector (MergedFaceDetector)
/// when one applies (`resolvedSecondDetector`).
public func makeFaceDetector(_ c: DetectionConfiguration, models: ModelFiles) throws -> FaceDetector {
    let first = try makeSingleFaceDetector(c, models: models)
    guard let name = c.resolvedSecondDetector else { return first }
    var second = c
    second.detector = name
    second.scoreThreshold = c.secondScoreThreshold
    return MergedFaceDetector(first: first, second: try makeSingleFaceDetector(second, models: models))
}

/// The one detector `c.detector` names.
func makeSingleFaceDetector(_ c: DetectionConfiguration, models: ModelFiles) throws -> FaceDetector {
    switch c.detector {
    case "yunet": try YuNetFaceDetector(configuration: c, modelPath: models.require(.yunet))
    case "dlib_hog": try DlibHOGFaceDetector(configuration: c)
    case "dlib_mmod": try DlibMMODFaceDetector(configuration: c, modelPath: models.require(.dlibMMOD))
    case "ssd": try SSDFaceDetector(configuration: c, prototxt: models.require(.ssdPrototxt),
                                    caffemodel: models.require(.ssdWeights))
    case "blazeface": try BlazeFaceDetector(configuration: c, modelPath: models.require(.blazeFace))
    default: try HaarFaceDetector(configuration: c)
    }
}

extension DetectionConfiguration {
    /// The frame detection and recognition look at: corrected for poor light as `lighting`
    /// says, or the frame itself (no copy) when no correction applies.
    public func lightingCorrected(_ frame: Frame) -> Frame {
        switch lighting {
        case "clahe": frame.enhanced(clipLimit: claheClipLimit, gamma: 1)
        case "gamma": frame.enhanced(clipLimit: 0, gamma: gamma)
        case "auto": frame.meanBrightness < darkThreshold ? frame.enhanced(clipLimit: claheClipLimit, gamma: gamma) : frame
        default: frame
        }
    }
}

/// OpenCV's Haar cascade (opencv-data). No landmarks, so no SFace recognition.
public final class HaarFaceDetector: FaceDetector {
    private let handle: OpaquePointer
    private let params: ov_haar_params

    public init(configuration c: DetectionConfiguration) throws {
        handle = try withErrorBuffer { ov_haar_create(c.cascade, $0, $1) }
        params = ov_haar_params(scale_factor: c.scaleFactor, min_neighbors: Int32(c.minNeighbors),
                                min_size: Int32(c.minFaceSize), equalize: c.equalizeHistogram ? 1 : 0)
    }

    deinit { ov_haar_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        var rects = [ov_rect](repeating: ov_rect(), count: 64)
        let found = rects.withUnsafeMutableBufferPointer {
            ov_haar_detect(handle, frame.handle, params, $0.baseAddress, Int32($0.count))
        }
        guard found > 0 else { return [] }
        return rects.prefix(Int(min(found, 64))).map {
            Face(box: Box(x: Double($0.x), y: Double($0.y), width: Double($0.width), height: Double($0.height)))
        }
    }
}

/// YuNet 2023mar (weights dequantized to fp32 by scripts/models), 5 landmarks per face.
public final class YuNetFaceDetector: FaceDetector {
    private let handle: OpaquePointer
    private let minFaceSize: Double

    public init(configuration c: DetectionConfiguration, modelPath: String) throws {
        handle = try withErrorBuffer {
            ov_yunet_create(modelPath, Int32(c.inputSize), Float(c.scoreThreshold), 0.3, $0, $1)
        }
        minFaceSize = Double(c.minFaceSize)
    }

    deinit { ov_yunet_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        collectFaces(minFaceSize: minFaceSize) { ov_yunet_detect(handle, frame.handle, $0, $1) }
    }
}

func landmarks(of f: ov_face) -> [(x: Double, y: Double)] {
    withUnsafeBytes(of: f.landmarks) { raw in
        let values = raw.bindMemory(to: Float.self)
        return (0..<Int(f.landmark_count)).map { (Double(values[2 * $0]), Double(values[2 * $0 + 1])) }
    }
}

/// The C form of a detected face, for embedders.
func cFace(_ face: Face) -> ov_face {
    var f = ov_face()
    f.x = Float(face.box.x)
    f.y = Float(face.box.y)
    f.width = Float(face.box.width)
    f.height = Float(face.box.height)
    f.score = Float(face.score)
    f.landmark_count = Int32(min(face.landmarks.count, 5))
    withUnsafeMutableBytes(of: &f.landmarks) { raw in
        let values = raw.bindMemory(to: Float.self)
        for (i, point) in face.landmarks.prefix(5).enumerated() {
            values[2 * i] = Float(point.x)
            values[2 * i + 1] = Float(point.y)
        }
    }
    return f
}
