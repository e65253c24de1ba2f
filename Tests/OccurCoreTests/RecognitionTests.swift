import Foundation
import Logging
import Testing
import OccurTestSupport
@testable import OccurCore

/// YuNet + SFace on the face_recognition sdist's photos, the gallery, and recognition per track.
@Suite struct RecognitionTests {
    let models = ModelFiles()

    func yunet() throws -> YuNetFaceDetector {
        try YuNetFaceDetector(configuration: DetectionConfiguration(), modelPath: models.require(.yunet))
    }

    func embedding(of image: String, detector: FaceDetector, embedder: FaceEmbedder) throws -> [Float] {
        let frame = try Frame.read(contentsOf: Fixtures.faceImage(image))
        let faces = detector.detect(in: frame)
        try #require(faces.count == 1, "\(image): \(faces.count) faces")
        return try #require(embedder.embed(faces[0], in: frame))
    }

    func freshGallery() throws -> FaceGallery {
        try FaceGallery(store: EventStore(path: Fixtures.temporaryDirectory("gallery") + "/occur.db"))
    }

    @Test(arguments: ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png",
                      "obama_partial_face.jpg", "obama_partial_face2.jpg"])
    func yunetFindsTheOneFaceWithLandmarks(image: String) throws {
        let frame = try Frame.read(contentsOf: Fixtures.faceImage(image))
        let faces = try yunet().detect(in: frame)
        #expect(faces.count == 1)
        let face = try #require(faces.first)
        #expect(face.landmarks.count == 5)
        #expect(face.score > 0.8)
        // Eyes above the mouth corners, all inside the box.
        let (rightEye, leftEye, mouthRight) = (face.landmarks[0], face.landmarks[1], face.landmarks[3])
        #expect(rightEye.y < mouthRight.y && leftEye.y < mouthRight.y)
        for p in face.landmarks {
            #expect(p.x >= face.box.x - 1 && p.x <= face.box.x + face.box.width + 1)
        }
    }

    @Test func sfaceSeparatesObamaFromBiden() throws {
        let detector = try yunet()
        let embedder = try SFaceEmbedder(modelPath: models.require(.sface))
        let obama = try embedding(of: "obama.jpg", detector: detector, embedder: embedder)
        let threshold = FaceRecognizer.defaultThreshold(model: embedder.model)
        for same in ["obama2.jpg", "obama3.jpg", "32bit.png"] {
            let d = distance(obama, try embedding(of: same, detector: detector, embedder: embedder), metric: .cosine)
            #expect(d < threshold, "obama-\(same) distance \(d)")
        }
        let biden = distance(obama, try embedding(of: "biden.jpg", detector: detector, embedder: embedder), metric: .cosine)
        #expect(biden > threshold, "obama-biden distance \(biden)")
    }

    @Test func enrolledObamaIsNamedAndBidenStaysUnknown() throws {
        let gallery = try freshGallery()
        let host = HostConfiguration()
        let faces = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
        let outcomes = try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")])
        #expect(outcomes == [.enrolled(path: Fixtures.faceImage("obama.jpg"))])
        for image in ["obama2.jpg", "obama3.jpg"] {
            let result = try faces.recognize(imageAt: Fixtures.faceImage(image))
            #expect(result.count == 1 && result[0].recognition?.identity == "obama", "\(image)")
        }
        let biden = try faces.recognize(imageAt: Fixtures.faceImage("biden.jpg"))
        #expect(biden.count == 1)
        #expect(biden[0].recognition != nil && biden[0].recognition?.identity == nil)
    }

    @Test func enrolmentReportsImagesWithoutExactlyOneFace() throws {
        let gallery = try freshGallery()
        let faces = try StillImageFaces(configuration: HostConfiguration(), gallery: gallery, logger: Fixtures.logger)
        let dir = Fixtures.temporaryDirectory("enrol")
        // Two faces side by side, made from real photos.
        let obama = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        let biden = try Frame.read(contentsOf: Fixtures.faceImage("biden.jpg"))
        let pair = Frame.filled(width: 1400, height: 700).pasting(obama, region: Box(x: 300, y: 50, width: 380, height: 500), atX: 0, y: 100)
            .pasting(biden, region: Box(x: 380, y: 120, width: 400, height: 520), atX: 800, y: 100)
        try pair.write(to: dir + "/pair.jpg")
        try Frame.filled(width: 400, height: 300, blue: 200, green: 180, red: 160).write(to: dir + "/wall.jpg")
        let outcomes = try faces.enroll(name: "someone", images: [dir + "/pair.jpg", dir + "/wall.jpg", dir + "/missing.jpg"])
        #expect(outcomes[0] == .severalFaces(path: dir + "/pair.jpg", count: 2))
        #expect(outcomes[1] == .noFace(path: dir + "/wall.jpg"))
        if case .unreadable = outcomes[2] {} else { Issue.record("missing file not reported: \(outcomes[2])") }
        #expect(try gallery.identities().isEmpty)
    }

    @Test func aNearTieBetweenTwoIdentitiesIsUnknown() throws {
        let gallery = try freshGallery()
        let faces = try StillImageFaces(configuration: HostConfiguration(), gallery: gallery, logger: Fixtures.logger)
        // The same person under two names: the best match cannot beat the runner-up by the margin.
        _ = try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")])
        _ = try faces.enroll(name: "barack", images: [Fixtures.faceImage("obama_partial_face2.jpg")])
        let result = try faces.recognize(imageAt: Fixtures.faceImage("obama2.jpg"))
        let r = try #require(result.first?.recognition)
        #expect(r.distance < faces.recognizer.threshold)
        #expect(abs((r.secondDistance ?? 9) - r.distance) < faces.recognizer.margin)
        #expect(r.identity == nil)
    }

    @Test func removingAPersonLeavesNoRowAndTheIndexFollows() throws {
        let path = Fixtures.temporaryDirectory("remove") + "/occur.db"
        let gallery = try FaceGallery(store: EventStore(path: path))
        try gallery.enroll(name: "a", embedding: [1, 0, 0], model: "m", source: nil)
        try gallery.enroll(name: "a", embedding: [0.9, 0.1, 0], model: "m", source: nil)
        try gallery.enroll(name: "b", embedding: [0, 1, 0], model: "m", source: nil)
        #expect(gallery.nearest([1, 0, 0], model: "m", metric: .cosine, k: 1).first?.name == "a")
        #expect(try gallery.remove(name: "a"))
        #expect(gallery.nearest([1, 0, 0], model: "m", metric: .cosine, k: 1).first?.name == "b")
        #expect(gallery.count(model: "m") == 1)
        #expect(try !gallery.remove(name: "a"))
        let rows = try EventStore(path: path).pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM embeddings") ?? -1,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM identities WHERE name = 'a'") ?? -1)
        }
        #expect(rows.0 == 1 && rows.1 == 0)
        // Embeddings of another model never mix in.
        #expect(gallery.nearest([0, 1, 0, 0], model: "m", metric: .cosine, k: 1).isEmpty)
        #expect(gallery.nearest([0, 1, 0], model: "other", metric: .cosine, k: 1).isEmpty)
    }

    /// A video of obama2's face gliding across a plain background (40 frames, 25/s), made with OpenCV.
    func movingFaceVideo(in dir: String) throws -> String {
        let photo = try Frame.read(contentsOf: Fixtures.faceImage("obama2.jpg"))
        let face = try #require(try yunet().detect(in: photo).first)
        let crop = Box(x: face.box.x - 30, y: face.box.y - 30, width: face.box.width + 60, height: face.box.height + 60)
        let background = Frame.filled(width: 960, height: 720, blue: 80, green: 90, red: 100)
        do {
            let writer = try VideoWriter(path: dir + "/moving.avi", fps: 25, width: 960, height: 720)
            for step in 0..<40 {
                writer.write(background.pasting(photo, region: crop, atX: 20 + step * 10, y: 40 + step * 3))
            }
        }  // the writer closes the file here
        return dir + "/moving.avi"
    }

    /// Runs one camera over `video` with `enrolled` in the gallery; returns its counters and the bus.
    func runCamera(on video: String, dir: String, enrolled: [String]) throws -> (CameraCounters, EventBus) {
        let gallery = try FaceGallery(store: EventStore(path: dir + "/occur.db"))
        var host = HostConfiguration()
        host.dataDir = dir
        if !enrolled.isEmpty {
            _ = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
                .enroll(name: "obama", images: enrolled.map(Fixtures.faceImage))
        }
        let bus = EventBus(writer: nil)
        let camera = CameraPipeline(configuration: CameraConfiguration(id: "cam", source: video),
                                    host: host, gallery: gallery, bus: bus, logger: Fixtures.logger)
        camera.run()
        return (camera.counters, bus)
    }

    @Test func aMovingFaceIsRecognisedOncePerTrack() throws {
        let dir = Fixtures.temporaryDirectory("moving")
        let (c, bus) = try runCamera(on: try movingFaceVideo(in: dir), dir: dir, enrolled: ["obama.jpg"])
        #expect(c.framesProcessed == 40)
        #expect(c.tracksStarted == 1)
        #expect(c.recognitions == 1)  // a confident match; recheck_seconds (10 s) outlasts the 1.6 s clip
        #expect(bus.publishedCounts["face_recognized"] == 1)
        #expect(bus.publishedCounts["face_unknown"] == nil)
        #expect(bus.publishedCounts["face_left"] == 1)
    }

    @Test func anUnsureTrackIsRecheckedSoonerButAnnouncedOnce() throws {
        let dir = Fixtures.temporaryDirectory("unsure")
        let (c, bus) = try runCamera(on: try movingFaceVideo(in: dir), dir: dir, enrolled: [])
        #expect(c.tracksStarted == 1)
        #expect(c.recognitions == 2)  // unknown at 0 s, checked again after uncertain_recheck_seconds (1 s)
        #expect(bus.publishedCounts["face_unknown"] == 1)  // still the same unknown-1: no new announcement
    }

    @Test func anotherProcessesEnrolmentReachesARunningGallery() throws {
        let path = Fixtures.temporaryDirectory("shared") + "/occur.db"
        let running = try FaceGallery(store: EventStore(path: path))   // as inside `occur run`
        let cli = try FaceGallery(store: EventStore(path: path))       // as `occur faces enroll`
        #expect(try !running.refreshIfChanged())
        try cli.enroll(name: "a", embedding: [1, 0, 0], model: "m", source: nil)
        #expect(running.nearest([1, 0, 0], model: "m", metric: .cosine, k: 1).isEmpty)
        #expect(try running.refreshIfChanged())
        #expect(running.nearest([1, 0, 0], model: "m", metric: .cosine, k: 1).first?.name == "a")
        #expect(try !running.refreshIfChanged())
        // Its own enrolments keep it in step without a reload.
        try running.enroll(name: "b", embedding: [0, 1, 0], model: "m", source: nil)
        #expect(try !running.refreshIfChanged())
        try cli.remove(name: "a")
        #expect(try running.refreshIfChanged())
        #expect(running.nearest([1, 0, 0], model: "m", metric: .cosine, k: 1).first?.name == "b")
    }

    @Test(arguments: [DistanceMetric.cosine, .euclidean])
    func nearestAgreesWithBruteForce(metric: DistanceMetric) throws {
        let gallery = try freshGallery()
        var generator = SystemRandomNumberGenerator()
        let entries = (0..<300).map { i in ("p\(i % 40)", (0..<20).map { _ in Float.random(in: -1...1, using: &generator) }) }
        try gallery.enrollMany(entries.map { (name: $0.0, embedding: $0.1) }, model: "m", source: nil)
        for _ in 0..<10 {
            let q = (0..<20).map { _ in Float.random(in: -1...1, using: &generator) }
            var expected: [String: Double] = [:]
            for (name, v) in entries { expected[name] = min(expected[name] ?? .infinity, distance(q, v, metric: metric)) }
            let want = expected.sorted { $0.value < $1.value }.prefix(5)
            let got = gallery.nearest(q, model: "m", metric: metric, k: 5)
            #expect(got.map(\.name) == want.map(\.key))
            for (g, w) in zip(got, want) { #expect(abs(g.distance - w.value) < 1e-4) }
        }
    }
}
