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
    public var recognition = RecognitionConfiguration()
    public var tracking = TrackingConfiguration()
    /// Where scripts/models put the model files. Default `$OCCUR_MODELS`, else `$OCCUR_CACHE/models`, else `~/.cache/occur/models`.
    public var modelsDir: String = ModelFiles.defaultDirectory
    public var storage = StorageConfiguration()
    public var api = APIConfiguration()
    /// How long events, unknown clusters and snapshots are kept. Default: forever.
    public var retention = RetentionConfiguration()
    /// trace | debug | info | notice | warning | error. Default `info`.
    public var logLevel: String = "info"
    /// On SIGTERM or SIGINT, seconds plugins get to work through their queues; what is
    /// still queued then is dropped and counted (README "Shutdown"). Default 5.
    public var shutdownTimeout: Double = 5

    public init() {}

    public var adminTokenPath: String { api.adminTokenFile ?? (dataDir as NSString).appendingPathComponent("admin.token") }

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
    /// Live sources: no frame for this many seconds counts as a disconnect (the source is
    /// reopened with backoff); opening a stream may take as long at most. Default 10.
    public var stallSeconds: Double = 10

    public init(id: String, source: String) {
        self.id = id
        self.source = source
    }
}

public struct DetectionConfiguration: Sendable, Equatable {
    /// `yunet` (default: 2.6-13 ms a frame on a CPU, 5 landmarks for alignment), `haar`, or dlib's
    /// `dlib_hog` / `dlib_mmod` (face_recognition's hog and cnn models; no landmarks).
    public var detector: String = "yunet"
    /// YuNet: frames are scaled so their longer side is this many pixels, but enlarged at most
    /// twice. Default 640.
    public var inputSize: Int = 640
    /// YuNet: minimum face score, 0..1. Default 0.8.
    public var scoreThreshold: Double = 0.8
    /// A second detector run on every frame after `detector`, adding the faces it missed
    /// (MergedFaceDetector): `auto`, `ssd` or `none`. Default `auto`: SSD behind YuNet, which
    /// finds few masked faces; none behind the other detectors.
    public var secondDetector: String = "auto"
    /// The second detector's minimum face score, 0..1. Default 0.6: the lowest tenth at which SSD
    /// adds no false alarm on dlib's testing.xml (0.5 adds one).
    public var secondScoreThreshold: Double = 0.6
    public var cascade: String = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
    /// Smallest face side, in pixels. Default 20: dlib's hand-labelled faces (testing.xml,
    /// training.xml) are 37 px and up, and masked faces in small photos smaller still (README
    /// "Accuracy on real data"); recognition has its own, larger floor (quality.min_face_size).
    public var minFaceSize: Int = 20
    public var scaleFactor: Double = 1.1
    public var minNeighbors: Int = 5
    /// Equalise the histogram before detecting (helps in poor light). Default true.
    public var equalizeHistogram: Bool = true
    /// Lighting correction before detection and recognition: `none`, `clahe`, `gamma`, or
    /// `auto` (CLAHE and gamma on frames darker than `dark_threshold`). Default none.
    public var lighting: String = "none"
    /// CLAHE clip limit. Default 2.0.
    public var claheClipLimit: Double = 2.0
    /// Gamma above 1 brightens shadows. Default 1.8.
    public var gamma: Double = 1.8
    /// `auto`: mean grey level (0-255) below which a frame counts as dark. Default 70.
    public var darkThreshold: Double = 70
    public init() {}
}

