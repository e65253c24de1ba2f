import Foundation
@testable import OccurCore

/// Events made by hand, with timestamps chosen by the test (cooldowns use them).
enum TestEvents {
    static func faceAppeared(sequence: UInt64, camera: String = "cam", track: Int64,
                             seconds: Double = 0, frame: Frame? = nil) -> Event {
        Event(kind: .faceAppeared, sequence: sequence, cameraID: camera,
              timestampNanos: Int64(seconds * 1e9), frame: frame, frameIndex: Int64(sequence),
              faces: [Face(trackID: track, box: Box(x: 10, y: 20, width: 50, height: 50))])
    }

    static func event(_ kind: EventKind, sequence: UInt64, camera: String = "cam", track: Int64 = 1,
                      seconds: Double = 0, frame: Frame? = nil) -> Event {
        Event(kind: kind, sequence: sequence, cameraID: camera, timestampNanos: Int64(seconds * 1e9), frame: frame,
              frameIndex: Int64(sequence), faces: [Face(trackID: track, box: Box(x: 0, y: 0, width: 40, height: 40))])
    }
}
