import Foundation
import Logging
import Synchronization

/// Per-camera figures for the run summary.
public struct CameraCounters: Sendable, Equatable {
    public var framesRead: Int64 = 0
    public var framesProcessed: Int64 = 0
    public var facesDetected: Int64 = 0
    public var tracksStarted: Int64 = 0
    public var reconnects: Int = 0
    public var unreadableImages: Int = 0
    public var ended = false
    public var error: String?
}

/// One camera on its own thread: decode -> detect -> track -> events -> bus.
public final class CameraPipeline: Sendable {
    public let configuration: CameraConfiguration
    private let detection: DetectionConfiguration
    private let tracking: TrackingConfiguration
    private let bus: EventBus
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let state = Mutex(CameraCounters())

    public init(configuration: CameraConfiguration, detection: DetectionConfiguration,
                tracking: TrackingConfiguration, bus: EventBus, logger: Logger) {
        self.configuration = configuration
        self.detection = detection
        self.tracking = tracking
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
        let detector: HaarFaceDetector
        do {
            detector = try HaarFaceDetector(configuration: detection)
            source = try CameraSource(configuration: configuration, logger: logger) { [self] in
                self.stopRequested.load(ordering: .relaxed)
            }
        } catch {
            logger.error("camera not started: \(error)")
            state.withLock { $0.error = "\(error)" }
            return
        }
        logger.info("camera started: \(configuration.source) (\(source.kind))")
        var tracker = FaceTracker(configuration: tracking)
        let wantsFrames = bus.anyoneWants(.frame)
        var lastTimestamp: Int64 = 0
        while let input = source.next() {
            if source.kind.isStill { endTracks(&tracker, at: input.timestampNanos) }
            let boxes = detector.detect(in: input.frame)
            let update = tracker.update(detections: boxes, at: input.timestampNanos)
            lastTimestamp = input.timestampNanos
            for face in update.appeared {
                bus.publish(Event(kind: .faceAppeared, sequence: bus.nextSequence(), cameraID: configuration.id,
                                  timestampNanos: input.timestampNanos, frame: input.frame,
                                  frameIndex: input.index, faces: [face]))
            }
            publishLeft(update.left, at: input.timestampNanos)
            if wantsFrames {
                bus.publish(Event(kind: .frame, sequence: bus.nextSequence(), cameraID: configuration.id,
                                  timestampNanos: input.timestampNanos, frame: input.frame,
                                  frameIndex: input.index, faces: update.faces))
            }
            state.withLock {
                $0.framesRead = source.framesRead
                $0.framesProcessed += 1
                $0.facesDetected += Int64(boxes.count)
                $0.tracksStarted += Int64(update.appeared.count)
                $0.reconnects = source.reconnects
                $0.unreadableImages = source.unreadableImages
            }
        }
        endTracks(&tracker, at: lastTimestamp)
        state.withLock {
            $0.framesRead = source.framesRead
            $0.unreadableImages = source.unreadableImages
        }
        logger.info("camera finished: \(source.framesRead) frames read")
    }

    private func endTracks(_ tracker: inout FaceTracker, at nanos: Int64) {
        publishLeft(tracker.finish(), at: nanos)
    }

    private func publishLeft(_ tracks: [FaceTracker.Track], at nanos: Int64) {
        for track in tracks {
            let dwell = Double(track.lastSeenNanos - track.firstSeenNanos) / 1e9
            bus.publish(Event(kind: .faceLeft, sequence: bus.nextSequence(), cameraID: configuration.id,
                              timestampNanos: nanos, faces: [Face(trackID: track.id, box: track.box)],
                              payloadJSON: "{\"dwell_seconds\": \(String(format: "%.3f", dwell))}"))
        }
    }
}
