import Foundation

/// occur.yaml: cameras, detection, tracking, storage. Every field has a documented default.
public struct HostConfiguration: Sendable {
    /// Where the event database (and later snapshots) live. Default `./data`.
    public var dataDir: String = "./data"
    /// SQLite file name inside `dataDir`. Default `occur.db`.
    public var database: String = "occur.db"
    /// Cameras in file order.
    public var cameras: [CameraConfiguration] = []
    public var detection = DetectionConfiguration()
    public var tracking = TrackingConfiguration()
    public var storage = StorageConfiguration()
    /// trace | debug | info | notice | warning | error. Default `info`.
    public var logLevel: String = "info"

    public init() {}

    public var databasePath: String {
        database.hasPrefix("/") ? database : (dataDir as NSString).appendingPathComponent(database)
    }
}

public struct CameraConfiguration: Sendable, Equatable {
    public var id: String
    /// A video file, an image file, a directory of images, `/dev/videoN` or an index, or an rtsp/http(s) URL.
    public var source: String
    /// Frames per second to process; 0 = every frame (files as fast as they decode). Default 0.
    public var fps: Double = 0
    /// Process one frame in N; the others are skipped without decoding where possible. Default 1.
    public var everyNFrames: Int = 1
    /// Start a file again when it ends. Default false.
    public var loop: Bool = false
    /// Pace a file at its own frame rate, as if it were live. Default false.
    public var realtime: Bool = false

    public init(id: String, source: String) {
        self.id = id
        self.source = source
    }
}

public struct DetectionConfiguration: Sendable, Equatable {
    /// Only `haar` so far.
    public var detector: String = "haar"
    public var cascade: String = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
    /// Smallest face side, in pixels. Default 40.
    public var minFaceSize: Int = 40
    public var scaleFactor: Double = 1.1
    public var minNeighbors: Int = 5
    /// Equalise the histogram before detecting (helps in poor light). Default true.
    public var equalizeHistogram: Bool = true
    public init() {}
}

public struct TrackingConfiguration: Sendable, Equatable {
    /// Minimum overlap (intersection over union) to continue a track. Default 0.3.
    public var iouThreshold: Double = 0.3
    /// A track ends after this many processed frames without its face. Default 10.
    public var maxMissedFrames: Int = 10
    public init() {}
}

public struct StorageConfiguration: Sendable, Equatable {
    /// Events written per transaction at most. Default 256.
    public var batchSize: Int = 256
    /// Longest time an event waits before it is written, seconds. Default 1.0.
    public var flushInterval: Double = 1.0
    public init() {}
}

extension HostConfiguration {
    public static func load(contentsOf file: String) throws -> HostConfiguration {
        try HostConfiguration(ConfigNode.load(contentsOf: file))
    }

    public init(_ root: ConfigNode) throws {
        self.init()
        let base = URL(fileURLWithPath: root.file).deletingLastPathComponent().path
        let f = try root.fields()
        if let v = try f.optional("data_dir", { try $0.string() }) { dataDir = resolvePath(v, relativeTo: base) }
        else { dataDir = resolvePath(dataDir, relativeTo: base) }
        if let v = try f.optional("database", { try $0.string() }) { database = v }
        if let v = try f.optional("log_level", { try $0.choice(["trace", "debug", "info", "notice", "warning", "error"]) }) {
            logLevel = v
        }
        if let node = f.optional("cameras") {
            for (id, camera) in try node.entries() {
                try validateIdentifier(id, at: camera)
                cameras.append(try CameraConfiguration(id: id, camera, base: base))
            }
        }
        if let node = f.optional("detection") { detection = try DetectionConfiguration(node, base: base) }
        if let node = f.optional("tracking") { tracking = try TrackingConfiguration(node) }
        if let node = f.optional("storage") { storage = try StorageConfiguration(node) }
        try f.finish()
    }
}

extension CameraConfiguration {
    init(id: String, _ node: ConfigNode, base: String) throws {
        let f = try node.fields()
        let source = try f.required("source").string()
        let isURL = source.contains("://")
        let isDevice = source.hasPrefix("/dev/") || Int(source) != nil
        self.init(id: id, source: (isURL || isDevice) ? source : resolvePath(source, relativeTo: base))
        if let n = f.optional("fps") { fps = try n.double(); if fps < 0 { throw n.error("must be 0 or more") } }
        if let n = f.optional("every_n_frames") {
            everyNFrames = try n.int()
            if everyNFrames < 1 { throw n.error("must be 1 or more") }
        }
        if let v = try f.optional("loop", { try $0.bool() }) { loop = v }
        if let v = try f.optional("realtime", { try $0.bool() }) { realtime = v }
        try f.finish()
    }
}

extension DetectionConfiguration {
    init(_ node: ConfigNode, base: String) throws {
        self.init()
        let f = try node.fields()
        if let v = try f.optional("detector", { try $0.choice(["haar"]) }) { detector = v }
        if let v = try f.optional("cascade", { try $0.string() }) { cascade = resolvePath(v, relativeTo: base) }
        if let n = f.optional("min_face_size") {
            minFaceSize = try n.int()
            if minFaceSize < 8 { throw n.error("must be at least 8 pixels") }
        }
        if let n = f.optional("scale_factor") {
            scaleFactor = try n.double()
            if scaleFactor <= 1.0 || scaleFactor > 2.0 { throw n.error("must be above 1.0 and at most 2.0") }
        }
        if let n = f.optional("min_neighbors") {
            minNeighbors = try n.int()
            if minNeighbors < 0 { throw n.error("must be 0 or more") }
        }
        if let v = try f.optional("equalize_histogram", { try $0.bool() }) { equalizeHistogram = v }
        try f.finish()
    }
}

extension TrackingConfiguration {
    init(_ node: ConfigNode) throws {
        self.init()
        let f = try node.fields()
        if let n = f.optional("iou_threshold") {
            iouThreshold = try n.double()
            if !(0...1).contains(iouThreshold) { throw n.error("must be between 0 and 1") }
        }
        if let n = f.optional("max_missed_frames") {
            maxMissedFrames = try n.int()
            if maxMissedFrames < 0 { throw n.error("must be 0 or more") }
        }
        try f.finish()
    }
}

extension StorageConfiguration {
    init(_ node: ConfigNode) throws {
        self.init()
        let f = try node.fields()
        if let n = f.optional("batch_size") {
            batchSize = try n.int()
            if batchSize < 1 { throw n.error("must be 1 or more") }
        }
        if let n = f.optional("flush_interval") {
            flushInterval = try n.double()
            if flushInterval <= 0 { throw n.error("must be above 0 seconds") }
        }
        try f.finish()
    }
}

/// `~` and relative paths in a config file are resolved against the user's home and the file's folder.
func resolvePath(_ path: String, relativeTo base: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return expanded }
    return URL(fileURLWithPath: base).appendingPathComponent(expanded).standardizedFileURL.path
}

/// Camera and plugin ids: lower-case letters, digits and underscores.
func validateIdentifier(_ id: String, at node: ConfigNode) throws {
    let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    guard !id.isEmpty, id.allSatisfy({ allowed.contains($0) }) else {
        throw node.error("'\(id)' is not a valid id: use a-z, 0-9, _ and -")
    }
}
