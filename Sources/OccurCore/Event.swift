import Foundation
import PluginAPI

/// What happened. The raw values are the plugin ABI's OCCUR_EVENT_* bits.
public enum EventKind: UInt32, Sendable, CaseIterable, Hashable {
    case frame = 1
    case faceAppeared = 2
    case faceRecognized = 4
    case faceUnknown = 8
    case faceLeft = 16
    case pluginResult = 32
    /// A track the quality gate or the embedder could not assess yet (ABI minor 1).
    case faceUnassessed = 64

    /// The name used in plugins.yaml, the event log and the CLI.
    public var name: String {
        switch self {
        case .frame: "frame"
        case .faceAppeared: "face_appeared"
        case .faceRecognized: "face_recognized"
        case .faceUnknown: "face_unknown"
        case .faceLeft: "face_left"
        case .pluginResult: "plugin_result"
        case .faceUnassessed: "face_unassessed"
        }
    }

    /// The plugin ABI minor version whose header first defines this kind: a plugin built
    /// against an older minor never receives it.
    public var abiMinor: UInt32 {
        switch self {
        case .faceUnassessed: 1
        default: 0
        }
    }

    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }

    /// The set of kinds in an OCCUR_EVENT_* mask that a plugin built against ABI minor
    /// `minor` knows.
    static func kinds(inMask mask: UInt32, abiMinor minor: UInt32 = UInt32(OCCUR_PLUGIN_ABI_MINOR)) -> Set<EventKind> {
        Set(allCases.filter { mask & $0.rawValue != 0 && $0.abiMinor <= minor })
    }
}

public struct Box: Sendable, Equatable, Codable {
    public var x, y, width, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }

    public var area: Double { max(0, width) * max(0, height) }

    /// Intersection over union.
    public func iou(_ other: Box) -> Double {
        let ix = max(0, min(x + width, other.x + other.width) - max(x, other.x))
        let iy = max(0, min(y + height, other.y + other.height) - max(y, other.y))
        let inter = ix * iy
        let union = area + other.area - inter
        return union > 0 ? inter / union : 0
    }
}

/// A face in a frame, as detected and tracked (identity comes with recognition).
public struct Face: Sendable, Equatable {
    public var trackID: Int64
    public var box: Box
    public var score: Double
    public var landmarks: [(x: Double, y: Double)] = []
    public var identity: String? = nil
    public var distance: Double? = nil
    public var embedding: [Float]? = nil
    /// For faces recognition could not name: the unknown cluster (`unknown-N`) they belong to.
    public var unknownID: String? = nil

    public init(trackID: Int64 = -1, box: Box, score: Double = 1) {
        self.trackID = trackID
        self.box = box
        self.score = score
    }

    public static func == (a: Face, b: Face) -> Bool {
        a.trackID == b.trackID && a.box == b.box && a.score == b.score && a.identity == b.identity
            && a.distance == b.distance && a.embedding == b.embedding && a.unknownID == b.unknownID
            && a.landmarks.elementsEqual(b.landmarks, by: { $0.x == $1.x && $0.y == $1.y })
    }
}

/// One event: immutable once made, shared by the event log and every plugin queue.
/// Its C form (`occur_event` and all it points to) is built once, on first delivery,
/// and freed with the event.
public final class Event: Sendable {
    public let kind: EventKind
    public let sequence: UInt64
    public let cameraID: String
    /// Capture time on the camera's clock (see occur_event.timestamp_ns).
    public let timestampNanos: Int64
    public let wallTime: Date
    public let frame: Frame?
    public let frameIndex: Int64?
    public let faces: [Face]
    /// A JSON object.
    public let payloadJSON: String
    /// For plugin results: who emitted it and what kind of result it is.
    public let sourcePlugin: String?
    public let resultKind: String?
    /// For plugin results: the result's own track, box and confidence.
    public let resultTrackID: Int64?
    public let resultBox: Box?
    public let confidence: Double?
    /// Face crop and annotated frame saved for this event, relative to the data directory.
    public let snapshot: SnapshotStore.Paths?

    let cForm: CEventStorage

    public init(kind: EventKind, sequence: UInt64, cameraID: String, timestampNanos: Int64,
                wallTime: Date = Date(), frame: Frame? = nil, frameIndex: Int64? = nil, faces: [Face] = [],
                payloadJSON: String = "{}", sourcePlugin: String? = nil, resultKind: String? = nil,
                resultTrackID: Int64? = nil, resultBox: Box? = nil, confidence: Double? = nil,
                snapshot: SnapshotStore.Paths? = nil) {
        self.kind = kind
        self.sequence = sequence
        self.cameraID = cameraID
        self.timestampNanos = timestampNanos
        self.wallTime = wallTime
        self.frame = frame
        self.frameIndex = frameIndex
        self.faces = faces
        self.payloadJSON = payloadJSON
        self.sourcePlugin = sourcePlugin
        self.resultKind = resultKind
        self.resultTrackID = resultTrackID
        self.resultBox = resultBox
        self.confidence = confidence
        self.snapshot = snapshot
        self.cForm = CEventStorage()
    }

    /// The name stored in the event log: the kind, or the result kind for plugin results.
    public var logKind: String { kind == .pluginResult ? (resultKind ?? kind.name) : kind.name }

    /// The track this event is about, if any.
    public var trackID: Int64? {
        if let resultTrackID, resultTrackID >= 0 { return resultTrackID }
        if kind != .frame, kind != .pluginResult, let face = faces.first, face.trackID >= 0 { return face.trackID }
        return nil
    }
}
