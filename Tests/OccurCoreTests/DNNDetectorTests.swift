import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// The SSD and BlazeFace detectors on the face_recognition sdist's photos.
@Suite struct DNNDetectorTests {
    let models = ModelFiles().directory

    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"])
    func ssdFindsTheFace(image: String) throws {
        var c = DetectionConfiguration()
        c.scoreThreshold = 0.5
        let detector = try SSDFaceDetector(configuration: c, prototxt: models + "/deploy.prototxt",
                                           caffemodel: models + "/res10_300x300_ssd_iter_140000.caffemodel")
        try expectOneFaceLikeYuNet(detector, image)
    }

    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"])
    func blazeFaceFindsTheFace(image: String) throws {
        var c = DetectionConfiguration()
        c.scoreThreshold = 0.5
        let detector = try BlazeFaceDetector(configuration: c, modelPath: models + "/face_detection_short_range.onnx")
        try expectOneFaceLikeYuNet(detector, image)
    }

    /// One face, overlapping the one YuNet finds.
    func expectOneFaceLikeYuNet(_ detector: FaceDetector, _ image: String) throws {
        let frame = try Frame.read(contentsOf: Fixtures.faceImage(image))
        let faces = detector.detect(in: frame)
        let reference = try YuNetFaceDetector(configuration: DetectionConfiguration(),
                                              modelPath: ModelFiles().require(.yunet)).detect(in: frame)
        #expect(faces.count == 1, "\(image): \(faces.map(\.box))")
        if let face = faces.first, let ref = reference.first {
            #expect(face.box.iou(ref.box) > 0.3, "\(image): \(face.box) vs YuNet \(ref.box)")
        }
    }
}
