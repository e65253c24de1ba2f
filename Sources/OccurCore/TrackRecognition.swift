import Foundation
import Logging

/// Recognition for the live tracks of one camera: when to (re)recognise a track, the quality
/// gate, clustering of unknown faces into stable `unknown-N` identities, which appearance to
/// announce, and why a track has no answer yet (face_unassessed). Lives on the camera's thread.
final class TrackRecognition {
    struct State {
        var recognition: Recognition
        var unknownID: String?
        var checkedAt: Int64
    }

    /// A track that has no answer yet: what it was last told about why.
    struct Unanswered {
        var announced: UnassessedReason?
        var announcedAt: Int64 = 0
    }

    /// What to announce for a face: face_recognized, face_unknown or face_unassessed, with its payload.
    struct Announcement {
        var kind: EventKind
        var payload: String
        /// Take a snapshot pair with it (not for face_unassessed, nor for a stranger announced
        /// on this camera within unknown_cooldown).
        var snapshot = true
    }

    let recognizer: FaceRecognizer
    let configuration: RecognitionConfiguration
    private let recheckNanos: Int64
    private let uncertainRecheckNanos: Int64
    private let clusterThreshold: Double
    /// When the gallery was last checked for changes made by other processes (monotonic).
    private var galleryCheckedAt: Int64 = 0
    private var states: [Int64: State] = [:]
    /// Tracks seen but not yet recognised (no face_recognized or face_unknown so far).
    private var unanswered: [Int64: Unanswered] = [:]
    /// Why each held track was last held, as logged at debug level (the log says when it changes).
    private var heldFor: [Int64: UnassessedReason.Code] = [:]
    /// When each unknown cluster was last announced on this camera.
    private var unknownAnnounced: [String: Int64] = [:]
    private let logger: Logger
    private(set) var recognitions = 0
    private(set) var belowQuality = 0

    init(recognizer: FaceRecognizer, configuration: RecognitionConfiguration, logger: Logger) {
        self.recognizer = recognizer
        self.configuration = configuration
        recheckNanos = Int64(configuration.recheckSeconds * 1e9)
        uncertainRecheckNanos = Int64(min(configuration.uncertainRecheckSeconds, configuration.recheckSeconds) * 1e9)
        clusterThreshold = configuration.clusterThreshold ?? recognizer.threshold
        self.logger = logger
    }

    /// Why the face is not good enough to match, cluster or enrol (too small, then too
    /// blurry), or nil when it passes the quality gate.
    func qualityHold(_ face: Face, in frame: Frame) -> UnassessedReason? {
        let size = min(face.box.width, face.box.height)
        if size < Double(configuration.minQualityFaceSize) {
            return UnassessedReason(.tooSmall, value: size, threshold: Double(configuration.minQualityFaceSize),
                                    measure: "face size px")
        }
        let sharpness = frame.sharpness(in: face.box)
        if sharpness < configuration.minSharpness {
            return UnassessedReason(.tooBlurry, value: sharpness, threshold: configuration.minSharpness,
                                    measure: "sharpness")
        }
        return nil
    }

    /// Recognises the face when its track is new or due for a recheck (and the face passes the
    /// quality gate), copies what is known onto the face, and says what to announce. A track
    /// that cannot be recognised yet is tried again on every frame; until it is, it is told
    /// why (face_unassessed) on the first frame it is held and again when the reason changes,
    /// at most once per uncertain_recheck_seconds.
    func process(_ face: inout Face, in frame: Frame, at nanos: Int64) -> Announcement? {
        defer { apply(to: &face) }
        let previous = states[face.trackID]
        if let previous, nanos - previous.checkedAt < recheckInterval(after: previous.recognition) { return nil }
        let outcome: Result<Recognition, UnassessedReason>
        if let hold = qualityHold(face, in: frame) {
            belowQuality += 1
            outcome = .failure(hold)
        } else {
            refreshGallery()
            outcome = recognizer.recognition(of: face, in: frame)
        }
        let result: Recognition
        switch outcome {
        case let .failure(reason):
            return held(face, reason, at: nanos, answered: previous != nil)
        case let .success(recognition):
            result = recognition
        }
        unanswered[face.trackID] = nil
        heldFor[face.trackID] = nil
        recognitions += 1
        var unknownID: String?
        if result.identity == nil {
            unknownID = cluster(result, keeping: previous?.unknownID, source: "track \(face.trackID)")
        }
        states[face.trackID] = State(recognition: result, unknownID: unknownID, checkedAt: nanos)
        let changed = previous == nil || previous?.recognition.identity != result.identity
            || (result.identity == nil && previous?.unknownID != unknownID)
        guard changed else { return nil }
        if result.identity != nil {
            return Announcement(kind: .faceRecognized, payload: payload(result, unknownID: nil))
        }
        // The same stranger announced on this camera moments ago: the track still gets its
        // answer (no silent faces), marked as a repeat and without a snapshot.
        if let unknownID, let last = unknownAnnounced[unknownID],
           nanos - last < Int64(configuration.unknownCooldown * 1e9), nanos >= last {
            return Announcement(kind: .faceUnknown, payload: payload(result, unknownID: unknownID, repeat: true),
                                snapshot: false)
        }
        if let unknownID { unknownAnnounced[unknownID] = nanos }
        return Announcement(kind: .faceUnknown, payload: payload(result, unknownID: unknownID))
    }

