import Foundation
import Logging
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

/// libPose.so through the plugin ABI on opencv-doc's messi5.jpg (548 x 342): keypoints
/// against joint positions read off the photo by eye, the same person turned on its side,
/// suspected falls per track, and config checks.
@Suite struct PosePluginTests {
    /// Joints of messi5.jpg read by eye on 4x enlargements with a 10 px grid (frame pixels),
    /// MediaPipe indices; the person's left is the photo's right. Each has a stated bound in
    /// frame pixels (Messi is about 300 px tall): 20 px, except for his outstretched left leg,
    /// which the model draws shorter than it is (knee on the shorts, ankle on the shin:
    /// measured 34 and 53 px off), so 40 and 60 px there.
    static let messiJoints: [(index: Int, name: String, x: Double, y: Double, tolerance: Double)] = [
        (13, "left elbow", 312, 150, 20), (14, "right elbow", 150, 124, 20),
        (15, "left wrist", 344, 161, 20), (16, "right wrist", 102, 103, 20),
        (25, "left knee", 348, 250, 40), (26, "right knee", 226, 280, 20),
        (27, "left ankle", 422, 266, 60), (28, "right ankle", 280, 312, 20),
    ]

    func poseWorker(config: String = "{}") throws -> (PluginWorker, EmittedResults) {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Pose"), expectedID: "pose")
        let emitted = EmittedResults()
        let worker = try PluginWorker(library: library, settings: .fixture("pose", library: library.path, config: config),
                                      logger: Fixtures.logger) { result, _ in emitted.append(result) }
        return (worker, emitted)
    }

    /// messi5.jpg and Messi's face (the largest YuNet finds: the others are the crowd's).
    func messi() throws -> (Frame, Face) {
        var configuration = DetectionConfiguration()
        configuration.scoreThreshold = 0.5   // his face is turned and tilted: YuNet scores it below 0.8
        configuration.minFaceSize = 20
        let detector = try YuNetFaceDetector(configuration: configuration, modelPath: ModelFiles().require(.yunet))
        let frame = try Frame.read(contentsOf: Fixtures.openCVData + "/messi5.jpg")
        let face = try #require(detector.detect(in: frame).max { $0.box.width < $1.box.width })
        try #require(face.landmarks.count == 5)
        return (frame, face)
    }

    /// The frame and face turned 90 degrees clockwise: (x, y) -> (height - y, x).
    static func lyingDown(_ frame: Frame, face: Face) -> (Frame, Face) {
        let h = Double(frame.height)
        var turned = face
        turned.box = Box(x: h - face.box.y - face.box.height, y: face.box.x, width: face.box.height, height: face.box.width)
        turned.landmarks = face.landmarks.map { (x: h - $0.y, y: $0.x) }
        return (frame.rotated90(), turned)
    }

    static func event(_ kind: EventKind, sequence: UInt64, frame: Frame?, faces: [Face], seconds: Double = 0) -> Event {
        Event(kind: kind, sequence: sequence, cameraID: "cam", timestampNanos: Int64(seconds * 1e9), frame: frame,
              frameIndex: Int64(sequence), faces: faces, payloadJSON: "{}")
    }

    static func keypoints(_ payload: [String: Any]) -> [(x: Double, y: Double, visibility: Double)] {
        (payload["keypoints"] as? [[Double]] ?? []).map { (x: $0[0], y: $0[1], visibility: $0[2]) }
    }

    /// A copy of `frame` with a small labelled box on each keypoint, for looking at.
    static func drawn(_ frame: Frame, _ points: [(x: Double, y: Double, visibility: Double)]) -> Frame {
        var out = frame
        for (i, p) in points.enumerated() where [0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28].contains(i) {
            out = out.annotated(box: Box(x: p.x - 2, y: p.y - 2, width: 4, height: 4), label: "\(i)") ?? out
        }
        return out
    }

    @Test func messiKeypointsLandOnHisJoints() throws {
        var (frame, face) = try messi()
        face.trackID = 1
        let (worker, emitted) = try poseWorker()
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...5 {   // five calls for a steadier cost figure
            dispatcher.publish(Self.event(.faceAppeared, sequence: UInt64(i), frame: frame, faces: [face], seconds: Double(i)))
        }
        dispatcher.drainBlocking()
        let payloads = emitted.payloads("pose")
        try #require(payloads.count == 5)
        let payload = payloads[0]
        let points = Self.keypoints(payload)
        try #require(points.count == 33)
        let picture = Fixtures.temporaryDirectory("pose") + "/messi-pose.png"
        try Self.drawn(frame, points).write(to: picture)
        print("pose: messi5.jpg face \(face.box); keypoints drawn on \(picture); posture \(payload["posture"] ?? "?")")
        var errors: [Double] = []
        for joint in Self.messiJoints {
            let p = points[joint.index]
            let error = hypot(p.x - joint.x, p.y - joint.y)
            errors.append(error)
            print(String(format: "pose: #%d %@ at (%.1f, %.1f), by eye (%.0f, %.0f): %.1f px (bound %.0f), visibility %.2f",
                         joint.index, joint.name, p.x, p.y, joint.x, joint.y, error, joint.tolerance, p.visibility))
            #expect(error <= joint.tolerance, "\(joint.name): \(p) vs (\(joint.x), \(joint.y))")
        }
        let c = worker.counters
        print(String(format: "pose: joint error median %.1f px, worst %.1f px over %d joints; on_event mean %.1f ms, "
                     + "max %.1f ms over %d calls (one face event each, messi5.jpg 548x342, debug build)",
                     errors.sorted()[errors.count / 2], errors.max() ?? 0, errors.count,
                     c.meanCallMicros / 1000, c.maxCallMicros / 1000, Int(c.delivered)))
        #expect(payload["posture"] as? String == "standing")
        #expect(payload["track_id"] as? Int == 1)
        #expect((payload["score"] as? Double ?? 0) > 0.9)
        #expect(emitted.all.first?.box != nil)
        #expect(emitted.payloads("fall_suspected").isEmpty)
        #expect(c.errors == 0)
    }

