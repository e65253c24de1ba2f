import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

@Suite struct FaceTrackerTests {
    @Test func aFaceMovingAcrossRealFramesKeepsOneTrack() throws {
        // A real face (obama.jpg) pasted at a moving position on a plain background.
        let photo = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        var detection = DetectionConfiguration()
        detection.cascade = Fixtures.haarCascade
        detection.minFaceSize = 100
        let detector = try HaarFaceDetector(configuration: detection)
        let faces = detector.detect(in: photo).map(\.box)
        try #require(faces.count == 1)
        let face = faces[0]
        let crop = Box(x: face.x - 40, y: face.y - 40, width: face.width + 80, height: face.height + 80)
        let background = Frame.filled(width: 960, height: 540, blue: 90, green: 90, red: 90)
        var tracker = FaceTracker()
        var trackIDs = Set<Int64>()
        var appeared = 0
        for step in 0..<30 {
            let frame = background.pasting(photo, region: crop, atX: 10 + step * 12, y: 20 + step * 3)
            let update = tracker.update(detector.detect(in: frame), at: Int64(step) * 40_000_000)
            trackIDs.formUnion(update.faces.map(\.trackID))
            appeared += update.appeared.count
            #expect(update.left.isEmpty)
        }
        #expect(trackIDs.count == 1)
        #expect(appeared == 1)
        #expect(tracker.finish().count == 1)
    }

    @Test func aTrackEndsAfterTooManyMissedFrames() {
        var config = TrackingConfiguration()
        config.maxMissedFrames = 2
        var tracker = FaceTracker(configuration: config)
        let box = Box(x: 100, y: 100, width: 60, height: 60)
        _ = tracker.update(detections: [box], at: 0)
        #expect(tracker.update(detections: [], at: 1).left.isEmpty)
        #expect(tracker.update(detections: [], at: 2).left.isEmpty)
        let ended = tracker.update(detections: [], at: 3).left
        #expect(ended.map(\.id) == [1])
        #expect(tracker.update(detections: [box], at: 4).appeared.first?.trackID == 2)
    }

    @Test func twoFacesGetTwoTracks() {
        var tracker = FaceTracker()
        let a = Box(x: 0, y: 0, width: 50, height: 50), b = Box(x: 300, y: 0, width: 50, height: 50)
        let first = tracker.update(detections: [a, b], at: 0)
        #expect(Set(first.faces.map(\.trackID)).count == 2)
        let second = tracker.update(detections: [b.shifted(5), a.shifted(5)], at: 1)
        #expect(second.appeared.isEmpty)
        #expect(second.faces[0].trackID == first.faces[1].trackID)
        #expect(second.faces[1].trackID == first.faces[0].trackID)
    }
}

extension Box {
    func shifted(_ d: Double) -> Box { Box(x: x + d, y: y + d, width: width, height: height) }
}
