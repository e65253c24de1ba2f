import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// dlib's HOG and MMOD detectors and ResNet descriptor on the face_recognition sdist's photos:
/// the checks face_recognition's own test suite makes, enrolment and recognition through the
/// host, and the labelled crops Debian's libdlib19.1 ships.
@Suite struct DlibTests {
    let models = ModelFiles()

    /// 5 people x 11 aligned 150x150 crops, shipped with Debian's libdlib19.1.
    static let johns = "/usr/share/doc/libdlib19.1/examples/johns"

    func embedder() throws -> DlibEmbedder { try DlibEmbedder(models: models) }

    /// MMOD on the full-size photos takes seconds each; min_face_size 140 (the faces are 230+ px)
    /// halves the frame first and still finds them.
    func mmod(minFaceSize: Int = 140) throws -> DlibMMODFaceDetector {
        var c = DetectionConfiguration()
        c.minFaceSize = minFaceSize
        return try DlibMMODFaceDetector(configuration: c, modelPath: models.require(.dlibMMOD))
    }

    func onlyFace(in image: String, detector: FaceDetector) throws -> (Frame, Face) {
        let frame = try Frame.read(contentsOf: Fixtures.faceImage(image))
        let faces = detector.detect(in: frame)
        try #require(faces.count == 1, "\(image): \(faces.count) faces")
        return (frame, faces[0])
    }

    func embedding(of image: String, detector: FaceDetector, embedder: DlibEmbedder) throws -> [Float] {
        let (frame, face) = try onlyFace(in: image, detector: detector)
        return try #require(embedder.embed(face, in: frame))
    }

    func expectPlausibleFace(_ face: Face, in frame: Frame, _ image: String) {
        #expect(face.box.x >= 0 && face.box.y >= 0, "\(image): \(face.box)")
        #expect(face.box.x + face.box.width <= Double(frame.width), "\(image): \(face.box)")
        #expect(face.box.y + face.box.height <= Double(frame.height), "\(image): \(face.box)")
        #expect(face.box.width > 150 && face.box.height > 150, "\(image): \(face.box)")  // faces here are 190-340 px
        #expect(face.score > 0 && face.score <= 1, "\(image): score \(face.score)")
        #expect(face.landmarks.isEmpty)
    }

