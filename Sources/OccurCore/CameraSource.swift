import Foundation
import Logging

/// What a camera's `source:` names.
public enum SourceKind: Sendable, Equatable {
    case videoFile, image, imageDirectory, device, stream

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "pgm", "ppm", "pbm"]

    public static func of(_ source: String) -> SourceKind {
        if source.contains("://") { return .stream }
        if source.hasPrefix("/dev/") || (!source.isEmpty && source.allSatisfy(\.isNumber)) { return .device }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue {
            return .imageDirectory
        }
        if imageExtensions.contains((source as NSString).pathExtension.lowercased()) { return .image }
        return .videoFile
    }

    /// The images an image-directory camera shows, in the order it shows them (frame index i
    /// is the i-th path, unreadable ones included).
    public static func imageFiles(inDirectory directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Live sources are reopened when they drop; files end.
    public var isLive: Bool { self == .device || self == .stream }
    /// Still images: each is a scene of its own (tracks do not carry over).
    public var isStill: Bool { self == .image || self == .imageDirectory }
}

/// A decoded frame with where it sits in its source.
struct SourceFrame {
    var frame: Frame
    var index: Int64
    /// On the camera's clock: monotonic for live sources and stills, start + media time for files.
    var timestampNanos: Int64
}

/// A live source going away or delivering frames again.
enum SourceConnectionChange: Equatable {
    /// No more frames: the stream closed, a read failed, or nothing came for stall_seconds.
    case lost(reason: String)
    /// Frames flow again after `downSeconds` and `attempts` reopenings.
    case restored(downSeconds: Double, attempts: Int)
}

/// Reads frames from one camera source, applying fps, every_n_frames, loop and
/// realtime, and reopening live sources with backoff. Used by one thread.
///
/// A live source that closes, fails a read, stalls (no frame within stall_seconds: FFmpeg's
/// read timeout ends the blocked read) or cannot be opened at all is reported lost and
/// reopened after 0.5 s, 1 s, 2 s ... up to 30 s between attempts, until frames flow again.
/// Files and images never retry: a truncated video ends where its data ends, and
/// unreadable images are skipped, each with a warning naming the file.
final class CameraSource {
    let configuration: CameraConfiguration
    let kind: SourceKind
    private let logger: Logger
    private let shouldStop: () -> Bool
    private let onConnectionChange: (SourceConnectionChange) -> Void

    private var capture: VideoCapture?
    private var images: [String] = []
    private var imageCursor = 0
    private var index: Int64 = -1
    private var startNanos = monotonicNanos()
    private var lastTakenNanos: Int64?
    private var loopOffsetNanos: Int64 = 0
    private var lastMediaNanos: Int64 = 0
    /// Frames of the video file read in the current pass (it restarts when the file loops).
    private var framesThisPass: Int64 = 0
    /// Live sources: why the last open failed, while it fails.
    private var openFailure: String?
    /// Live sources: when the current outage began (nil while frames flow).
    private var lostAtNanos: Int64?
    private var reopenAttempts = 0
    private var backoffSeconds = CameraSource.firstBackoffSeconds
    static let firstBackoffSeconds = 0.5
    static let maxBackoffSeconds = 30.0

    /// Times a live source delivered frames again after being lost.
    private(set) var reconnects = 0
    /// Times a live source was lost (including a first open that failed).
    private(set) var disconnects = 0
    private(set) var framesRead: Int64 = 0
    private(set) var unreadableImages = 0

    /// Throws when a file or image source cannot be opened. A live source that cannot be
    /// opened yet is not an error: it is reported lost and retried from the first `next()`.
    init(configuration: CameraConfiguration, logger: Logger, shouldStop: @escaping () -> Bool,
         onConnectionChange: @escaping (SourceConnectionChange) -> Void = { _ in }) throws {
        self.configuration = configuration
        kind = SourceKind.of(configuration.source)
        self.logger = logger
        self.shouldStop = shouldStop
        self.onConnectionChange = onConnectionChange
        do {
            try open()
        } catch where kind.isLive {
            openFailure = "\(error)"
        }
    }

