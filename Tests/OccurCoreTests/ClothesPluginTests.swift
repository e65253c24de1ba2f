import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// libClothes.so through the plugin ABI on opencv-doc's messi5.jpg: the Pose plugin's real
/// `pose` result for the photo is fed to Clothes as a plugin_result event with the same frame,
/// the shirt is recoloured with a solid colour, and the upper colour must follow while the
/// lower one stays; the regions keep to the pose's person outline; invisible keypoints skip a
/// region; bad config is refused.
@Suite struct ClothesPluginTests {
    /// messi5.jpg, Messi's face and the Pose plugin's `pose` result for it (track 7).
    static func messiPose() throws -> (Frame, Face, PluginResult) {
        var (frame, face) = try PosePluginTests().messi()
        face.trackID = 7
        let library = try PluginLibrary.load(path: Fixtures.plugin("Pose"), expectedID: "pose")
        let emitted = EmittedResults()
        let worker = try PluginWorker(library: library, settings: .fixture("pose", library: library.path),
                                      logger: Fixtures.logger) { result, _ in emitted.append(result) }
        let dispatcher = Dispatcher(workers: [worker])
        dispatcher.publish(PosePluginTests.event(.faceAppeared, sequence: 1, frame: frame, faces: [face]))
        dispatcher.drainBlocking()
        let pose = try #require(emitted.all.first { $0.kind == "pose" })
        return (frame, face, pose)
    }

    static func resultEvent(_ result: PluginResult, payload: String? = nil, frame: Frame, face: Face,
                            sequence: UInt64) -> Event {
        Event(kind: .pluginResult, sequence: sequence, cameraID: "cam", timestampNanos: Int64(sequence) * 1_000_000,
              frame: frame, frameIndex: Int64(sequence), faces: [face], payloadJSON: payload ?? result.payloadJSON,
              sourcePlugin: "pose", resultKind: result.kind, resultTrackID: result.trackID, resultBox: result.box,
              confidence: result.confidence)
    }

    func clothesWorker(config: String = "{}") throws -> (PluginWorker, EmittedResults) {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Clothes"), expectedID: "clothes")
        let emitted = EmittedResults()
        let worker = try PluginWorker(library: library, settings: .fixture("clothes", library: library.path, config: config),
                                      logger: Fixtures.logger) { result, _ in emitted.append(result) }
        return (worker, emitted)
    }

    /// Runs Clothes on `events`; its `clothes` results and the worker's counters.
    func run(_ events: [Event], config: String = "{}") throws -> ([[String: Any]], [PluginResult], PluginCounters) {
        let (worker, emitted) = try clothesWorker(config: config)
        let dispatcher = Dispatcher(workers: [worker])
        for event in events { dispatcher.publish(event) }
        dispatcher.drainBlocking()
        return (emitted.payloads("clothes"), emitted.all, worker.counters)
    }

    static func colours(_ payload: [String: Any], _ key: String) -> [(name: String, fraction: Double)] {
        (payload[key] as? [[Any]] ?? []).map { (name: $0[0] as? String ?? "?", fraction: ($0[1] as? NSNumber)?.doubleValue ?? -1) }
    }

    /// A rectangle inside the torso quadrilateral 11-12-24-23 (the torso's bounding box
    /// shrunk inside it): from the mean x of the right shoulder and hip to that of the left ones,
    /// from the lower shoulder to the upper hip, shrunk 5% per side.
    static func insideTorso(_ points: [(x: Double, y: Double, visibility: Double)]) -> Box {
        let a = (points[12].x + points[24].x) / 2, b = (points[11].x + points[23].x) / 2
        let x0 = min(a, b), x1 = max(a, b)
        let top = max(points[11].y, points[12].y), bottom = min(points[23].y, points[24].y)
        let w = x1 - x0, h = bottom - top
        return Box(x: (x0 + 0.05 * w).rounded(), y: (top + 0.05 * h).rounded(), width: (0.9 * w).rounded(),
                   height: (0.9 * h).rounded())
    }

