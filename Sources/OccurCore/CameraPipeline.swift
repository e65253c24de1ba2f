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
    /// Faces not matched because they were too small or blurred (quality gate).
    public var facesBelowQuality: Int64 = 0
    /// Live sources: times frames flowed again after the source was lost.
    public var reconnects: Int = 0
    /// Live sources: times the source was lost (closed, failed, stalled, or not openable).
    public var disconnects: Int = 0
    /// Live sources: why the source is lost, while it is (nil while frames flow).
    public var disconnectReason: String?
    public var unreadableImages: Int = 0
    public var ended = false
    public var error: String?
    /// The source is open and delivering frames.
    public var open = false
    /// Wall-clock time of the last processed frame.
    public var lastFrameTime: Date?
    /// Processed frames per second, smoothed over about the last second.
    public var fps: Double = 0
}

/// One camera on its own thread: decode -> detect -> track -> recognise once per track
/// (and again every recheck_seconds) -> events -> bus.
public final class CameraPipeline: Sendable {
    public let configuration: CameraConfiguration
    private let host: HostConfiguration
    private let gallery: FaceGallery?
    private let snapshots: SnapshotStore?
    private let bus: EventBus
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let state = Mutex(CameraCounters())
    private let metrics: HostMetrics?

    public init(configuration: CameraConfiguration, host: HostConfiguration, gallery: FaceGallery?,
                snapshots: SnapshotStore? = nil, bus: EventBus, metrics: HostMetrics? = nil, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.host = host
        self.gallery = gallery
        self.snapshots = snapshots
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
        defer { state.withLock { $0.ended = true; $0.open = false } }
        let source: CameraSource
        let detector: FaceDetector
        var recognition: TrackRecognition?
        do {
            detector = try makeFaceDetector(host.detection, models: ModelFiles(directory: host.modelsDir))
            if let gallery, let recognizer = try makeFaceRecognizer(host, gallery: gallery, logger: logger) {
                recognition = TrackRecognition(recognizer: recognizer, configuration: host.recognition, logger: logger)
            }
            source = try CameraSource(configuration: configuration, logger: logger, shouldStop: { [self] in
                self.stopRequested.load(ordering: .relaxed)
            }, onConnectionChange: { [self] change in
                self.connectionChanged(change)
            })
        } catch {
            logger.error("camera not started: \(error)")
            state.withLock { $0.error = "\(error)" }
            return
        }
        logger.info("camera started: \(configuration.source) (\(source.kind)); detector \(host.detection.detector), recognition \(recognition?.recognizer.embedder.model ?? "off")")
        var tracker = FaceTracker(configuration: host.tracking)
        var lastTimestamp: Int64 = 0
        let detectTime = metrics?.stage("detect", camera: configuration.id)
        let recognizeTime = metrics?.stage("recognize", camera: configuration.id)
        while let input = source.next() {
            if source.kind.isStill { endTracks(&tracker, recognition, at: input.timestampNanos) }
            let seen = host.detection.lightingCorrected(input.frame)  // the frame itself unless it is dark
            let detectStart = monotonicNanos()
            let detected = detector.detect(in: seen)
            detectTime?.recordNanoseconds(monotonicNanos() - detectStart)
            var update = tracker.update(detected, at: input.timestampNanos)
            lastTimestamp = input.timestampNanos
            for face in update.appeared {
                publish(.faceAppeared, face: face, input: input)
            }
            if let recognition {
                for i in update.faces.indices {
                    let before = recognition.recognitions, start = monotonicNanos()
                    let announcement = recognition.process(&update.faces[i], in: seen, at: input.timestampNanos)
                    if recognition.recognitions > before { recognizeTime?.recordNanoseconds(monotonicNanos() - start) }
                    if let announcement {
                        publish(announcement.kind, face: update.faces[i], input: input, payload: announcement.payload,
                                snapshot: announcement.snapshot)
                    }
                }
            }
            publishLeft(update.left, recognition, at: input.timestampNanos)
            if bus.anyoneWants(.frame) {   // asked per frame: a reload may enable a plugin that wants them
                bus.publish(Event(kind: .frame, sequence: bus.nextSequence(), cameraID: configuration.id,
                                  timestampNanos: input.timestampNanos, frame: input.frame,
                                  frameIndex: input.index, faces: update.faces))
            }
            let now = Date()
            state.withLock {
                if let last = $0.lastFrameTime {
                    let interval = max(1e-6, now.timeIntervalSince(last))
                    let weight = min(1, interval)   // about a one-second average
                    $0.fps = $0.fps * (1 - weight) + weight / interval
                }
                $0.open = true
                $0.lastFrameTime = now
                $0.framesRead = source.framesRead
                $0.framesProcessed += 1
                $0.facesDetected += Int64(detected.count)
                $0.tracksStarted += Int64(update.appeared.count)
                $0.recognitions = Int64(recognition?.recognitions ?? 0)
                $0.facesBelowQuality = Int64(recognition?.belowQuality ?? 0)
                $0.reconnects = source.reconnects
                $0.unreadableImages = source.unreadableImages
            }
        }
        endTracks(&tracker, recognition, at: lastTimestamp)
        state.withLock {
            $0.framesRead = source.framesRead
            $0.unreadableImages = source.unreadableImages
        }
        logger.info("camera finished: \(source.framesRead) frames read")
    }