    private func open() throws {
        switch kind {
        case .image:
            guard FileManager.default.fileExists(atPath: configuration.source) else {
                throw VisionError(message: "camera \(configuration.id): no image at \(configuration.source)")
            }
            images = [configuration.source]
        case .imageDirectory:
            images = try SourceKind.imageFiles(inDirectory: configuration.source)
            if images.isEmpty {
                throw VisionError(message: "camera \(configuration.id): no images in \(configuration.source)")
            }
        case .videoFile:
            guard FileManager.default.fileExists(atPath: configuration.source) else {
                throw VisionError(message: "camera \(configuration.id): no such file \(configuration.source)")
            }
            capture = try VideoCapture(source: configuration.source, kind: .file)
            framesThisPass = 0
        case .device:
            capture = try VideoCapture(source: configuration.source, kind: .device)
        case .stream:
            capture = try VideoCapture(source: configuration.source, kind: .stream,
                                       timeoutSeconds: configuration.stallSeconds)
        }
    }

    /// The next frame to process, or nil when the source has ended (or stop was asked).
    func next() -> SourceFrame? {
        while !shouldStop() {
            guard let candidate = readOne() else { return nil }
            if shouldTake(candidate) { return candidate }
        }
        return nil
    }

    private func shouldTake(_ candidate: SourceFrame) -> Bool {
        if configuration.everyNFrames > 1, candidate.index % Int64(configuration.everyNFrames) != 0 { return false }
        if configuration.fps > 0, let last = lastTakenNanos {
            let interval = Int64(1_000_000_000 / configuration.fps)
            // 5% slack so a source running at exactly the target rate is not halved.
            if candidate.timestampNanos - last < interval - interval / 20, candidate.timestampNanos >= last { return false }
        }
        lastTakenNanos = candidate.timestampNanos
        if configuration.realtime, kind == .videoFile {
            let wait = candidate.timestampNanos - monotonicNanos()
            if wait > 0 { sleepNanos(wait) }
        }
        return true
    }

    private func readOne() -> SourceFrame? {
        if kind.isStill { return readImage() }
        while !shouldStop() {
            var lossReason = openFailure.map { "cannot open: \($0)" } ?? "not open"
            if let capture {
                // Skipped frames are grabbed, not decoded into new buffers.
                let nextIndex = index + 1
                let skip = configuration.everyNFrames > 1 && nextIndex % Int64(configuration.everyNFrames) != 0
                let started = monotonicNanos()
                if skip {
                    if capture.grab() {
                        index = nextIndex
                        delivered()
                        continue
                    }
                } else if let frame = capture.read() {
                    index = nextIndex
                    delivered()
                    return SourceFrame(frame: frame, index: index, timestampNanos: timestamp(capture))
                }
                let waited = Double(monotonicNanos() - started) / 1e9
                lossReason = waited >= configuration.stallSeconds * 0.9
                    ? "no frame for \(formatSeconds(waited)) s (stall_seconds \(formatSeconds(configuration.stallSeconds)))"
                    : "the source stopped delivering frames (closed, or a read failed)"
            }
            // No frame: a file ended (or loops); a live source dropped and is reopened.
            if kind == .videoFile {
                warnIfEndedEarly()
                guard configuration.loop, !shouldStop() else { return nil }
                loopOffsetNanos = lastMediaNanos + Int64(1e9 / max(1, capture?.framesPerSecond ?? 25))
                capture = try? VideoCapture(source: configuration.source, kind: .file)
                framesThisPass = 0
                if capture == nil { return nil }
                continue
            }
            lost(lossReason)
            reopenWithBackoff()
        }
        return nil
    }

    /// A frame was read (or grabbed): counts it, and ends an outage if there was one.
    private func delivered() {
        framesRead += 1
        framesThisPass += 1
        guard let since = lostAtNanos else { return }
        let down = Double(monotonicNanos() - since) / 1e9
        lostAtNanos = nil
        reconnects += 1
        logger.notice("camera source delivers frames again after \(formatSeconds(down)) s and \(reopenAttempts) reopening(s)",
                      metadata: ["camera.source": "\(configuration.source)"])
        onConnectionChange(.restored(downSeconds: down, attempts: reopenAttempts))
        reopenAttempts = 0
        backoffSeconds = Self.firstBackoffSeconds
    }

