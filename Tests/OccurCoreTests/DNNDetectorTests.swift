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

/// Lighting correction for dark scenes, on a darkened real photo.
@Suite struct LightingTests {
    /// obama2.jpg as a night scene: out = in^(1/0.12), mean grey level about 10.
    func night() throws -> Frame {
        try Frame.read(contentsOf: Fixtures.faceImage("obama2.jpg")).enhanced(clipLimit: 0, gamma: 0.12)
    }

    @Test func autoCorrectsOnlyDarkFrames() throws {
        var detection = DetectionConfiguration()
        detection.lighting = "auto"
        let day = try Frame.read(contentsOf: Fixtures.faceImage("obama2.jpg"))
        let dark = try night()
        #expect(dark.meanBrightness < detection.darkThreshold && day.meanBrightness > detection.darkThreshold)
        #expect(detection.lightingCorrected(day) === day)  // bright frames pass untouched, no copy
        #expect(detection.lightingCorrected(dark).meanBrightness > dark.meanBrightness + 30)
    }

    @Test func aFaceTooDarkToRecogniseIsRecognisedWithCorrection() throws {
        let path = Fixtures.temporaryDirectory("night") + "/night.png"
        try night().write(to: path)
        func recognise(lighting: String) throws -> Recognition? {
            var host = HostConfiguration()
            host.detection.lighting = lighting
            let gallery = try FaceGallery(store: EventStore(path: Fixtures.temporaryDirectory("night") + "/occur.db"))
            let faces = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
            _ = try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")])
            return try faces.recognize(imageAt: path).first?.recognition
        }
        let plain = try #require(try recognise(lighting: "none"))
        let corrected = try #require(try recognise(lighting: "auto"))
        #expect(plain.identity == nil)  // measured: distance 0.68, beyond SFace's 0.637
        #expect(corrected.identity == "obama")  // measured: distance 0.46
        #expect(corrected.distance < plain.distance - 0.1)
    }
}