    /// A live source lost or back: counters (/readyz, /metrics) and an event in the log.
    private func connectionChanged(_ change: SourceConnectionChange) {
        switch change {
        case let .lost(reason):
            state.withLock {
                $0.open = false
                $0.fps = 0
                $0.disconnects += 1
                $0.disconnectReason = reason
            }
            bus.logHostEvent(kind: "camera_disconnected", cameraID: configuration.id, payload: ["reason": reason])
        case let .restored(downSeconds, attempts):
            state.withLock {
                $0.open = true
                $0.reconnects += 1
                $0.disconnectReason = nil
            }
            bus.logHostEvent(kind: "camera_reconnected", cameraID: configuration.id,
                             payload: ["down_seconds": (downSeconds * 10).rounded() / 10, "attempts": attempts])
        }
    }

    private func publish(_ kind: EventKind, face: Face, input: SourceFrame, payload: String = "{}",
                         snapshot: Bool = false) {
        let sequence = bus.nextSequence()
        let wallTime = Date()
        let paths = snapshot ? snapshots?.request(
            frame: input.frame, face: face, label: face.identity ?? face.unknownID ?? "unknown", camera: configuration.id,
            sequence: sequence, timestampNanos: input.timestampNanos, wallTime: wallTime) : nil
        bus.publish(Event(kind: kind, sequence: sequence, cameraID: configuration.id,
                          timestampNanos: input.timestampNanos, wallTime: wallTime, frame: input.frame,
                          frameIndex: input.index, faces: [face], payloadJSON: payload, snapshot: paths))
    }

    private func endTracks(_ tracker: inout FaceTracker, _ recognition: TrackRecognition?, at nanos: Int64) {
        publishLeft(tracker.finish(), recognition, at: nanos)
    }

    private func publishLeft(_ tracks: [FaceTracker.Track], _ recognition: TrackRecognition?, at nanos: Int64) {
        for track in tracks {
            let dwell = Double(track.lastSeenNanos - track.firstSeenNanos) / 1e9
            var face = Face(trackID: track.id, box: track.box)
            recognition?.apply(to: &face)
            recognition?.forget(track.id)
            bus.publish(Event(kind: .faceLeft, sequence: bus.nextSequence(), cameraID: configuration.id,
                              timestampNanos: nanos, faces: [face],
                              payloadJSON: "{\"dwell_seconds\": \(String(format: "%.3f", dwell))}"))
        }
    }
}