    /// A live source gave no frame: reported once per outage, however many reopenings fail.
    private func lost(_ reason: String) {
        capture = nil
        guard lostAtNanos == nil else { return }
        let reason = redactingCredentials(reason)  // it reaches /readyz and the event log
        lostAtNanos = monotonicNanos()
        disconnects += 1
        logger.warning("camera source lost: \(reason); reopening with backoff", metadata: ["camera.source": "\(configuration.source)"])
        onConnectionChange(.lost(reason: reason))
    }

    /// A file whose header announces more frames than could be read is truncated or damaged.
    private func warnIfEndedEarly() {
        guard let announced = capture?.announcedFrameCount else { return }
        // Headers estimate some counts from the duration: allow a few frames' difference.
        guard framesThisPass < announced - max(2, announced / 50) else { return }
        logger.warning("""
            video file \(configuration.source) ended after \(framesThisPass) of the \(announced) frames its header \
            announces: truncated or damaged; the rest is skipped
            """)
    }

    private func timestamp(_ capture: VideoCapture) -> Int64 {
        guard kind == .videoFile else { return monotonicNanos() }
        var media = Int64(capture.positionMilliseconds * 1_000_000) + loopOffsetNanos
        // FFmpeg can report a stale or zero position near the end of a file: media time never
        // goes backwards, it steps on by one frame interval instead.
        if index > 0, media <= lastMediaNanos {
            let fps = capture.framesPerSecond > 0 ? capture.framesPerSecond : 25
            media = lastMediaNanos + Int64(1e9 / fps)
        }
        lastMediaNanos = media
        return startNanos + media
    }

    private func readImage() -> SourceFrame? {
        while !shouldStop() {
            if imageCursor >= images.count {
                guard configuration.loop else { return nil }
                imageCursor = 0
            }
            let path = images[imageCursor]
            imageCursor += 1
            index += 1
            do {
                let frame = try Frame.read(contentsOf: path)
                framesRead += 1
                return SourceFrame(frame: frame, index: index, timestampNanos: monotonicNanos())
            } catch {
                unreadableImages += 1
                // The message names the file: "truncated JPEG (no end-of-image marker): /path/b.jpg".
                logger.warning("skipping an unreadable image: \(error)")
                if configuration.loop && unreadableImages >= images.count { return nil }
            }
        }
        return nil
    }

    /// Waits, then opens the source again, until it opens or stop is asked. The wait doubles
    /// with each attempt of the outage (an open that delivers no frame counts as failed).
    private func reopenWithBackoff() {
        while !shouldStop() {
            let delay = backoffSeconds
            backoffSeconds = min(backoffSeconds * 2, Self.maxBackoffSeconds)
            let until = monotonicNanos() + Int64(delay * 1e9)
            while monotonicNanos() < until, !shouldStop() { sleepNanos(50_000_000) }
            if shouldStop() { return }
            reopenAttempts += 1
            do {
                try open()
                openFailure = nil
                logger.info("camera source reopened (attempt \(reopenAttempts)); waiting for frames",
                            metadata: ["camera.source": "\(configuration.source)"])
                return
            } catch {
                openFailure = "\(error)"
                logger.warning("camera source still unavailable (attempt \(reopenAttempts)): \(error); next try in \(formatSeconds(backoffSeconds)) s",
                               metadata: ["camera.source": "\(configuration.source)"])
            }
        }
    }

    /// The source's names for the current image (stills only).
    var currentImagePath: String? {
        kind.isStill && imageCursor > 0 ? images[imageCursor - 1] : nil
    }
}

/// `rtsp://user:secret@host/x` -> `rtsp://***@host/x`.
func redactingCredentials(_ text: String) -> String {
    text.replacing(#/://[^/@\s]+@/#, with: "://***@")
}

/// Seconds for messages: one decimal.
private func formatSeconds(_ seconds: Double) -> String { String(format: "%.1f", seconds) }

func sleepNanos(_ nanos: Int64) {
    guard nanos > 0 else { return }
    var ts = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    nanosleep(&ts, nil)
}