    /// A face the gate or the embedder held: logged at debug level when the track's reason
    /// changes (trace on every frame); face_unassessed when the track has no answer yet and
    /// has not been told this reason (a changed reason at most once per uncertain recheck).
    private func held(_ face: Face, _ reason: UnassessedReason, at nanos: Int64, answered: Bool) -> Announcement? {
        var track = unanswered[face.trackID] ?? Unanswered()
        defer { unanswered[face.trackID] = answered ? nil : track }
        let metadata: Logger.Metadata = [
            "track.id": "\(face.trackID)", "recognition.reason": "\(reason.code.rawValue)",
            "recognition.value": "\(reason.value.map { "\(UnassessedReason.rounded($0))" } ?? "-")",
            "recognition.threshold": "\(reason.threshold.map { "\(UnassessedReason.rounded($0))" } ?? "-")",
        ]
        let why = answered ? "recheck skipped, the track keeps its answer" : "track not recognised yet"
        if heldFor[face.trackID] != reason.code {
            logger.debug("\(why): \(reason)", metadata: metadata)
            heldFor[face.trackID] = reason.code
        } else {
            logger.trace("\(why): \(reason)", metadata: metadata)
        }
        guard !answered else { return nil }
        if let announced = track.announced {
            guard announced.code != reason.code, nanos - track.announcedAt >= uncertainRecheckNanos else { return nil }
        }
        track.announced = reason
        track.announcedAt = nanos
        return Announcement(kind: .faceUnassessed, payload: reason.payloadJSON, snapshot: false)
    }

    /// Unsure answers (unknown, or a name close to the threshold) are checked again sooner.
    func recheckInterval(after r: Recognition) -> Int64 {
        let unsure = r.identity == nil || r.distance > recognizer.threshold - recognizer.margin
        return unsure ? uncertainRecheckNanos : recheckNanos
    }

    /// Picks up enrolments made by another process, looking at most once a second.
    private func refreshGallery() {
        let now = monotonicNanos()
        guard now - galleryCheckedAt >= 1_000_000_000 else { return }
        galleryCheckedAt = now
        do {
            if try recognizer.gallery.refreshIfChanged() { logger.info("gallery changed: reloaded") }
        } catch {
            logger.error("gallery not reloaded: \(error)")
        }
    }

    /// The unknown cluster this embedding belongs to: the track's own, the nearest existing
    /// one within the cluster threshold, or a new one.
    private func cluster(_ result: Recognition, keeping current: String?, source: String) -> String? {
        let gallery = recognizer.gallery
        let model = recognizer.embedder.model
        do {
            let nearest = gallery.nearest(result.embedding, model: model, metric: recognizer.embedder.metric, k: 1,
                                          kind: .unknown).first
            let name: String
            if let nearest, nearest.distance <= clusterThreshold {
                name = nearest.name
            } else if let current {
                name = current
            } else {
                return try gallery.newUnknown(embedding: result.embedding, model: model, source: source)
            }
            try gallery.grow(unknown: name, embedding: result.embedding, model: model, source: source,
                             limit: configuration.maxClusterEmbeddings)
            return name
        } catch {
            logger.error("unknown face not clustered: \(error)")
            return current
        }
    }

    private func payload(_ r: Recognition, unknownID: String?, repeat: Bool = false) -> String {
        var object: [String: Any] = [:]
        if `repeat` { object["repeat"] = true }
        if r.distance.isFinite { object["distance"] = (r.distance * 10000).rounded() / 10000 }
        if let second = r.secondDistance { object["second_distance"] = (second * 10000).rounded() / 10000 }
        if let unknownID { object["unknown_id"] = unknownID }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Copies the track's identity (or unknown cluster), distance and embedding onto the face.
    func apply(to face: inout Face) {
        guard let state = states[face.trackID] else { return }
        face.identity = state.recognition.identity
        face.unknownID = state.unknownID
        face.distance = state.recognition.distance.isFinite ? state.recognition.distance : nil
        face.embedding = state.recognition.embedding
    }

    func forget(_ track: Int64) {
        states[track] = nil
        unanswered[track] = nil
        heldFor[track] = nil
    }
}
