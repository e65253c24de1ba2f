import Foundation
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

/// libMovement.so through the plugin ABI, on opencv-doc's vtest.avi (pedestrians on a walkway,
/// 768x576, 10 frames/s, 795 frames) and on sequences made from its frames.
@Suite(.serialized) struct MovementPluginTests {
    static let video = Fixtures.openCVData + "/vtest.avi"
    /// Across the walkway, left of the lamp post, drawn upwards: `left_to_right` is a person
    /// walking towards the image's right edge (sides as seen walking from `from` to `to`).
    static let walkwayLine = #"{"name": "walkway", "from": [250, 340], "to": [250, 150]}"#

    /// What the plugin emitted, with the frame of the event it was handling when asked.
    final class Emitted: Sendable {
        struct Item: Sendable {
            let result: PluginResult
            let frameIndex: Int64?
            let frame: Frame?
            var payload: [String: Any] {
                (try? JSONSerialization.jsonObject(with: Data(result.payloadJSON.utf8))) as? [String: Any] ?? [:]
            }
        }

        private let items = Mutex<[Item]>([])
        let keepFramesFor: Set<String>
        init(keepFramesFor: Set<String>) { self.keepFramesFor = keepFramesFor }
        func append(_ result: PluginResult, _ event: Event?) {
            let frame = keepFramesFor.contains(result.kind) ? event?.frame : nil
            items.withLock { $0.append(Item(result: result, frameIndex: event?.frameIndex, frame: frame)) }
        }
        var all: [Item] { items.withLock { $0 } }
        func of(_ kind: String) -> [Item] { all.filter { $0.result.kind == kind } }
    }

    /// One plugin worker fed through a dispatcher that never drops (block on a full queue).
    struct Run {
        let worker: PluginWorker
        let dispatcher: Dispatcher
        let emitted: Emitted
        private var sequence: UInt64 = 0

        init(config: String, keepFramesFor: Set<String> = []) throws {
            let library = try PluginLibrary.load(path: Fixtures.plugin("Movement"), expectedID: "movement")
            var settings = PluginSettings.fixture("movement", library: library.path, config: config)
            settings.queueCapacity = 8
            settings.overflow = .block
            let emitted = Emitted(keepFramesFor: keepFramesFor)
            worker = try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { result, event in
                emitted.append(result, event)
            }
            self.emitted = emitted
            dispatcher = Dispatcher(workers: [worker])
        }

        mutating func publish(_ kind: EventKind, index: Int64, fps: Double, frame: Frame?, faces: [Face] = []) {
            sequence += 1
            dispatcher.publish(Event(kind: kind, sequence: sequence, cameraID: "walkway",
                                     timestampNanos: Int64((Double(index) / fps * 1e9).rounded()),
                                     frame: frame, frameIndex: index, faces: faces))
        }

        /// Waits until every event was handled; returns what the plugin emitted.
        func finish() -> Emitted {
            dispatcher.drainBlocking()
            return emitted
        }
    }

    /// Frames of vtest.avi by index (only those asked for are kept).
    static func videoFrames(_ wanted: Set<Int>) throws -> [Int: Frame] {
        let capture = try VideoCapture(source: video, kind: .file)
        var frames: [Int: Frame] = [:]
        var index = 0
        while let frame = capture.read(), index <= wanted.max() ?? -1 {
            if wanted.contains(index) { frames[index] = frame }
            index += 1
        }
        return frames
    }

    // MARK: - Real video

