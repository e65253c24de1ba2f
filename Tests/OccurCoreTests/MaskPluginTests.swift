import Foundation
import Logging
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

/// libMask.so through the plugin ABI, on the face_recognition sdist's photos: bare faces,
/// the same faces with a light-blue mask drawn from YuNet's landmarks, and tiny faces.
@Suite struct MaskPluginTests {
    static let photos = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png",
                         "obama_partial_face.jpg", "obama_partial_face2.jpg"]

    func maskWorker(config: String = "{}", logger: Logger = Fixtures.logger) throws -> (PluginWorker, EmittedResults) {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Mask"), expectedID: "mask")
        let emitted = EmittedResults()
        var settings = PluginSettings.fixture("mask", library: library.path, config: config)
        settings.queueCapacity = 1024   // the tests publish faster than the plugin classifies: drop nothing
        let worker = try PluginWorker(library: library, settings: settings, logger: logger) { result, _ in
            emitted.append(result)
        }
        return (worker, emitted)
    }

    func yunet() throws -> YuNetFaceDetector {
        try YuNetFaceDetector(configuration: DetectionConfiguration(), modelPath: ModelFiles().require(.yunet))
    }

    /// The photo and the one face YuNet finds in it.
    func photo(_ name: String, detector: YuNetFaceDetector) throws -> (Frame, Face) {
        let frame = try Frame.read(contentsOf: Fixtures.faceImage(name))
        let faces = detector.detect(in: frame)
        try #require(faces.count == 1, "\(name): \(faces.count) faces")
        return (frame, faces[0])
    }

    /// The frame with a light-blue surgical mask painted over nose and mouth, placed by
    /// YuNet's five landmarks: from 30% of the way between the eyes' line and the nose tip
    /// (just below the eyes, over the bridge of the nose) down to the chin (the box's
    /// bottom); cheek to cheek (the box's width) at the top, narrowing with a rounded chin
    /// to the mouth's width plus a fifth of the face. Painted as 24 horizontal strips pasted
    /// from a filled frame: the polygon traced row by row, no drawing code needed.
    static func withMask(_ frame: Frame, face: Face) -> Frame {
        let l = face.landmarks
        precondition(l.count == 5, "the mask is placed by YuNet's five landmarks")
        let (rightEye, leftEye, nose, mouthRight, mouthLeft) = (l[0], l[1], l[2], l[3], l[4])
        let eyeY = (rightEye.y + leftEye.y) / 2
        let top = eyeY + 0.3 * (nose.y - eyeY)
        let bottom = min(Double(frame.height), face.box.y + face.box.height)
        let centerX = (nose.x + (mouthRight.x + mouthLeft.x) / 2) / 2
        let topHalfWidth = 0.5 * face.box.width
        let chinHalfWidth = 0.5 * abs(mouthLeft.x - mouthRight.x) + 0.1 * face.box.width
        let cloth = Frame.filled(width: frame.width, height: frame.height, blue: 225, green: 200, red: 160)
        var masked = frame
        let strips = 24
        let stripHeight = (bottom - top) / Double(strips)
        for i in 0..<strips {
            let t = (Double(i) + 0.5) / Double(strips)
            let halfWidth = topHalfWidth + (chinHalfWidth - topHalfWidth) * t * t
            let x0 = max(0, (centerX - halfWidth).rounded())
            let x1 = min(Double(frame.width), (centerX + halfWidth).rounded())
            let y0 = max(0, (top + Double(i) * stripHeight).rounded())
            let y1 = min(Double(frame.height), (top + Double(i + 1) * stripHeight).rounded())
            guard x1 > x0, y1 > y0 else { continue }
            let strip = Box(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
            masked = masked.pasting(cloth, region: strip, atX: Int(x0), y: Int(y0))
        }
        return masked
    }

    static func event(_ kind: EventKind, sequence: UInt64, frame: Frame?, faces: [Face], seconds: Double = 0,
                      payload: String = "{}") -> Event {
        Event(kind: kind, sequence: sequence, cameraID: "cam", timestampNanos: Int64(seconds * 1e9), frame: frame,
              frameIndex: Int64(sequence), faces: faces, payloadJSON: payload)
    }

    /// One face event to classify and the label it should get.
    struct Case {
        var name: String
        var expected: String
        var frame: Frame
        var face: Face
    }

    /// Bare, masked and tiny versions of each sample photo's face.
    func samplePhotoCases(detector: YuNetFaceDetector) throws -> [Case] {
        var cases: [Case] = []
        for name in Self.photos {
            let (frame, face) = try photo(name, detector: detector)
            cases.append(Case(name: "\(name) bare", expected: "no_mask", frame: frame, face: face))
            cases.append(Case(name: "\(name) masked", expected: "mask", frame: Self.withMask(frame, face: face), face: face))
            // The photo shrunk until the face's shorter side is 15 px (< min_face_size 20).
            let scale = 15 / min(face.box.width, face.box.height)
            let small = frame.resized(width: max(1, Int((Double(frame.width) * scale).rounded())),
                                      height: max(1, Int((Double(frame.height) * scale).rounded())))
            var tiny = face
            tiny.box = Box(x: face.box.x * scale, y: face.box.y * scale,
                           width: face.box.width * scale, height: face.box.height * scale)
            cases.append(Case(name: "\(name) tiny", expected: "unsure", frame: small, face: tiny))
        }
        return cases
    }

    /// Bare and masked versions of every face of at least 40 px that YuNet finds in dlib's
    /// example photos (/usr/share/doc/libdlib19.1/examples/faces: VOC photos, bald_guys.jpg ...).
    func dlibPhotoCases(detector: YuNetFaceDetector) throws -> [Case] {
        let dir = "/usr/share/doc/libdlib19.1/examples/faces"
        var cases: [Case] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".jpg") }).sorted() {
            let frame = try Frame.read(contentsOf: dir + "/" + file)
            for (k, face) in detector.detect(in: frame).enumerated()
            where min(face.box.width, face.box.height) >= 40 && face.landmarks.count == 5 {
                cases.append(Case(name: "\(file)#\(k) bare", expected: "no_mask", frame: frame, face: face))
                cases.append(Case(name: "\(file)#\(k) masked", expected: "mask", frame: Self.withMask(frame, face: face),
                                  face: face))
            }
        }
        return cases
    }

    @Test func classifiesBareMaskedAndTinyFacesOnRealPhotos() throws {
        let detector = try yunet()
        let samples = try samplePhotoCases(detector: detector)
        let others = try dlibPhotoCases(detector: detector)
        try #require(samples.count == 21 && others.count >= 80, "\(samples.count) + \(others.count) cases")
        let cases = samples + others
        let (worker, emitted) = try maskWorker()
        let dispatcher = Dispatcher(workers: [worker])
        // Every case is a new track: no mask_changed may come out.
        for (i, c) in cases.enumerated() {
            var face = c.face
            face.trackID = Int64(i + 1)
            dispatcher.publish(Self.event(.faceAppeared, sequence: UInt64(i + 1), frame: c.frame, faces: [face]))
        }
        dispatcher.drainBlocking()

        let results = emitted.all
        let payloads = emitted.payloads("mask")
        try #require(results.count == cases.count && payloads.count == cases.count)
        var right: [String: (right: Int, total: Int)] = [:]
        for (i, (c, (result, payload))) in zip(cases, zip(results, payloads)).enumerated() {
            let label = payload["label"] as? String ?? "?"
            let probability = payload["probability"] as? Double
            let group = (i < samples.count ? "samples " : "dlib ") + c.expected
            right[group, default: (0, 0)].total += 1
            if label == c.expected { right[group]!.right += 1 }
            if i < samples.count || label != c.expected {
                let p = probability.map { String(format: "%.3f", $0) } ?? "null"
                print("mask: \(c.name.padding(toLength: 30, withPad: " ", startingAt: 0)) expected \(c.expected), got \(label) p=\(p)")
            }
            if i < samples.count { #expect(label == c.expected, "\(c.name)") }
            #expect(result.kind == "mask")
            #expect(payload["track_id"] as? Int == i + 1 && result.trackID == Int64(i + 1), "\(c.name)")
            let box = try #require(result.box)
            #expect(abs(box.x - c.face.box.x) < 1e-3 && abs(box.width - c.face.box.width) < 1e-3, "\(c.name)")
            if c.expected == "unsure" {
                #expect(payload["reason"] as? String == "face_too_small", "\(c.name)")
                #expect(result.confidence == nil, "\(c.name)")
            } else {
                #expect(abs((result.confidence ?? -1) - (probability ?? -2)) < 1e-3, "\(c.name)")
            }
        }
        for (group, r) in right.sorted(by: { $0.key < $1.key }) {
            print("mask: \(group): \(r.right)/\(r.total)")
        }
        let total = right.values.reduce(0) { $0 + $1.total }, correct = right.values.reduce(0) { $0 + $1.right }
        let accuracy = Double(correct) / Double(total)
        let c = worker.counters
        let classified = cases.count - Self.photos.count
        // Tiny faces cost next to nothing, so the time per classified face is the total over those.
        print(String(format: "mask: accuracy %d/%d = %.1f%% (bare -> no_mask, drawn mask -> mask, face < 20 px -> unsure); "
                     + "on_event %.1f ms per classified face (%d of %d calls), max %.1f ms",
                     correct, total, accuracy * 100, c.meanCallMicros * Double(c.delivered) / Double(classified) / 1000,
                     classified, Int(c.delivered), c.maxCallMicros / 1000))
        // Stated bound: at least 95% of all cases (measured 107/109: two drawn masks on small
        // faces in dlib's photos are missed), and every sample photo right (checked above).
        #expect(accuracy >= 0.95)
        #expect(c.errors == 0)
    }

    @Test func aTrackThatPutsOnAMaskChangesOnceAndIsForgottenWhenItLeaves() throws {
        let detector = try yunet()
        let (frame, detected) = try photo("obama2.jpg", detector: detector)
        var face = detected
        face.trackID = 7
        let masked = Self.withMask(frame, face: face)
        let (worker, emitted) = try maskWorker()
        let dispatcher = Dispatcher(workers: [worker])
        // No mask, still no mask, mask on (twice), then the person leaves and comes back masked.
        dispatcher.publish(Self.event(.faceAppeared, sequence: 1, frame: frame, faces: [face], seconds: 0))
        dispatcher.publish(Self.event(.faceUnknown, sequence: 2, frame: frame, faces: [face], seconds: 2))
        dispatcher.publish(Self.event(.faceRecognized, sequence: 3, frame: masked, faces: [face], seconds: 4))
        dispatcher.publish(Self.event(.faceRecognized, sequence: 4, frame: masked, faces: [face], seconds: 6))
        dispatcher.publish(Self.event(.faceLeft, sequence: 5, frame: nil, faces: [face], seconds: 7,
                                      payload: #"{"dwell_seconds": 7}"#))
        dispatcher.publish(Self.event(.faceAppeared, sequence: 6, frame: masked, faces: [face], seconds: 9))
        dispatcher.drainBlocking()

        #expect(emitted.payloads("mask").map { $0["label"] as? String } == ["no_mask", "no_mask", "mask", "mask", "mask"])
        let changes = emitted.payloads("mask_changed")
        #expect(changes.count == 1)
        let change = try #require(changes.first)
        #expect(change["from"] as? String == "no_mask")
        #expect(change["to"] as? String == "mask")
        #expect(change["track_id"] as? Int == 7)
        // mask_changed comes right after the mask result of the event that flipped it.
        #expect(emitted.all.map(\.kind) == ["mask", "mask", "mask", "mask_changed", "mask", "mask"])
        #expect(emitted.all.first { $0.kind == "mask_changed" }?.trackID == 7)
    }

    @Test func aFrameEventClassifiesEveryFaceInIt() throws {
        let detector = try yunet()
        let (obama, obamaFace) = try photo("obama.jpg", detector: detector)
        let (biden, _) = try photo("biden.jpg", detector: detector)
        // Masked Obama on the left, bare Biden on the right, in one frame.
        let pair = Frame.filled(width: 1400, height: 700)
            .pasting(Self.withMask(obama, face: obamaFace), region: Box(x: 300, y: 50, width: 380, height: 500), atX: 0, y: 100)
            .pasting(biden, region: Box(x: 380, y: 120, width: 400, height: 520), atX: 800, y: 100)
        var faces = detector.detect(in: pair).sorted { $0.box.x < $1.box.x }
        try #require(faces.count == 2)
        faces[0].trackID = 1
        faces[1].trackID = 2
        let (worker, emitted) = try maskWorker()
        let dispatcher = Dispatcher(workers: [worker])
        dispatcher.publish(Self.event(.frame, sequence: 1, frame: pair, faces: faces))
        dispatcher.drainBlocking()
        let labels = emitted.payloads("mask").map { ($0["track_id"] as? Int ?? -1, $0["label"] as? String ?? "?") }
        #expect(labels.map(\.0) == [1, 2])
        #expect(labels.map(\.1) == ["mask", "no_mask"])
    }

    @Test func aHigherThresholdLeavesDoubtfulFacesUnsure() throws {
        // With threshold 1 no real probability reaches it: every classified face is unsure.
        let detector = try yunet()
        let (frame, face) = try photo("biden.jpg", detector: detector)
        let (worker, emitted) = try maskWorker(config: #"{"threshold": 1}"#)
        let dispatcher = Dispatcher(workers: [worker])
        dispatcher.publish(Self.event(.faceAppeared, sequence: 1, frame: frame, faces: [face]))
        dispatcher.drainBlocking()
        let payload = try #require(emitted.payloads("mask").first)
        #expect(payload["label"] as? String == "unsure")
        #expect(payload["reason"] as? String == "below_threshold")
        #expect((payload["mask_probability"] as? Double ?? 1) < 0.5)
    }

    @Test(arguments: [#"{"threshold": 3}"#, #"{"threshold": 0.2}"#, #"{"threshold": "high"}"#,
                      #"{"min_face_size": -1}"#, #"{"margin": 2}"#, #"{"treshold": 0.5}"#, #"{"models_dir": 5}"#])
    func badConfigIsRefusedWithInvalidConfig(config: String) throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Mask"), expectedID: "mask")
        let log = LogLines()
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -2)) {
            try PluginWorker(library: library, settings: .fixture("mask", library: library.path, config: config),
                             logger: log.logger) { _, _ in }
        }
        let lines = log.lines.withLock { $0 }
        #expect(lines.contains { $0.hasPrefix("config.") }, "\(config): \(lines)")
        if config == #"{"threshold": 3}"# {
            #expect(lines.contains("config.threshold: 3 is out of range: a probability from 0.5 to 1 (default 0.5)"))
        }
    }

    @Test func aMissingModelFailsCreateNamingTheFileAndScriptsModels() throws {
        let empty = Fixtures.temporaryDirectory("no-models")
        let library = try PluginLibrary.load(path: Fixtures.plugin("Mask"), expectedID: "mask")
        let log = LogLines()
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -1)) {
            try PluginWorker(library: library, settings: .fixture("mask", library: library.path,
                                                                  config: #"{"models_dir": "\#(empty)"}"#),
                             logger: log.logger) { _, _ in }
        }
        let lines = log.lines.withLock { $0 }
        #expect(lines.contains { $0.contains(empty + "/face_mask_detector.onnx") && $0.contains("scripts/models") }, "\(lines)")
    }
}
