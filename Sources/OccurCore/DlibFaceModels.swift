// dlib's face models (the FaceDlib target, occur_dlib.h): the HOG and MMOD detectors and the
// ResNet descriptor of Python's face_recognition library. Each class owns one handle and
// releases it in deinit; frame pixels are lent to C only for the length of one call.
import Foundation
import FaceDlib

/// How a dlib detector meets `detection.min_face_size`: each detector finds faces down to a
/// fixed size in its input, so the frame is doubled (dlib's pyramid_up, at most 3 times)
/// until the smallest wanted face reaches that size, or shrunk when even the smallest wanted
/// face is well above it (fewer pixels to scan, same faces found).
struct DlibPyramid: Equatable {
    /// Times the frame is doubled inside dlib (0...3).
    var upsample: Int32
    /// Factor the frame is resized by before detection (1 = as is, < 1 = smaller).
    var scale: Double

    init(upsample: Int32, scale: Double) {
        self.upsample = upsample
        self.scale = scale
    }

    /// `smallestFace`: the smallest face box (pixels) the detector finds in an unscaled image.
    init(smallestFace: Double, minFaceSize: Int) {
        let ratio = smallestFace / Double(max(minFaceSize, 1))
        if ratio > 1 {
            upsample = Int32(min(3, Int(log2(ratio).rounded(.up))))
            scale = 1
        } else {
            upsample = 0
            scale = ratio < 0.9 ? ratio : 1
        }
    }
}

/// Runs one dlib detector on `frame` at `pyramid`, mapping its boxes back to frame pixels.
private func detectFaces(in frame: Frame, pyramid: DlibPyramid, minFaceSize: Int,
                         _ run: (UnsafePointer<UInt8>, Int32, Int32, Int32, Int32, Int32, UnsafeMutablePointer<odlib_box>,
                                 Int32) -> Int32) -> [Face] {
    let input = pyramid.scale < 1
        ? frame.resized(width: max(1, Int((Double(frame.width) * pyramid.scale).rounded())),
                        height: max(1, Int((Double(frame.height) * pyramid.scale).rounded())))
        : frame
    let xScale = Double(frame.width) / Double(input.width), yScale = Double(frame.height) / Double(input.height)
    var boxes = [odlib_box](repeating: odlib_box(), count: 64)
    let found = withExtendedLifetime(input) {
        boxes.withUnsafeMutableBufferPointer {
            run(input.pixels, Int32(input.width), Int32(input.height), Int32(input.stride), Int32(input.channels),
                pyramid.upsample, $0.baseAddress!, Int32($0.count))
        }
    }
    guard found > 0 else { return [] }
    return boxes.prefix(Int(min(found, 64))).compactMap { b in
        let box = Box(x: Double(b.x) * xScale, y: Double(b.y) * yScale,
                      width: Double(b.width) * xScale, height: Double(b.height) * yScale)
        guard min(box.width, box.height) >= Double(minFaceSize) else { return nil }
        return Face(box: box, score: Double(b.score))
    }
}

/// dlib's HOG frontal face detector (built into dlib, no model file), as face_recognition's
/// `model="hog"`: with min_face_size 40 the frame is doubled once, which is face_recognition's
/// default number_of_times_to_upsample (the default 20 doubles it twice). Frontal faces only; no landmarks.
public final class DlibHOGFaceDetector: FaceDetector {
    /// Smallest face box HOG finds without upsampling (measured on the face_recognition photos
    /// scaled down: 50 px missed, 60 px found).
    static let smallestFace = 60.0

    private let handle: OpaquePointer
    private let minFaceSize: Int
    let pyramid: DlibPyramid

    public init(configuration c: DetectionConfiguration) throws {
        handle = try withErrorBuffer { odlib_hog_create($0, $1) }
        minFaceSize = c.minFaceSize
        pyramid = DlibPyramid(smallestFace: Self.smallestFace, minFaceSize: c.minFaceSize)
    }

    deinit { odlib_hog_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        detectFaces(in: frame, pyramid: pyramid, minFaceSize: minFaceSize) {
            odlib_hog_detect(handle, $0, $1, $2, $3, $4, $5, $6, $7, nil, 0)
        }
    }
}

/// dlib's MMOD CNN face detector (mmod_human_face_detector.dat), as face_recognition's
/// `model="cnn"`: finds turned and partly hidden faces HOG misses, at many times the cost on a
/// CPU (measured here on 2 cores: 0.65 s for a 640x480 frame, 2.4 s when min_face_size below 70
/// doubles it; HOG takes 30 ms and 120 ms). No landmarks.
public final class DlibMMODFaceDetector: FaceDetector {
    /// Smallest face box MMOD finds without upsampling (measured on the face_recognition photos
    /// scaled down: 60 px missed, 70 px found).
    static let smallestFace = 70.0

    private let handle: OpaquePointer
    private let minFaceSize: Int
    let pyramid: DlibPyramid

    public init(configuration c: DetectionConfiguration, modelPath: String) throws {
        handle = try withErrorBuffer { odlib_mmod_create(modelPath, $0, $1) }
        minFaceSize = c.minFaceSize
        pyramid = DlibPyramid(smallestFace: Self.smallestFace, minFaceSize: c.minFaceSize)
    }

    deinit { odlib_mmod_release(handle) }

    public func detect(in frame: Frame) -> [Face] {
        detectFaces(in: frame, pyramid: pyramid, minFaceSize: minFaceSize) {
            odlib_mmod_detect(handle, $0, $1, $2, $3, $4, $5, $6, $7, nil, 0)
        }
    }
}

/// dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1.dat), the model of
/// face_recognition.face_encodings: the 5-point shape predictor finds the landmarks inside the
/// face box, the face is cut out aligned (150x150, 25% padding) and turned into 128 floats.
/// Euclidean distance below 0.6 means the same person. It finds its own landmarks, so it works
/// behind any detector (Haar, YuNet, HOG, MMOD).
public final class DlibEmbedder: FaceEmbedder {
    public let model = "dlib-resnet-v1"
    public let dimension = 128
    public let metric = DistanceMetric.euclidean
    private let handle: OpaquePointer

    public init(shapePredictorPath: String, resNetPath: String) throws {
        handle = try withErrorBuffer { odlib_embedder_create(shapePredictorPath, resNetPath, $0, $1) }
    }

    /// With the two model files from `models` (an error names the missing one).
    public convenience init(models: ModelFiles) throws {
        try self.init(shapePredictorPath: models.require(.dlibShapePredictor), resNetPath: models.require(.dlibResNet))
    }

    deinit { odlib_embedder_release(handle) }

    public func embed(_ face: Face, in frame: Frame) -> [Float]? {
        guard face.box.width >= 1, face.box.height >= 1 else { return nil }
        let box = odlib_box(x: Float(face.box.x), y: Float(face.box.y), width: Float(face.box.width),
                            height: Float(face.box.height), score: Float(face.score))
        var out = [Float](repeating: 0, count: dimension)
        let written = withExtendedLifetime(frame) {
            out.withUnsafeMutableBufferPointer {
                odlib_embedder_embed(handle, frame.pixels, Int32(frame.width), Int32(frame.height), Int32(frame.stride),
                                     Int32(frame.channels), box, $0.baseAddress, Int32(dimension), nil, 0)
            }
        }
        return written == dimension ? out : nil
    }
}
