import Foundation

/// The configured detector, then a second one (`detection.second_detector`) on the same frame:
/// every face the first finds is kept as it is (with YuNet's landmarks, which recognition
/// aligns by), and the second adds the faces the first missed — masked faces and faces that
/// fill the whole frame, which YuNet does not find. A face of the second detector counts as
/// already found when it overlaps a first-detector face by IoU `duplicateIoU` or more, or when
/// its centre lies inside one.
public final class MergedFaceDetector: FaceDetector {
    public static let duplicateIoU = 0.3
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
        if a.iou(b) >= duplicateIoU { return true }
        let cx = a.x + a.width / 2, cy = a.y + a.height / 2
        return cx >= b.x && cx <= b.x + b.width && cy >= b.y && cy <= b.y + b.height
    }
}