    @Test func aPersonTurnedOnTheirSideIsLying() throws {
        let (upright, uprightFace) = try messi()
        let (frame, face) = Self.lyingDown(upright, face: uprightFace)
        let (worker, emitted) = try poseWorker()
        let dispatcher = Dispatcher(workers: [worker])
        dispatcher.publish(Self.event(.faceAppeared, sequence: 1, frame: upright, faces: [uprightFace]))
        dispatcher.publish(Self.event(.faceAppeared, sequence: 2, frame: frame, faces: [face]))
        dispatcher.drainBlocking()
        let payloads = emitted.payloads("pose")
        try #require(payloads.count == 2)
        #expect(payloads[1]["posture"] as? String == "lying")
        // The keypoints turn with the picture: each lies where the upright one went.
        let h = Double(upright.height)
        let before = Self.keypoints(payloads[0]), after = Self.keypoints(payloads[1])
        let picture = Fixtures.temporaryDirectory("pose") + "/messi-lying.png"
        try Self.drawn(frame, after).write(to: picture)
        print("pose: lying keypoints drawn on \(picture)")
        for joint in Self.messiJoints {
            let p = before[joint.index], q = after[joint.index]
            #expect(hypot(q.x - (h - p.y), q.y - p.x) <= 10, "\(joint.name)")
        }
        #expect(emitted.payloads("fall_suspected").isEmpty)   // no track: nothing to follow
    }

    @Test func standingThenLyingWithinFallSecondsIsOneSuspectedFall() throws {
        let (upright, detected) = try messi()
        var face = detected
        face.trackID = 5
        var (lying, lyingFace) = Self.lyingDown(upright, face: face)
        lyingFace.trackID = 5
        // Track 6 goes down too, but after 3 s: slower than fall_seconds 2.0.
        var slow = face, slowLying = lyingFace
        slow.trackID = 6
        slowLying.trackID = 6
        let (worker, emitted) = try poseWorker(config: #"{"fall_seconds": 2.0}"#)
        let dispatcher = Dispatcher(workers: [worker])
        dispatcher.publish(Self.event(.faceAppeared, sequence: 1, frame: upright, faces: [face], seconds: 10))
        dispatcher.publish(Self.event(.faceAppeared, sequence: 2, frame: upright, faces: [slow], seconds: 10))
        dispatcher.publish(Self.event(.faceRecognized, sequence: 3, frame: lying, faces: [lyingFace], seconds: 11.5))
        dispatcher.publish(Self.event(.faceRecognized, sequence: 4, frame: lying, faces: [lyingFace], seconds: 12))
        dispatcher.publish(Self.event(.faceRecognized, sequence: 5, frame: lying, faces: [slowLying], seconds: 13))
        dispatcher.drainBlocking()
        #expect(emitted.payloads("pose").map { $0["posture"] as? String } == ["standing", "standing", "lying", "lying", "lying"])
        let falls = emitted.payloads("fall_suspected")
        #expect(falls.count == 1)
        let fall = try #require(falls.first)
        #expect(fall["from"] as? String == "standing")
        #expect(fall["to"] as? String == "lying")
        #expect(abs((fall["seconds"] as? Double ?? 0) - 1.5) < 0.001)
        #expect(fall["track_id"] as? Int == 5)
        #expect(emitted.all.map(\.kind) == ["pose", "pose", "pose", "fall_suspected", "pose", "pose"])
    }

    @Test(arguments: [#"{"person_detector": "yolo"}"#, #"{"person_detector": 1}"#, #"{"min_visibility": 1.5}"#,
                      #"{"min_visibility": "high"}"#, #"{"fall_seconds": 0}"#, #"{"fall_seconds": -1}"#,
                      #"{"fall_second": 2}"#, #"{"models_dir": 5}"#, "[1, 2]"])
    func badConfigIsRefusedWithInvalidConfig(config: String) throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Pose"), expectedID: "pose")
        let log = LogLines()
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -2)) {
            try PluginWorker(library: library, settings: .fixture("pose", library: library.path, config: config),
                             logger: log.logger) { _, _ in }
        }
        let lines = log.lines.withLock { $0 }
        #expect(lines.contains { $0.hasPrefix("config") }, "\(config): \(lines)")
    }

    @Test func aMissingModelFailsCreateNamingTheFileAndScriptsModels() throws {
        let empty = Fixtures.temporaryDirectory("no-models")
        let library = try PluginLibrary.load(path: Fixtures.plugin("Pose"), expectedID: "pose")
        let log = LogLines()
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -1)) {
            try PluginWorker(library: library, settings: .fixture("pose", library: library.path,
                                                                  config: #"{"models_dir": "\#(empty)"}"#),
                             logger: log.logger) { _, _ in }
        }
        let lines = log.lines.withLock { $0 }
        #expect(lines.contains { $0.contains(empty + "/pose_landmark_full.onnx") && $0.contains("scripts/models") }, "\(lines)")
    }
}
