import Foundation

/// The configured detector, then a second one (`detection.second_detector`) on the same frame:
/// every face the first finds is kept as it is (with YuNet's landmarks, which recognition
/// aligns by), and the second adds the faces the first missed — masked faces and faces that
/// fill the whole frame, which YuNet does not find. A face of the second detector counts as
/// already found when half of the smaller of the two boxes or more lies inside the other (the
/// detectors draw the same face with boxes of different shapes), or when its centre lies inside
/// a first-detector face.
public final class MergedFaceDetector: FaceDetector {
    public static let duplicateOverlap = 0.5
    let first: FaceDetector
    let second: FaceDetector

    public init(first: FaceDetector, second: FaceDetector) {
        self.first = first
        self.second = second
    }

    public func detect(in frame: Frame) -> [Face] {
        var faces = first.detect(in: frame)
        let found = faces.map(\.box)
        for face in second.detect(in: frame) where !found.contains(where: { Self.sameFace(face.box, $0) }) {
            faces.append(face)
        }
        return faces
    }

    static func sameFace(_ a: Box, _ b: Box) -> Bool {
        let ix = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
        let iy = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
        if ix * iy >= duplicateOverlap * min(a.area, b.area) { return true }
        let cx = a.x + a.width / 2, cy = a.y + a.height / 2
        return cx >= b.x && cx <= b.x + b.width && cy >= b.y && cy <= b.y + b.height
    }
}

extension DetectionConfiguration {
    /// The second detector that runs: `second_detector`, with `auto` resolved (SSD behind
    /// YuNet, none behind the others); nil for none, or when it is the first detector itself.
    public var resolvedSecondDetector: String? {
        let second = secondDetector == "auto" ? (detector == "yunet" ? "ssd" : "none") : secondDetector
        return second == "none" || second == detector ? nil : second
    }

    /// `yunet+ssd` for a detector with a second one, else the detector's name.
    public var detectorName: String {
        resolvedSecondDetector.map { detector + "+" + $0 } ?? detector
    }
}