public struct RecognitionConfiguration: Sendable, Equatable {
    /// `auto` (the best backend whose model is present), `sface`, `dlib` (face_recognition's
    /// ResNet descriptor, any detector), `lbph` (OpenCV contrib; no model file, weakest), or
    /// `none`. Default auto.
    public var backend: String = "auto"
    /// Largest distance that still names a person; nil = the backend's documented default.
    public var threshold: Double? = nil
    /// The best identity must beat the second best by this much distance, else unknown. Default 0.05.
    public var margin: Double = 0.05
    /// Recognise a track again after this many seconds. Default 10.
    public var recheckSeconds: Double = 10
    /// Sooner when the last answer was unsure: unknown, or named within `margin` of the
    /// threshold. Default 1.
    public var uncertainRecheckSeconds: Double = 1
    /// The same unknown person (cluster) is announced with snapshots at most once per camera in
    /// this many seconds, however often they step in and out of view; each new track of them
    /// still gets its face_unknown, marked `"repeat": true`. Default 15.
    public var unknownCooldown: Double = 15
    /// One face crop + annotated frame per camera and identity at most every this many seconds. Default 5.
    public var snapshotCooldown: Double = 5
    /// Save snapshots of recognised and unknown appearances under data_dir/snapshots. Default true.
    public var snapshots: Bool = true
    /// Largest distance at which an unknown face joins an existing unknown-N; nil = the
    /// recognition threshold.
    public var clusterThreshold: Double? = nil
    /// Embeddings kept per unknown cluster at most. Default 20.
    public var maxClusterEmbeddings: Int = 20
    /// Faces smaller than this (pixels, shorter box side) are not matched, clustered or enrolled. Default 48.
    public var minQualityFaceSize: Int = 48
    /// Faces blurrier than this are likewise skipped: variance of the Laplacian over the face
    /// (scaled down to 112 px wide when wider) with its contrast normalised (`Frame.sharpness`).
    /// Default 60, set on Megamind.avi and dlib's faces, as recorded, darker and blurred
    /// (README, "Quality gate").
    public var minSharpness: Double = 60
    /// A folder per person (`<face_db>/<name>/*.jpg`) enrolled at start: images not yet
    /// enrolled for the current backend are added. Default none.
    public var faceDB: String? = nil
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
    /// Seal face crops, snapshots and embeddings with AES-256-GCM under the data key
    /// (`<data_dir>/data.key` or OCCUR_DATA_KEY; README "Encryption at rest"). Default true.
    public var encryption: Bool = true
    /// Snapshots stop while the data dir's filesystem has less free space than this, so the
    /// rest is kept for events (README "Storage" under Failure behaviour). Default 200 MiB.
    public var minFreeBytes: Int64 = 200 << 20
    /// Events held in memory while the database cannot be written (disk full); beyond this
    /// the oldest are dropped and counted. Default 100000.
    public var maxHeldEvents: Int = 100_000
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
        try f.read("data_dir", into: &dataDir) { try $0.string() }
        dataDir = resolvePath(dataDir, relativeTo: base)
        try f.read("database", into: &database) { try $0.string() }
        try f.read("log_level", into: &logLevel) {
            try $0.choice(["trace", "debug", "info", "notice", "warning", "error"])
        }
        try f.read("shutdown_timeout", into: &shutdownTimeout) { try $0.seconds(atLeast: 0) }
        if let node = f.optional("cameras") {
            for (id, camera) in try node.entries() {
                try validateIdentifier(id, at: camera)
                cameras.append(try CameraConfiguration(id: id, camera, base: base))
            }
        }
        try f.read("models_dir", into: &modelsDir) { resolvePath(try $0.string(), relativeTo: base) }
        try f.read("detection", into: &detection) { try DetectionConfiguration($0, base: base) }
        try f.read("recognition", into: &recognition) { try RecognitionConfiguration($0, base: base) }
        try f.read("tracking", into: &tracking) { try TrackingConfiguration($0) }
        try f.read("storage", into: &storage) { try StorageConfiguration($0) }
        try f.read("api", into: &api) { try APIConfiguration($0, base: base) }
        try f.read("retention", into: &retention) { try RetentionConfiguration($0) }
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
        try f.read("fps", into: &fps) { node in
            let fps = try node.double(atLeast: 0, atMost: 1000)
            guard fps == 0 || fps >= 0.001 else { throw node.error("must be 0 (every frame) or at least 0.001") }
            return fps
        }
        try f.read("every_n_frames", into: &everyNFrames) { try $0.int(atLeast: 1) }
        try f.read("loop", into: &loop) { try $0.bool() }
        try f.read("realtime", into: &realtime) { try $0.bool() }
        try f.read("stall_seconds", into: &stallSeconds) { try $0.seconds(atLeast: 0.5, atMost: 3600) }
        try f.finish()
    }
}