    @Test func countsPeopleCrossingTheWalkwayInBothDirections() throws {
        var run = try Run(config: #"{"lines": [\#(Self.walkwayLine)]}"#, keepFramesFor: ["line_cross"])
        let capture = try VideoCapture(source: Self.video, kind: .file)
        let fps = capture.framesPerSecond > 0 ? capture.framesPerSecond : 10
        var count: Int64 = 0
        while let frame = capture.read() {
            run.publish(.frame, index: count, fps: fps, frame: frame)
            count += 1
        }
        let emitted = run.finish()
        #expect(count == 795)
        let counters = run.worker.counters
        #expect(counters.delivered == 795 && counters.errors == 0)

        let crossings = emitted.of("line_cross")
        let rightToLeft = crossings.filter { $0.payload["direction"] as? String == "right_to_left" }
        let leftToRight = crossings.filter { $0.payload["direction"] as? String == "left_to_right" }
        // Counted by eye on crops around the line, every 2nd-3rd frame: 9 people clearly cross
        // right to left (frames ~177, 197, 240, 301, 517, 588, 668, 705, 780) and 6 left to right
        // (~309, 327, 654, 676, 714, 763). Two more right-to-left and one more left-to-right are
        // judgement calls: a man who steps onto the line at ~752 and turns back at ~760, and one
        // who reaches it in the clip's last frames (~792).
        #expect((9...11).contains(rightToLeft.count), "right_to_left: \(rightToLeft.compactMap(\.frameIndex))")
        #expect((6...7).contains(leftToRight.count), "left_to_right: \(leftToRight.compactMap(\.frameIndex))")
        // Every crossing of a person going left is a move to the left, and the other way round.
        for item in rightToLeft {
            let heading = try #require(item.payload["heading_deg"] as? Double)
            #expect((90...270).contains(heading), "frame \(item.frameIndex ?? -1): heading \(heading)")
        }
        for item in leftToRight {
            let heading = try #require(item.payload["heading_deg"] as? Double)
            #expect(heading < 90 || heading > 270, "frame \(item.frameIndex ?? -1): heading \(heading)")
        }
        // The running counts in the last result are the totals, and blob tracks are not host tracks.
        let last = try #require(crossings.last?.payload["counts"] as? [String: Int])
        #expect(last["right_to_left"] == rightToLeft.count && last["left_to_right"] == leftToRight.count)
        #expect(crossings.allSatisfy { $0.result.trackID == nil && $0.result.box != nil })
        #expect(crossings.allSatisfy { $0.payload["source"] as? String == "motion" })
        #expect(crossings.allSatisfy { ($0.payload["object"] as? String)?.hasPrefix("motion-") == true })
        // People walk here at about 40-100 px/s (a 70 px tall person at 1-2 km/h to 5 km/h).
        for item in crossings {
            let speed = try #require(item.payload["speed_px_s"] as? Double)
            #expect((15...200).contains(speed), "frame \(item.frameIndex ?? -1): \(speed) px/s")
        }
        // The scene is busy from start to end: motion starts once and never stops.
        #expect(emitted.of("motion_started").count == 1)
        #expect(emitted.of("motion_stopped").isEmpty)
        // Every blob track that ended has a trajectory with a dwell time and speeds.
        let trajectories = emitted.of("trajectory")
        #expect(trajectories.count >= 10)
        for t in trajectories {
            #expect((t.payload["dwell_seconds"] as? Double ?? -1) >= 0.2)
            #expect(t.payload["mean_speed_px_s"] is Double && (t.payload["path"] as? [[Double]])?.isEmpty == false)
        }

        // Annotated crossings to look at: the box of the blob that crossed and which way.
        let dir = Fixtures.temporaryDirectory("movement-crossings")
        for item in crossings {
            guard let frame = item.frame, let box = item.result.box, let index = item.frameIndex else { continue }
            let direction = item.payload["direction"] as? String ?? "?"
            let line = frame.annotated(box: Box(x: 249, y: 150, width: 2, height: 190), label: "") ?? frame
            try line.annotated(box: box, label: "\(index) \(direction)")?
                .write(to: String(format: "%@/crossing-%03d-%@.png", dir, index, direction))
        }
        print(String(format: "movement: vtest.avi 768x576, %d frame events: on_event mean %.2f ms, max %.2f ms "
                         + "(%@); line_cross right_to_left %d, left_to_right %d; annotated crossings in %@",
                     Int(counters.delivered), counters.meanCallMicros / 1000, counters.maxCallMicros / 1000,
                     Benchmarks.machineDescription(), rightToLeft.count, leftToRight.count, dir))
    }

    @Test func aStaticVideoMakesNoMotionEvents() throws {
        let still = try #require(try Self.videoFrames([0])[0])
        var run = try Run(config: #"""
            {"lines": [\#(Self.walkwayLine)],
             "zones": [{"name": "walkway", "polygon": [[0, 150], [767, 150], [767, 400], [0, 400]]}],
             "motion_min_seconds": 0, "loiter_seconds": 1}
            """#)
        for i in 0..<150 { run.publish(.frame, index: Int64(i), fps: 10, frame: still) }
        let emitted = run.finish()
        #expect(run.worker.counters.delivered == 150 && run.worker.counters.errors == 0)
        // The people standing in the first frame are background: nothing moves, nothing is reported.
        #expect(emitted.all.map(\.result.kind) == [])
    }

    /// The red-coated woman of frame 518 pasted over frame 0: she walks in from the left for 4 s,
    /// stands still in the zone for 20 s, walks out to the right for 3 s.
    @Test func aPersonStandingInAZoneLoitersOnce() throws {
        let frames = try Self.videoFrames([0, 518])
        let background = try #require(frames[0]), source = try #require(frames[518])
        let woman = Box(x: 228, y: 176, width: 30, height: 78)  // her blob in frame 518, walkway around her
        let top = 190
        var positions: [Int] = Array(repeating: -1, count: 30)  // background only: the model settles
        positions += (0..<40).map { 100 + $0 * 8 }              // walks in at 80 px/s
        positions += Array(repeating: 420, count: 200)          // stands in the zone for 20 s
        positions += (1...30).map { 420 + $0 * 10 }             // walks out at 100 px/s
        positions += Array(repeating: -1, count: 40)            // gone
        var run = try Run(config: #"""
            {"zones": [{"name": "bench", "polygon": [[380, 150], [500, 150], [500, 330], [380, 330]]}],
             "loiter_seconds": 8}
            """#)
        let dir = Fixtures.temporaryDirectory("movement-loiter")
        for (i, x) in positions.enumerated() {
            let frame = x < 0 ? background : background.pasting(source, region: woman, atX: x, y: top)
            if [50, 100, 250, 290].contains(i) {
                try frame.annotated(box: Box(x: 380, y: 150, width: 120, height: 180), label: "zone \(i)")?
                    .write(to: "\(dir)/frame-\(i).png")
            }
            run.publish(.frame, index: Int64(i), fps: 10, frame: frame)
        }
        let emitted = run.finish()
        let enters = emitted.of("zone_enter"), loiters = emitted.of("loitering"), leaves = emitted.of("zone_leave")
        #expect(enters.count == 1)
        #expect(loiters.count == 1)
        #expect(leaves.count == 1)
        let object = enters.first?.payload["object"] as? String
        #expect(object != nil && loiters.first?.payload["object"] as? String == object)
        #expect(leaves.first?.payload["object"] as? String == object)
        #expect(loiters.first?.payload["zone"] as? String == "bench")
        // She entered at about frame 65 (feet at x 420+15 > 380): loitering 8 s later, once.
        let enteredAt = try #require(enters.first?.frameIndex), loiteredAt = try #require(loiters.first?.frameIndex)
        #expect(loiteredAt - enteredAt == 80)
        #expect((loiters.first?.payload["dwell_seconds"] as? Double ?? 0) >= 8)
        // She left walking out of the zone, not because the background swallowed her.
        #expect(leaves.first?.payload["reason"] as? String == "left")
        let dwell = try #require(leaves.first?.payload["dwell_seconds"] as? Double)
        #expect((20...23).contains(dwell), "dwell \(dwell)")
        // Motion starts when she walks in and stops after she has gone, once each.
        #expect(emitted.of("motion_started").count == 1)
        #expect(emitted.of("motion_stopped").count == 1)
        print("movement: entered at frame \(enteredAt), loitering at \(loiteredAt), left after \(dwell) s; frames in \(dir)")
    }

    // MARK: - Face tracks

    /// A host face track (id 7) moving right at 100 px/s over a still background.
    @Test func faceTracksHaveTrajectoriesSpeedsAndCrossLines() throws {
        let still = try #require(try Self.videoFrames([0])[0])
        var run = try Run(config: #"{"lines": [\#(Self.walkwayLine)]}"#)
        func face(_ i: Int) -> Face { Face(trackID: 7, box: Box(x: 100 + Double(i) * 10, y: 200, width: 24, height: 24)) }
        run.publish(.faceAppeared, index: 0, fps: 10, frame: still, faces: [face(0)])
        for i in 0...30 { run.publish(.frame, index: Int64(i), fps: 10, frame: still, faces: [face(i)]) }
        run.publish(.faceLeft, index: 31, fps: 10, frame: nil, faces: [face(30)])
        let emitted = run.finish()

        let crossing = try #require(emitted.of("line_cross").first)
        #expect(emitted.of("line_cross").count == 1)
        #expect(crossing.result.trackID == 7)
        #expect(crossing.payload["source"] as? String == "face")
        #expect(crossing.payload["direction"] as? String == "left_to_right")
        #expect(abs((crossing.payload["speed_px_s"] as? Double ?? 0) - 100) < 1)
        // The face's centre (x + 12) passes 250 + edge margin 4 between frames 14 and 15.
        #expect(crossing.frameIndex == 15)

        let trajectory = try #require(emitted.of("trajectory").first)
        #expect(trajectory.result.trackID == 7)
        #expect(trajectory.payload["reason"] as? String == "face_left")
        #expect(abs((trajectory.payload["dwell_seconds"] as? Double ?? 0) - 3.0) < 0.01)
        #expect(abs((trajectory.payload["mean_speed_px_s"] as? Double ?? 0) - 100) < 1)
        #expect(trajectory.payload["direction"] as? String == "right")
        #expect(emitted.of("motion_started").isEmpty)
    }

    /// The host sees the face of the woman walking across the line (track 3): the person is
    /// counted once, by her moving blob, which carries the face's track id.
    @Test func aFaceOnAMovingPersonIsCountedOnceThroughItsBlob() throws {
        let frames = try Self.videoFrames([0, 518])
        let background = try #require(frames[0]), source = try #require(frames[518])
        let woman = Box(x: 228, y: 176, width: 30, height: 78)
        var run = try Run(config: #"{"lines": [\#(Self.walkwayLine)]}"#)
        for i in 0..<30 { run.publish(.frame, index: Int64(i), fps: 10, frame: background) }
        for i in 30..<70 {
            let x = 100 + (i - 30) * 8
            let frame = background.pasting(source, region: woman, atX: x, y: 190)
            let face = Face(trackID: 3, box: Box(x: Double(x + 8), y: 192, width: 12, height: 12))  // her head
            if i == 30 { run.publish(.faceAppeared, index: Int64(i), fps: 10, frame: frame, faces: [face]) }
            run.publish(.frame, index: Int64(i), fps: 10, frame: frame, faces: [face])
            if i == 69 { run.publish(.faceLeft, index: Int64(i + 1), fps: 10, frame: nil, faces: [face]) }
        }
        for i in 70..<90 { run.publish(.frame, index: Int64(i), fps: 10, frame: background) }
        let emitted = run.finish()

        let crossings = emitted.of("line_cross")
        #expect(crossings.count == 1)
        #expect(crossings.first?.result.trackID == 3)
        #expect(crossings.first?.payload["source"] as? String == "motion")
        #expect(crossings.first?.payload["face_track_id"] as? Int == 3)
        #expect(crossings.first?.payload["direction"] as? String == "left_to_right")
        // Both tracks end with a trajectory: the face's (face_left) and the blob's (lost from view).
        let trajectories = emitted.of("trajectory")
        #expect(Set(trajectories.compactMap { $0.payload["source"] as? String }) == ["face", "motion"])
        #expect(trajectories.allSatisfy { $0.result.trackID == 3 })
        for t in trajectories {
            #expect(abs((t.payload["mean_speed_px_s"] as? Double ?? 0) - 80) < 8, "\(t.result.payloadJSON)")
        }
    }

    // MARK: - Configuration

    @Test(arguments: [
        #"{"scale": 2}"#,
        #"{"scale": "half"}"#,
        #"{"history": 0}"#,
        #"{"history": 2.5}"#,
        #"{"loiter_seconds": -1}"#,
        #"{"motion_threshold": 0.01, "motion_stop_threshold": 0.02}"#,
        #"{"colour": "red"}"#,
        #"{"zones": {"name": "a"}}"#,
        #"{"zones": [{"name": "a", "polygon": [[0, 0], [10, 10]]}]}"#,
        #"{"zones": [{"name": "a", "polygon": [[0, 0], [10, 0], [20, 0]]}]}"#,
        #"{"zones": [{"polygon": [[0, 0], [10, 0], [10, 10]]}]}"#,
        #"{"zones": [{"name": "a", "polygon": [[0, 0], [10, 0], [10, 10]]}, {"name": "a", "polygon": [[0, 0], [10, 0], [10, 10]]}]}"#,
        #"{"lines": [{"name": "door", "from": [0, 0]}]}"#,
        #"{"lines": [{"name": "door", "from": [5, 5], "to": [5, 5]}]}"#,
        #"{"lines": [{"name": "door", "from": [0, 0, 0], "to": [5, 5]}]}"#,
        #"{"lines": [{"name": "door", "from": [0, 0], "to": [5, 5], "both_ways": 1}]}"#,
        #"{"min_blob_area": null}"#,
        #"{"scale": 0.5"#,
    ])
    func badConfigFailsCreateWithInvalidConfig(config: String) throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Movement"), expectedID: "movement")
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -2)) {
            _ = try PluginWorker(library: library, settings: .fixture("movement", library: library.path, config: config),
                                 logger: Fixtures.logger) { _, _ in }
        }
    }

    @Test(arguments: [
        "{}",
        #"""
        {"edge_margin": 2, "history": 300, "lines": [{"from": [250, 340], "name": "walkway", "to": [250, 150]}],
         "loiter_seconds": 12.5, "max_gap_seconds": 1.5, "min_blob_area": 400, "motion_min_seconds": 1,
         "motion_stop_seconds": 3, "motion_stop_threshold": 0.001, "motion_threshold": 0.003, "scale": 0.25,
         "var_threshold": 25, "zones": [{"name": "door", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]}]}
        """#,
    ])
    func goodConfigCreates(config: String) throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Movement"), expectedID: "movement")
        let worker = try PluginWorker(library: library, settings: .fixture("movement", library: library.path, config: config),
                                      logger: Fixtures.logger) { _, _ in }
        Dispatcher(workers: [worker]).drainBlocking()
        #expect(library.wantedEvents == [.frame, .faceAppeared, .faceRecognized, .faceUnknown, .faceLeft])
    }
}
