import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// The SSD and BlazeFace detectors on the face_recognition sdist's photos.
@Suite struct DNNDetectorTests {
    func detector(_ name: String) throws -> FaceDetector {
        let host = try HostConfiguration(ConfigNode.parse(
            "detection: { detector: \(name), score_threshold: 0.5 }", file: "occur.yaml"))
        return try makeFaceDetector(host.detection, models: ModelFiles())
    }

    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"])
    func ssdFindsTheFace(image: String) throws {
        try expectOneFaceLikeYuNet(try detector("ssd"), image)
    }

    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"])
    func blazeFaceFindsTheFace(image: String) throws {
        try expectOneFaceLikeYuNet(try detector("blazeface"), image)
    }

    @Test func aMissingModelNamesTheCommandThatPreparesIt() throws {
        var c = DetectionConfiguration()
        c.detector = "ssd"
        let error = #expect(throws: MissingModelError.self) {
            try makeFaceDetector(c, models: ModelFiles(directory: "/nonexistent/models"))
        }
        #expect(error?.description.contains("run scripts/models") == true)
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