    static func describe(_ p: [String: Any]) -> String {
        let show = { (key: String) in colours(p, key).map { String(format: "%@ %.2f", $0.name, $0.fraction) }.joined(separator: ", ") }
        return "upper [\(show("upper"))] \(p["upper_pattern"] ?? "-") (texture \(p["upper_texture"] ?? "-")); "
            + "lower [\(show("lower"))] \(p["lower_pattern"] ?? "-") (texture \(p["lower_texture"] ?? "-"))"
    }

    @Test(arguments: [("red", 0, 0, 255), ("blue", 255, 0, 0), ("green", 0, 160, 0)])
    func aRecolouredShirtIsNamedAndTheTrousersStay(colour: (name: String, blue: UInt8, green: UInt8, red: UInt8)) throws {
        let (frame, face, pose) = try Self.messiPose()
        let points = PosePluginTests.keypoints(
            (try JSONSerialization.jsonObject(with: Data(pose.payloadJSON.utf8))) as? [String: Any] ?? [:])
        try #require(points.count == 33)
        for i in [11, 12, 23, 24, 25, 26] { try #require(points[i].visibility >= 0.5, "keypoint \(i): \(points[i])") }
        let box = Self.insideTorso(points)
        try #require(box.width >= 10 && box.height >= 10, "\(box)")
        let paint = Frame.filled(width: Int(box.width), height: Int(box.height),
                                 blue: colour.blue, green: colour.green, red: colour.red)
        let recoloured = frame.pasting(paint, region: Box(x: 0, y: 0, width: box.width, height: box.height),
                                       atX: Int(box.x), y: Int(box.y))
        try recoloured.write(to: Fixtures.temporaryDirectory("clothes") + "/messi-\(colour.name).png")

        var events: [Event] = []
        for i in 1...5 { events.append(Self.resultEvent(pose, frame: frame, face: face, sequence: UInt64(i))) }
        for i in 6...10 { events.append(Self.resultEvent(pose, frame: recoloured, face: face, sequence: UInt64(i))) }
        let (payloads, results, counters) = try run(events)
        try #require(payloads.count == 10)
        let before = payloads[0], after = payloads[5]
        print("clothes: messi5.jpg as is: \(Self.describe(before))")
        print("clothes: shirt painted \(colour.name) in \(box): \(Self.describe(after))")
        print(String(format: "clothes: on_event mean %.2f ms, max %.2f ms over %d calls (messi5.jpg 548x342, debug build)",
                     counters.meanCallMicros / 1000, counters.maxCallMicros / 1000, Int(counters.delivered)))
        #expect(counters.errors == 0)
        // Same input, same answer.
        #expect(Self.describe(payloads[1]) == Self.describe(before))

        let upper = Self.colours(after, "upper"), lower = Self.colours(after, "lower")
        #expect(upper.first?.name == colour.name)
        #expect((upper.first?.fraction ?? 0) >= 0.5)
        // Pattern cue: the striped Barcelona shirt is patterned, the painted one solid.
        #expect(before["upper_pattern"] as? String == "patterned")
        #expect(after["upper_pattern"] as? String == "solid")
        let lowerBefore = Self.colours(before, "lower")
        #expect(lower.first?.name != nil)
        #expect(lower.first?.name == lowerBefore.first?.name)
        // Fractions are sorted, sum to 1 and have distinct names.
        for list in [upper, lower, Self.colours(before, "upper"), lowerBefore] {
            #expect(list.map(\.fraction) == list.map(\.fraction).sorted(by: >))
            #expect(abs(list.map(\.fraction).reduce(0, +) - 1) < 0.01)
            #expect(Set(list.map(\.name)).count == list.count)
        }
        #expect(after["track_id"] as? Int == 7)
        let result = try #require(results.first { $0.kind == "clothes" })
        #expect(result.trackID == 7)
        let resultBox = try #require(result.box)
        #expect(resultBox.width > 0 && resultBox.height > 0)
    }

    /// The pose payload with the visibility of `indices` set to `visibility`.
    static func withVisibility(_ payload: String, _ indices: Set<Int>, _ visibility: Double) throws -> String {
        var object = try #require((try JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any])
        var points = try #require(object["keypoints"] as? [[Double]])
        for i in indices { points[i][2] = visibility }
        object["keypoints"] = points
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func aRegionWithInvisibleKeypointsIsSkipped() throws {
        let (frame, face, pose) = try Self.messiPose()
        let noKnees = try Self.withVisibility(pose.payloadJSON, [25, 26], 0.1)
        let noShoulders = try Self.withVisibility(pose.payloadJSON, [11], 0.2)
        let nothing = try Self.withVisibility(pose.payloadJSON, [11, 23], 0.0)   // hips gone: lower too
        var other = pose
        other.kind = "fall_suspected"
        let events = [
            Self.resultEvent(pose, payload: noKnees, frame: frame, face: face, sequence: 1),
            Self.resultEvent(pose, payload: noShoulders, frame: frame, face: face, sequence: 2),
            Self.resultEvent(pose, payload: nothing, frame: frame, face: face, sequence: 3),
            Self.resultEvent(other, frame: frame, face: face, sequence: 4),   // not a pose: ignored
        ]
        let (payloads, _, counters) = try run(events)
        try #require(payloads.count == 2)
        print("clothes: knees invisible: \(Self.describe(payloads[0])); shoulder invisible: \(Self.describe(payloads[1]))")
        #expect(payloads[0]["lower"] is NSNull)
        #expect(payloads[0]["lower_pattern"] is NSNull)
        #expect((payloads[0]["skipped"] as? [String: String]) == ["lower": "not_visible"])
        #expect(!Self.colours(payloads[0], "upper").isEmpty)
        #expect(payloads[1]["upper"] is NSNull)
        #expect((payloads[1]["skipped"] as? [String: String]) == ["upper": "not_visible"])
        #expect(!Self.colours(payloads[1], "lower").isEmpty)
        #expect(counters.errors == 0)

        // A stricter min_visibility than the model's values skips both: nothing is emitted;
        // a region smaller than min_region_pixels is skipped as too small.
        let (strict, _, _) = try run([Self.resultEvent(pose, frame: frame, face: face, sequence: 1)],
                                     config: #"{"min_visibility": 1.0}"#)
        #expect(strict.isEmpty)
        let (big, _, _) = try run([Self.resultEvent(pose, frame: frame, face: face, sequence: 1)],
                                  config: #"{"min_region_pixels": 1000000}"#)
        #expect(big.isEmpty)
        let (single, _, _) = try run([Self.resultEvent(pose, frame: frame, face: face, sequence: 1)],
                                     config: #"{"clusters": 1}"#)
        #expect(Self.colours(single.first ?? [:], "upper").count == 1)
    }

    @Test(arguments: [#"{"clusters": 0}"#, #"{"clusters": 9}"#, #"{"clusters": 2.5}"#, #"{"min_visibility": 1.5}"#,
                      #"{"min_visibility": "high"}"#, #"{"min_region_pixels": 0}"#, #"{"pattern_threshold": -1}"#,
                      #"{"colour": "red"}"#, "[1, 2]"])
    func badConfigIsRefusedWithInvalidConfig(config: String) throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("Clothes"), expectedID: "clothes")
        let log = LogLines()
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -2)) {
            try PluginWorker(library: library, settings: .fixture("clothes", library: library.path, config: config),
                             logger: log.logger) { _, _ in }
        }
    }
}

// MARK: - The person outline

extension ClothesPluginTests {
    /// The pose payload with its "outline" replaced by `outline`, or removed when nil.
    static func withOutline(_ payload: String, _ outline: [(x: Double, y: Double)]?) throws -> String {
        var object = try #require((try JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any])
        object["outline"] = outline.map { $0.map { [$0.x, $0.y] } }
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// Pixels inside `polygon` at their centres, row by row (scanline fill), width * height flags.
    static func insideMask(width: Int, height: Int, polygon: [(x: Double, y: Double)]) -> [Bool] {
        var inside = [Bool](repeating: false, count: width * height)
        for y in 0..<height {
            let yc = Double(y)
            var crossings: [Double] = []
            var j = polygon.count - 1
            for i in polygon.indices {
                let a = polygon[i], b = polygon[j]
                if (a.y > yc) != (b.y > yc) { crossings.append(a.x + (yc - a.y) / (b.y - a.y) * (b.x - a.x)) }
                j = i
            }
            crossings.sort()
            for k in stride(from: 0, to: crossings.count - 1, by: 2) {
                let from = max(0, Int(crossings[k].rounded(.up))), to = min(width - 1, Int(crossings[k + 1].rounded(.down)))
                if from <= to { for x in from...to { inside[y * width + x] = true } }
            }
        }
        return inside
    }

    /// A copy of `frame` (BGR) with the pixels where `paint(x, y)` holds set to one colour (made
    /// through a PPM file, since frames are immutable).
    static func painted(_ frame: Frame, blue: UInt8, green: UInt8, red: UInt8,
                        where paint: (Int, Int) -> Bool) throws -> Frame {
        try #require(frame.channels == 3)
        var bytes = [UInt8]("P6\n\(frame.width) \(frame.height)\n255\n".utf8)
        bytes.reserveCapacity(bytes.count + frame.width * frame.height * 3)
        for y in 0..<frame.height {
            let row = frame.pixels + y * frame.stride
            for x in 0..<frame.width {
                if paint(x, y) { bytes += [red, green, blue] } else { bytes += [row[3 * x + 2], row[3 * x + 1], row[3 * x]] }
            }
        }
        let path = Fixtures.temporaryDirectory("clothes") + "/painted.ppm"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try Frame.read(contentsOf: path)
    }

    /// With Pose's real outline, the regions stay inside it: everything more than 2 px outside
    /// Messi's outline is painted orange (a colour found nowhere on him), and orange is never
    /// named. The same pose without its outline (keypoint polygons alone) does name it.
    @Test func theRegionsStayInsideThePersonOutline() throws {
        let (frame, face, pose) = try Self.messiPose()
        let payload = try #require((try JSONSerialization.jsonObject(with: Data(pose.payloadJSON.utf8))) as? [String: Any])
        let outline = PosePluginTests.outline(payload)
        try #require(outline.count >= 8)
        let w = frame.width, h = frame.height
        let inside = Self.insideMask(width: w, height: h, polygon: outline)
        let near = { (x: Int, y: Int) in
            [(x, y), (x - 2, y), (x + 2, y), (x, y - 2), (x, y + 2)].contains { p in
                p.0 >= 0 && p.1 >= 0 && p.0 < w && p.1 < h && inside[p.1 * w + p.0]
            }
        }
        let orange = try Self.painted(frame, blue: 0, green: 140, red: 255) { x, y in !near(x, y) }
        try orange.write(to: Fixtures.temporaryDirectory("clothes") + "/messi-outside-orange.png")
        let bare = try Self.withOutline(pose.payloadJSON, nil)
        let (payloads, _, counters) = try run([
            Self.resultEvent(pose, frame: frame, face: face, sequence: 1),
            Self.resultEvent(pose, frame: orange, face: face, sequence: 2),
            Self.resultEvent(pose, payload: bare, frame: orange, face: face, sequence: 3),
        ])
        try #require(payloads.count == 3)
        print("clothes: messi5.jpg, pose outline applied: \(Self.describe(payloads[0]))")
        print("clothes: outside the outline painted orange, outline applied: \(Self.describe(payloads[1]))")
        print("clothes: outside the outline painted orange, no outline (keypoint polygons): \(Self.describe(payloads[2]))")
        #expect(counters.errors == 0)
        #expect(payloads[0]["person_mask"] as? Bool == true)
        #expect(payloads[2]["person_mask"] as? Bool == false)
        for key in ["upper", "lower"] {
            #expect(!Self.colours(payloads[0], key).isEmpty)
            #expect(!Self.colours(payloads[1], key).contains { $0.name == "orange" }, "\(key)")
        }
        // The painted background does not change what is found on him.
        #expect(Self.describe(payloads[1]) == Self.describe(payloads[0]))
        // Without the outline the leg bands reach past him: orange is named in the lower region
        // (measured 0.07).
        #expect(Self.colours(payloads[2], "lower").contains { $0.name == "orange" })
    }

    /// The intersection is applied: an outline that leaves out the right half of the torso
    /// (the picture's right; a notch cut in from the frame's right edge) hides a green patch
    /// painted there; the same pose without an outline names it.
    @Test func anOutlineLeavingOutHalfTheTorsoHidesThatHalf() throws {
        let (frame, face, pose) = try Self.messiPose()
        let points = PosePluginTests.keypoints(
            (try JSONSerialization.jsonObject(with: Data(pose.payloadJSON.utf8))) as? [String: Any] ?? [:])
        let box = Self.insideTorso(points)
        let middle = (box.x + box.width / 2).rounded()
        let half = Frame.filled(width: Int(box.x + box.width - middle), height: Int(box.height), green: 160)
        let painted = frame.pasting(half, region: Box(x: 0, y: 0, width: box.width, height: box.height),
                                    atX: Int(middle), y: Int(box.y))
        try painted.write(to: Fixtures.temporaryDirectory("clothes") + "/messi-half-green.png")
        // The frame with a notch from its right edge over the torso box, 3 px short of the paint.
        let w = Double(frame.width), h = Double(frame.height)
        let top = box.y - 3, bottom = box.y + box.height + 3, cut = middle - 3
        let notched: [(x: Double, y: Double)] = [(0, 0), (w - 1, 0), (w - 1, top), (cut, top), (cut, bottom),
                                                 (w - 1, bottom), (w - 1, h - 1), (0, h - 1)]
        let (payloads, _, counters) = try run([
            Self.resultEvent(pose, payload: try Self.withOutline(pose.payloadJSON, notched), frame: painted, face: face,
                             sequence: 1),
            Self.resultEvent(pose, payload: try Self.withOutline(pose.payloadJSON, nil), frame: painted, face: face,
                             sequence: 2),
        ])
        try #require(payloads.count == 2)
        print("clothes: right half of the torso painted green in \(box) from x = \(middle); notched outline: "
              + "\(Self.describe(payloads[0])); no outline: \(Self.describe(payloads[1]))")
        #expect(counters.errors == 0)
        #expect(payloads[0]["person_mask"] as? Bool == true)
        #expect(!Self.colours(payloads[0], "upper").contains { $0.name == "green" })
        #expect(!Self.colours(payloads[0], "upper").isEmpty)
        let green = Self.colours(payloads[1], "upper").first { $0.name == "green" }
        #expect((green?.fraction ?? 0) >= 0.3, "\(String(describing: green))")
    }

    @Test func aMalformedOutlineIsRefused() throws {
        let (frame, face, pose) = try Self.messiPose()
        var object = try #require((try JSONSerialization.jsonObject(with: Data(pose.payloadJSON.utf8))) as? [String: Any])
        object["outline"] = [[1, 2, 3]]
        let bad = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let (payloads, _, counters) = try run([Self.resultEvent(pose, payload: bad, frame: frame, face: face, sequence: 1)])
        #expect(payloads.isEmpty)
        #expect(counters.errors == 1)
    }
}
