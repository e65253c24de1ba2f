/// Follows faces from frame to frame so that one person in view is one track.
/// Greedy matching by overlap (IoU), falling back to the nearest centre within one face
/// width for fast movers; a track ends after `maxMissedFrames` frames unseen.
public struct FaceTracker: Sendable {
    public struct Track: Sendable, Equatable {
        public let id: Int64
        public var box: Box
        public var firstSeenNanos: Int64
        public var lastSeenNanos: Int64
        public var missedFrames: Int
    }

    /// What one frame did to the tracks.
    public struct Update: Sendable {
        /// The frame's faces, each with its track id.
        public var faces: [Face] = []
        /// Faces whose track started in this frame.
        public var appeared: [Face] = []
        /// Tracks that ended in this frame (after too many missed frames).
        public var left: [Track] = []
    }

    public let configuration: TrackingConfiguration
    public private(set) var tracks: [Track] = []
    private var nextID: Int64 = 1

    public init(configuration: TrackingConfiguration = TrackingConfiguration()) {
        self.configuration = configuration
    }

    /// Boxes only (score 1, no landmarks).
    public mutating func update(detections: [Box], at nanos: Int64) -> Update {
        update(detections.map { Face(box: $0) }, at: nanos)
    }

    /// Assigns a track id to each detected face (landmarks and score are kept).
    public mutating func update(_ detected: [Face], at nanos: Int64) -> Update {
        let detections = detected.map(\.box)
        var update = Update()
        var unmatchedTracks = Set(tracks.indices)
        var assignment = [Int?](repeating: nil, count: detections.count)

        // Candidate pairs, best first: by IoU, then by centre distance relative to size.
        var pairs: [(score: Double, det: Int, track: Int)] = []
        for (d, box) in detections.enumerated() {
            for (t, track) in tracks.enumerated() {
                let iou = box.iou(track.box)
                if iou >= configuration.iouThreshold {
                    pairs.append((1 + iou, d, t))
                } else {
                    let dx = (box.x + box.width / 2) - (track.box.x + track.box.width / 2)
                    let dy = (box.y + box.height / 2) - (track.box.y + track.box.height / 2)
                    let distance = (dx * dx + dy * dy).squareRoot()
                    let reach = max(box.width, track.box.width)
                    let sizeRatio = box.area / max(track.box.area, 1)
                    if distance < reach, sizeRatio > 0.5, sizeRatio < 2 {
                        pairs.append((1 - distance / reach, d, t))
                    }
                }
            }
        }
        pairs.sort { $0.score > $1.score }
        var usedDetections = Set<Int>()
        for pair in pairs where !usedDetections.contains(pair.det) && unmatchedTracks.contains(pair.track) {
            usedDetections.insert(pair.det)
            unmatchedTracks.remove(pair.track)
            assignment[pair.det] = pair.track
        }

        for (d, box) in detections.enumerated() {
            var face = detected[d]
            if let t = assignment[d] {
                tracks[t].box = box
                tracks[t].lastSeenNanos = nanos
                tracks[t].missedFrames = 0
                face.trackID = tracks[t].id
                update.faces.append(face)
            } else {
                let track = Track(id: nextID, box: box, firstSeenNanos: nanos, lastSeenNanos: nanos, missedFrames: 0)
                nextID += 1
                tracks.append(track)
                face.trackID = track.id
                update.faces.append(face)
                update.appeared.append(face)
            }
        }
        for t in unmatchedTracks { tracks[t].missedFrames += 1 }
        update.left = tracks.filter { $0.missedFrames > configuration.maxMissedFrames }
        tracks.removeAll { $0.missedFrames > configuration.maxMissedFrames }
        return update
    }

    /// Ends every track (the source ended).
    public mutating func finish() -> [Track] {
        defer { tracks.removeAll() }
        return tracks
    }
}