extension DetectionConfiguration {
    init(_ node: ConfigNode, base: String) throws {
        self.init()
        let f = try node.fields()
        try f.read("detector", into: &detector) { try $0.choice(["yunet", "haar", "ssd", "blazeface", "dlib_hog", "dlib_mmod"]) }
        try f.read("input_size", into: &inputSize) { try $0.int(atLeast: 64, atMost: 4096) }
        try f.read("score_threshold", into: &scoreThreshold) { try $0.double(atLeast: 0, atMost: 1) }
        try f.read("second_detector", into: &secondDetector) { try $0.choice(["auto", "ssd", "none"]) }
        try f.read("second_score_threshold", into: &secondScoreThreshold) { try $0.double(atLeast: 0, atMost: 1) }
        try f.read("cascade", into: &cascade) { resolvePath(try $0.string(), relativeTo: base) }
        try f.read("min_face_size", into: &minFaceSize) { try $0.int(atLeast: 8, atMost: 100_000) }
        try f.read("scale_factor", into: &scaleFactor) { try $0.double(above: 1.0, atMost: 2.0) }
        try f.read("min_neighbors", into: &minNeighbors) { try $0.int(atLeast: 0, atMost: 1000) }
        try f.read("equalize_histogram", into: &equalizeHistogram) { try $0.bool() }
        try f.read("lighting", into: &lighting) { try $0.choice(["none", "clahe", "gamma", "auto"]) }
        try f.read("clahe_clip_limit", into: &claheClipLimit) { try $0.double(above: 0, atMost: 40) }
        try f.read("gamma", into: &gamma) { try $0.double(above: 0, atMost: 10) }
        try f.read("dark_threshold", into: &darkThreshold) { try $0.double(atLeast: 0, atMost: 255) }
        try f.finish()
    }
}

extension RecognitionConfiguration {
    init(_ node: ConfigNode, base: String) throws {
        self.init()
        let f = try node.fields()
        try f.read("backend", into: &backend) { try $0.choice(["auto", "sface", "dlib", "lbph", "none"]) }
        try f.read("threshold", into: &threshold) { try $0.double(above: 0) }
        try f.read("margin", into: &margin) { try $0.double(atLeast: 0) }
        try f.read("recheck_seconds", into: &recheckSeconds) { try $0.seconds(above: 0) }
        try f.read("uncertain_recheck_seconds", into: &uncertainRecheckSeconds) { try $0.seconds(above: 0) }
        try f.read("unknown_cooldown", into: &unknownCooldown) { try $0.seconds(atLeast: 0) }
        try f.read("snapshot_cooldown", into: &snapshotCooldown) { try $0.seconds(atLeast: 0) }
        try f.read("snapshots", into: &snapshots) { try $0.bool() }
        try f.read("cluster_threshold", into: &clusterThreshold) { try $0.double(above: 0) }
        try f.read("max_cluster_embeddings", into: &maxClusterEmbeddings) { try $0.int(atLeast: 1) }
        try f.read("face_db", into: &faceDB) { resolvePath(try $0.string(), relativeTo: base) }
        if let quality = f.optional("quality") {
            let q = try quality.fields()
            try q.read("min_face_size", into: &minQualityFaceSize) { try $0.int(atLeast: 0) }
            try q.read("min_sharpness", into: &minSharpness) { try $0.double(atLeast: 0) }
            try q.finish()
        }
        try f.finish()
    }
}

extension TrackingConfiguration {
    init(_ node: ConfigNode) throws {
        self.init()
        let f = try node.fields()
        try f.read("iou_threshold", into: &iouThreshold) { try $0.double(atLeast: 0, atMost: 1) }
        try f.read("max_missed_frames", into: &maxMissedFrames) { try $0.int(atLeast: 0) }
        try f.finish()
    }
}

extension StorageConfiguration {
    init(_ node: ConfigNode) throws {
        self.init()
        let f = try node.fields()
        try f.read("batch_size", into: &batchSize) { try $0.int(atLeast: 1) }
        try f.read("flush_interval", into: &flushInterval) { try $0.seconds(above: 0) }
        try f.read("encryption", into: &encryption) { try $0.bool() }
        try f.read("min_free_bytes", into: &minFreeBytes) { try $0.byteCount() }
        try f.read("max_held_events", into: &maxHeldEvents) { try $0.int(atLeast: 0) }
        try f.finish()
    }
}

/// `~` and relative paths in a config file are resolved against the user's home and the file's
/// folder; `${NAME:-fallback}` is the environment variable NAME, or the fallback when it is unset
/// or empty (the shipped occur.yaml finds the samples under `${OCCUR_CACHE:-~/.cache/occur}`).
func resolvePath(_ path: String, relativeTo base: String,
                 environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    var path = Substring(path), substituted = ""
    while let start = path.range(of: "${"), let end = path[start.upperBound...].firstIndex(of: "}") {
        let parts = path[start.upperBound..<end].components(separatedBy: ":-")
        let value = environment[parts[0]].flatMap { $0.isEmpty ? nil : $0 }
            ?? (parts.count > 1 ? parts.dropFirst().joined(separator: ":-") : "")
        substituted += path[..<start.lowerBound] + value   // a value is never expanded again
        path = path[path.index(after: end)...]
    }
    let expanded = ((substituted + path) as NSString).expandingTildeInPath
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
