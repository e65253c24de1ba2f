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

/// Reads frames from one camera source, applying fps, every_n_frames, loop and
/// realtime, and reopening live sources with backoff. Used by one thread.
final class CameraSource {
    let configuration: CameraConfiguration
    let kind: SourceKind
    private let logger: Logger
    private let shouldStop: () -> Bool

    private var capture: VideoCapture?
    private var images: [String] = []
    private var imageCursor = 0
    private var index: Int64 = -1
    private var startNanos = monotonicNanos()
    private var lastTakenNanos: Int64?
    private var loopOffsetNanos: Int64 = 0
    private var lastMediaNanos: Int64 = 0
    private(set) var reconnects = 0
    private(set) var framesRead: Int64 = 0
    private(set) var unreadableImages = 0

    init(configuration: CameraConfiguration, logger: Logger, shouldStop: @escaping () -> Bool) throws {
        self.configuration = configuration
        kind = SourceKind.of(configuration.source)
        self.logger = logger
        self.shouldStop = shouldStop
        try open()
    }

    private func open() throws {
        switch kind {
        case .image:
            guard FileManager.default.fileExists(atPath: configuration.source) else {
                throw VisionError(message: "camera \(configuration.id): no image at \(configuration.source)")
            }
            images = [configuration.source]
        case .imageDirectory:
            let names = try FileManager.default.contentsOfDirectory(atPath: configuration.source)
            images = names.filter { SourceKind.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .sorted().map { (configuration.source as NSString).appendingPathComponent($0) }
            if images.isEmpty {
                throw VisionError(message: "camera \(configuration.id): no images in \(configuration.source)")
            }
        case .videoFile:
            guard FileManager.default.fileExists(atPath: configuration.source) else {
                throw VisionError(message: "camera \(configuration.id): no such file \(configuration.source)")
            }
            capture = try VideoCapture(source: configuration.source, kind: .file)
        case .device:
            capture = try VideoCapture(source: configuration.source, kind: .device)
        case .stream:
            capture = try VideoCapture(source: configuration.source, kind: .stream)
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
            if let capture {
                // Skipped frames are grabbed, not decoded into new buffers.
                let nextIndex = index + 1
                let skip = configuration.everyNFrames > 1 && nextIndex % Int64(configuration.everyNFrames) != 0
                if skip {
                    if capture.grab() {
                        index = nextIndex
                        framesRead += 1
                        continue
                    }
                } else if let frame = capture.read() {
                    index = nextIndex
                    framesRead += 1
                    return SourceFrame(frame: frame, index: index, timestampNanos: timestamp(capture))
                }
            }
            // No frame: a file ended (or loops); a live source dropped and is reopened.
            if kind == .videoFile {
                guard configuration.loop, !shouldStop() else { return nil }
                loopOffsetNanos = lastMediaNanos + Int64(1e9 / max(1, capture?.framesPerSecond ?? 25))
                capture = try? VideoCapture(source: configuration.source, kind: .file)
                if capture == nil { return nil }
                continue
            }
            reopenWithBackoff()
        }
        return nil
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
                logger.warning("skipping unreadable image \(path): \(error)")
                if configuration.loop && unreadableImages >= images.count { return nil }
            }
        }
        return nil
    }

    private func reopenWithBackoff() {
        capture = nil
        var delay = 0.5
        while !shouldStop() {
            logger.warning("camera source lost; reopening in \(delay) s", metadata: ["camera.source": "\(configuration.source)"])
            let until = monotonicNanos() + Int64(delay * 1e9)
            while monotonicNanos() < until, !shouldStop() { sleepNanos(50_000_000) }
            if shouldStop() { return }
            do {
                try open()
                reconnects += 1
                logger.info("camera source reopened", metadata: ["camera.source": "\(configuration.source)"])
                return
            } catch {
                delay = min(delay * 2, 30)
            }
        }
    }

    /// The source's names for the current image (stills only).
    var currentImagePath: String? {
        kind.isStill && imageCursor > 0 ? images[imageCursor - 1] : nil
    }
}

func sleepNanos(_ nanos: Int64) {
    guard nanos > 0 else { return }
    var ts = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    nanosleep(&ts, nil)
}