    @Test func minFaceSizeSetsThePyramid() {
        // face_recognition's default (upsample once) for min_face_size 40.
        #expect(DlibPyramid(smallestFace: DlibHOGFaceDetector.smallestFace, minFaceSize: 40)
            == DlibPyramid(upsample: 1, scale: 1))
        #expect(DlibPyramid(smallestFace: DlibHOGFaceDetector.smallestFace, minFaceSize: 20)
            == DlibPyramid(upsample: 2, scale: 1))
        #expect(DlibPyramid(smallestFace: DlibHOGFaceDetector.smallestFace, minFaceSize: 8)
            == DlibPyramid(upsample: 3, scale: 1))
        #expect(DlibPyramid(smallestFace: DlibMMODFaceDetector.smallestFace, minFaceSize: 70)
            == DlibPyramid(upsample: 0, scale: 1))
        #expect(DlibPyramid(smallestFace: DlibMMODFaceDetector.smallestFace, minFaceSize: 140)
            == DlibPyramid(upsample: 0, scale: 0.5))
    }

    // face_recognition's test_face_locations / test_partial_face_locations / 32-bit PNG.
    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png",
                      "obama_partial_face.jpg", "obama_partial_face2.jpg"])
    func hogFindsTheOneFace(image: String) throws {
        var c = DetectionConfiguration()
        c.minFaceSize = 40   // upsample once, as face_recognition does
        let detector = try DlibHOGFaceDetector(configuration: c)
        let (frame, face) = try onlyFace(in: image, detector: detector)
        if image.hasPrefix("obama_partial") {
            #expect(face.box.width > 150 && face.box.height > 150, "\(image): \(face.box)")
        } else {
            expectPlausibleFace(face, in: frame, image)
        }
    }

    // face_recognition's test_cnn_face_locations.
    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"])
    func mmodFindsTheOneFace(image: String) throws {
        let (frame, face) = try onlyFace(in: image, detector: try mmod())
        expectPlausibleFace(face, in: frame, image)
    }

    @Test func mmodAtFullSizeAgreesWithHOG() throws {
        // min_face_size 70: no resampling at all, the frame as face_recognition would see it.
        let detector = try mmod(minFaceSize: 70)
        #expect(detector.pyramid == DlibPyramid(upsample: 0, scale: 1))
        let (_, cnn) = try onlyFace(in: "obama.jpg", detector: detector)
        let (_, hog) = try onlyFace(in: "obama.jpg", detector: try DlibHOGFaceDetector(configuration: DetectionConfiguration()))
        #expect(cnn.box.iou(hog.box) > 0.6, "mmod \(cnn.box) hog \(hog.box)")
    }

    // face_recognition's test_compare_faces / test_face_distance: same person < 0.6, else > 0.6.
    @Test func descriptorDistancesAreOnFaceRecognitionsScale() throws {
        var c = DetectionConfiguration()
        c.minFaceSize = 40   // upsample once, as face_recognition does
        let detector = try DlibHOGFaceDetector(configuration: c)
        let embedder = try embedder()
        #expect(embedder.model == "dlib-resnet-v1" && embedder.dimension == 128 && embedder.metric == .euclidean)
        #expect(FaceRecognizer.defaultThreshold(model: embedder.model) == 0.6)
        let obama = try embedding(of: "obama.jpg", detector: detector, embedder: embedder)
        for same in ["obama2.jpg", "obama3.jpg", "32bit.png"] {
            let d = distance(obama, try embedding(of: same, detector: detector, embedder: embedder), metric: .euclidean)
            print("dlib distance obama-\(same): \(d)")
            #expect(d < 0.6, "obama-\(same) distance \(d)")
        }
        let biden = distance(obama, try embedding(of: "biden.jpg", detector: detector, embedder: embedder),
                             metric: .euclidean)
        print("dlib distance obama-biden.jpg: \(biden)")
        #expect(biden > 0.6, "obama-biden distance \(biden)")
    }

    @Test func enrolledObamaIsNamedAndBidenStaysUnknown() throws {
        let gallery = try FaceGallery(store: EventStore(path: Fixtures.temporaryDirectory("dlib-gallery") + "/occur.db"))
        var host = HostConfiguration()
        host.detection.detector = "dlib_hog"
        host.recognition.backend = "dlib"
        let faces = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
        #expect(faces.recognizer.embedder.model == "dlib-resnet-v1")
        #expect(faces.recognizer.threshold == 0.6)
        let outcomes = try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")])
        #expect(outcomes == [.enrolled(path: Fixtures.faceImage("obama.jpg"))])
        let obama2 = try faces.recognize(imageAt: Fixtures.faceImage("obama2.jpg"))
        #expect(obama2.count == 1 && obama2[0].recognition?.identity == "obama")
        let biden = try faces.recognize(imageAt: Fixtures.faceImage("biden.jpg"))
        #expect(biden.count == 1)
        let r = try #require(biden.first?.recognition)
        #expect(r.identity == nil && r.distance > 0.6, "biden: \(r.identity ?? "unknown") at \(r.distance)")
    }

    @Test func theEmbedderWorksBehindHaar() throws {
        // Haar boxes sit differently from HOG's; the shape predictor still finds the landmarks.
        // (Haar also finds small false faces in the suits and curtains: take the largest.)
        let haar = try HaarFaceDetector(configuration: DetectionConfiguration())
        let embedder = try embedder()
        func embedding(of image: String) throws -> [Float] {
            let frame = try Frame.read(contentsOf: Fixtures.faceImage(image))
            let face = try #require(haar.detect(in: frame).max { $0.box.width < $1.box.width }, "\(image): no face")
            #expect(face.box.width > 150, "\(image): \(face.box)")
            return try #require(embedder.embed(face, in: frame))
        }
        let obama = try embedding(of: "obama.jpg")
        let obama2 = distance(obama, try embedding(of: "obama2.jpg"), metric: .euclidean)
        let biden = distance(obama, try embedding(of: "biden.jpg"), metric: .euclidean)
        print("dlib distance behind haar: obama-obama2 \(obama2), obama-biden \(biden)")
        #expect(obama2 < 0.6 && biden > 0.6, "obama2 \(obama2) biden \(biden)")

        // And `auto` picks dlib when the detector has no landmarks for SFace.
        var host = HostConfiguration()
        host.detection.detector = "haar"
        let gallery = try FaceGallery(store: EventStore(path: Fixtures.temporaryDirectory("dlib-auto") + "/occur.db"))
        let recognizer = try #require(try makeFaceRecognizer(host, gallery: gallery, logger: Fixtures.logger))
        #expect(recognizer.embedder.model == "dlib-resnet-v1")
    }

    @Test func aBrokenModelFileIsAnErrorNamingIt() throws {
        let dir = Fixtures.temporaryDirectory("dlib-broken")
        try Data("not a dlib model".utf8).write(to: URL(fileURLWithPath: dir + "/resnet.dat"))
        let error = #expect(throws: VisionError.self) {
            try DlibEmbedder(shapePredictorPath: models.require(.dlibShapePredictor), resNetPath: dir + "/resnet.dat")
        }
        #expect(error?.message.contains(dir + "/resnet.dat") == true, "\(error?.message ?? "")")
        let missing = #expect(throws: VisionError.self) {
            try DlibMMODFaceDetector(configuration: DetectionConfiguration(), modelPath: dir + "/none.dat")
        }
        #expect(missing?.message.contains(dir + "/none.dat") == true, "\(missing?.message ?? "")")
    }

    @Test func theYamlChoicesReachTheFactories() throws {
        let host = try HostConfiguration(ConfigNode.parse("""
            cameras:
              a: { source: x.mp4 }
            detection: { detector: dlib_mmod }
            recognition: { backend: dlib }
            """, file: "/srv/occur/occur.yaml"))
        #expect(host.detection.detector == "dlib_mmod" && host.recognition.backend == "dlib")
        #expect(try makeFaceDetector(host.detection, models: models) is DlibMMODFaceDetector)
        var hog = host.detection
        hog.detector = "dlib_hog"
        #expect(try makeFaceDetector(hog, models: models) is DlibHOGFaceDetector)
    }

    // DESIGN.md: dlib's descriptor gets every johns crop's nearest other crop from the same person.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: DlibTests.johns)))
    func everyJohnsNearestNeighbourIsTheSamePerson() throws {
        let embedder = try embedder()
        var crops: [(person: String, file: String, embedding: [Float])] = []
        let people = try FileManager.default.contentsOfDirectory(atPath: Self.johns).sorted()
        for person in people {
            let dir = Self.johns + "/" + person
            for file in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where file.hasSuffix(".jpg") {
                let frame = try Frame.read(contentsOf: dir + "/" + file)
                // Already aligned chips: the whole image is the face box.
                let whole = Face(box: Box(x: 0, y: 0, width: Double(frame.width), height: Double(frame.height)))
                crops.append((person, file, try #require(embedder.embed(whole, in: frame), "\(person)/\(file)")))
            }
        }
        try #require(people.count == 5 && crops.count == 55, "\(people.count) people, \(crops.count) crops")
        var correct = 0
        var sameMax = 0.0, differentMin = Double.infinity
        for (i, a) in crops.enumerated() {
            var best = (index: -1, distance: Double.infinity)
            for (j, b) in crops.enumerated() where j != i {
                let d = distance(a.embedding, b.embedding, metric: .euclidean)
                if d < best.distance { best = (j, d) }
                if a.person == b.person { sameMax = max(sameMax, d) } else { differentMin = min(differentMin, d) }
            }
            if crops[best.index].person == a.person { correct += 1 } else {
                Issue.record("\(a.person)/\(a.file) is nearest to \(crops[best.index].person)/\(crops[best.index].file)")
            }
        }
        print("johns: \(correct)/\(crops.count) nearest from the same person; same-person max \(sameMax), different-person min \(differentMin)")
        #expect(correct == 55)
        #expect(sameMax < 0.6 && differentMin >= 0.6)
    }
}
