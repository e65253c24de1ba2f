import Foundation
import Logging
import Synchronization

/// Per-camera figures for the run summary.
public struct CameraCounters: Sendable, Equatable {
    public var framesRead: Int64 = 0
    public var framesProcessed: Int64 = 0
    public var facesDetected: Int64 = 0
    public var tracksStarted: Int64 = 0
    /// Faces embedded and matched (once per track, plus rechecks).
    public var recognitions: Int64 = 0
    public var reconnects: Int = 0
    public var unreadableImages: Int = 0
    public var ended = false
    public var error: String?
}

/// One camera on its own thread: decode -> detect -> track -> recognise once per track
/// (and again every recheck_seconds) -> events -> bus.
public final class CameraPipeline: Sendable {
    public let configuration: CameraConfiguration
    private let host: HostConfiguration
    private let gallery: FaceGallery?
    private let bus: EventBus
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let state = Mutex(CameraCounters())

    public init(configuration: CameraConfiguration, host: HostConfiguration, gallery: FaceGallery?,
                bus: EventBus, logger: Logger) {
        self.configuration = configuration
        self.host = host
        self.gallery = gallery
        self.bus = bus
        var logger = logger
        logger[metadataKey: "camera.id"] = "\(configuration.id)"
        self.logger = logger
    }

    public var counters: CameraCounters { state.withLock { $0 } }

    /// Asks the capture loop to end after the current frame.
    public func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Runs the camera on the calling thread until its source ends or stop() is called.
    public func run() {
        defer { state.withLock { $0.ended = true } }
        let source: CameraSource
        let detector: FaceDetector
        var recognizer: FaceRecognizer?
        do {
            detector = try makeFaceDetector(host.detection, models: ModelFiles(directory: host.modelsDir))
            if let gallery { recognizer = try makeFaceRecognizer(host, gallery: gallery, logger: logger) }
            source = try CameraSource(configuration: configuration, logger: logger) { [self] in
                self.stopRequested.load(ordering: .relaxed)
            }
        } catch {
            logger.error("camera not started: \(error)")
            state.withLock { $0.error = "\(error)" }
            return
        }
        logger.info("camera started: \(configuration.source) (\(source.kind))")
        logger.info("detector \(host.detection.detector), recognition \(recognizer?.embedder.model ?? "off")")
        var tracker = FaceTracker(configuration: host.tracking)
        var identities = TrackIdentities(recheckNanos: Int64(host.recognition.recheckSeconds * 1e9))
        let wantsFrames = bus.anyoneWants(.frame)
        var lastTimestamp: Int64 = 0
        while let input = source.next() {
            if source.kind.isStill { endTracks(&tracker, &identities, at: input.timestampNanos) }
            let detected = detector.detect(in: input.frame)
            var update = tracker.update(detected, at: input.timestampNanos)
            lastTimestamp = input.timestampNanos
            for face in update.appeared {
                publish(.faceAppeared, face: face, input: input)
            }
            var recognized = 0
            for i in update.faces.indices {
                let face = update.faces[i]
                if let recognizer, identities.isDue(face.trackID, at: input.timestampNanos),
                   let result = recognizer.recognize(face, in: input.frame) {
                    recognized += 1
                    let changed = identities.record(result, track: face.trackID, at: input.timestampNanos)
                    identities.apply(to: &update.faces[i])
                    if changed {
                        publish(result.identity == nil ? .faceUnknown : .faceRecognized, face: update.faces[i], input: input,
                                payload: recognitionPayload(result))
                    }
                } else {
                    identities.apply(to: &update.faces[i])
                }
            }
            publishLeft(update.left, identities: &identities, at: input.timestampNanos)
            if wantsFrames {
                bus.publish(Event(kind: .frame, sequence: bus.nextSequence(), cameraID: configuration.id,
                                  timestampNanos: input.timestampNanos, frame: input.frame,
                                  frameIndex: input.index, faces: update.faces))
            }
            state.withLock {
                $0.framesRead = source.framesRead
                $0.framesProcessed += 1
                $0.facesDetected += Int64(detected.count)
                $0.tracksStarted += Int64(update.appeared.count)
                $0.recognitions += Int64(recognized)
                $0.reconnects = source.reconnects
                $0.unreadableImages = source.unreadableImages
            }
        }
        endTracks(&tracker, &identities, at: lastTimestamp)
        state.withLock {
            $0.framesRead = source.framesRead
            $0.unreadableImages = source.unreadableImages
        }
        logger.info("camera finished: \(source.framesRead) frames read")
    }

    private func publish(_ kind: EventKind, face: Face, input: SourceFrame, payload: String = "{}") {
        bus.publish(Event(kind: kind, sequence: bus.nextSequence(), cameraID: configuration.id,
                          timestampNanos: input.timestampNanos, frame: input.frame, frameIndex: input.index,
                          faces: [face], payloadJSON: payload))
    }

    private func recognitionPayload(_ r: Recognition) -> String {
        var object: [String: Any] = [:]
        if r.distance.isFinite { object["distance"] = (r.distance * 10000).rounded() / 10000 }
        if let second = r.secondDistance { object["second_distance"] = (second * 10000).rounded() / 10000 }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func endTracks(_ tracker: inout FaceTracker, _ identities: inout TrackIdentities, at nanos: Int64) {
        publishLeft(tracker.finish(), identities: &identities, at: nanos)
    }

    private func publishLeft(_ tracks: [FaceTracker.Track], identities: inout TrackIdentities, at nanos: Int64) {
        for track in tracks {
            let dwell = Double(track.lastSeenNanos - track.firstSeenNanos) / 1e9
            var face = Face(trackID: track.id, box: track.box)
            identities.apply(to: &face)
            identities.forget(track.id)
            bus.publish(Event(kind: .faceLeft, sequence: bus.nextSequence(), cameraID: configuration.id,
                              timestampNanos: nanos, faces: [face],
                              payloadJSON: "{\"dwell_seconds\": \(String(format: "%.3f", dwell))}"))
        }
    }
}

/// What recognition said about each live track, and when to ask again.
struct TrackIdentities {
    struct State {
        var recognition: Recognition
        var checkedAt: Int64
    }

    let recheckNanos: Int64
    private(set) var states: [Int64: State] = [:]

    init(recheckNanos: Int64) {
        self.recheckNanos = recheckNanos
    }

    /// A new track, or one whose last answer is older than the recheck interval.
    func isDue(_ track: Int64, at nanos: Int64) -> Bool {
        guard let state = states[track] else { return true }
        return nanos - state.checkedAt >= recheckNanos
    }

    /// Stores the answer; true when it is the track's first or names someone else.
    mutating func record(_ recognition: Recognition, track: Int64, at nanos: Int64) -> Bool {
        let previous = states[track]
        states[track] = State(recognition: recognition, checkedAt: nanos)
        return previous == nil || previous?.recognition.identity != recognition.identity
    }

    /// Copies the track's identity, distance and embedding onto the face.
    func apply(to face: inout Face) {
        guard let r = states[face.trackID]?.recognition else { return }
        face.identity = r.identity
        face.distance = r.distance.isFinite ? r.distance : nil
        face.embedding = r.embedding
    }

    mutating func forget(_ track: Int64) { states[track] = nil }
}
