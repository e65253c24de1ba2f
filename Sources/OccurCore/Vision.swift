// Swift owners for the Vision target's C handles (occur_vision.h). Each class owns one
// handle and releases it in deinit; nothing else here keeps raw pointers.
import Foundation
import Vision

public struct VisionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

func withErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>, Int) -> T?) throws -> T {
    var buffer = [CChar](repeating: 0, count: 512)
    let result = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    guard let result else { throw VisionError(message: String(cString: buffer)) }
    return result
}

/// A decoded image: immutable, reference-counted, shared read-only by every consumer.
/// Pixels stay valid while the Frame is alive.
public final class Frame: @unchecked Sendable {
    let handle: OpaquePointer
    public let width: Int
    public let height: Int
    public let stride: Int
    public let channels: Int

    init(handle: OpaquePointer) {
        self.handle = handle
        width = Int(ov_frame_width(handle))
        height = Int(ov_frame_height(handle))
        stride = Int(ov_frame_stride(handle))
        channels = Int(ov_frame_channels(handle))
    }

    deinit { ov_frame_release(handle) }

    /// Borrowed: valid while this Frame is alive.
    public var pixels: UnsafePointer<UInt8> { ov_frame_pixels(handle) }

    /// Pixel buffers allocated process-wide: one per decoded or made frame, never per consumer.
    public static var buffersAllocated: UInt64 { ov_frame_buffers_allocated() }

    public static func read(contentsOf path: String) throws -> Frame {
        Frame(handle: try withErrorBuffer { ov_image_read(path, $0, $1) })
    }

    /// A frame over pixels someone else owns (a plugin runner's shared-memory slot): no copy.
    /// The caller keeps `pixels` valid and unchanged for the Frame's whole life.
    static func borrowing(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                          channels: Int) -> Frame? {
        ov_frame_borrow(pixels, Int32(width), Int32(height), Int32(stride), Int32(channels)).map(Frame.init)
    }

    public static func filled(width: Int, height: Int, blue: UInt8 = 0, green: UInt8 = 0, red: UInt8 = 0) -> Frame {
        Frame(handle: ov_frame_create(Int32(width), Int32(height), blue, green, red)!)
    }

    public func resized(width: Int, height: Int) -> Frame {
        Frame(handle: ov_frame_resized(handle, Int32(width), Int32(height))!)
    }

    /// A copy of this frame with `region` of `source` pasted at (x, y).
    public func pasting(_ source: Frame, region: Box, atX x: Int, y: Int) -> Frame {
        Frame(handle: ov_frame_paste(handle, source.handle, Int32(region.x), Int32(region.y),
                                     Int32(region.width), Int32(region.height), Int32(x), Int32(y))!)
    }

    /// A new frame: this one turned 90 degrees clockwise (a pixel at (x, y) goes to (height - 1 - y, x)).
    public func rotated90() -> Frame {
        Frame(handle: ov_frame_rotated90(handle)!)
    }

    /// A new frame: this one mirrored left to right (a pixel at (x, y) goes to (width - 1 - x, y)).
    public func mirrored() -> Frame {
        Frame(handle: ov_frame_mirrored(handle)!)
    }

    /// A new frame of the same size: this one turned `degrees` counter-clockwise (as seen) about
    /// its centre, black where nothing maps.
    public func rotated(degrees: Double) -> Frame {
        Frame(handle: ov_frame_rotated(handle, degrees)!)
    }

    /// A new frame holding `region` of this one (clipped); nil when the region is outside.
    public func cropped(to region: Box) -> Frame? {
        ov_frame_crop(handle, Int32(region.x.rounded()), Int32(region.y.rounded()),
                      Int32(region.width.rounded()), Int32(region.height.rounded())).map(Frame.init)
    }

    /// A copy with `box` drawn and `label` written above it.
    public func annotated(box: Box, label: String) -> Frame? {
        ov_frame_annotated(handle, Int32(box.x.rounded()), Int32(box.y.rounded()), Int32(box.width.rounded()),
                           Int32(box.height.rounded()), label).map(Frame.init)
    }

    /// Lighting correction: CLAHE on lightness (when clipLimit > 0), then gamma (when != 1).
    public func enhanced(clipLimit: Double, gamma: Double) -> Frame {
        ov_frame_enhanced(handle, clipLimit, gamma).map(Frame.init) ?? self
    }

    /// A copy as if the scene had `gain` of its light (0.3 = 30 %): every pixel scaled.
    public func brightness(scaledBy gain: Double) -> Frame {
        ov_frame_scaled_brightness(handle, gain).map(Frame.init) ?? self
    }

    /// A copy blurred by a Gaussian of `sigma` pixels, as a face out of focus or moving.
    public func blurred(sigma: Double) -> Frame {
        ov_frame_gaussian_blurred(handle, sigma).map(Frame.init) ?? self
    }

    /// Mean brightness of the frame, 0...255.
    public var meanBrightness: Double { ov_frame_mean_brightness(handle) }

    /// Variance of the Laplacian over `region` scaled to 112 px wide: higher is sharper. The
    /// quality gate's measure normalises the region's contrast first (standard deviation 50
    /// grey levels, gain at most 10), so a dim face scores as the same face in good light;
    /// `normalizingContrast: false` gives the raw variance (which a third of the light divides by 9).
    public func sharpness(in region: Box, normalizingContrast: Bool = true) -> Double {
        ov_frame_sharpness(handle, Int32(region.x.rounded()), Int32(region.y.rounded()),
                           Int32(region.width.rounded()), Int32(region.height.rounded()), normalizingContrast ? 1 : 0)
    }

    /// Decodes image bytes (JPEG, PNG, ...) as BGR.
    public static func decode(_ bytes: Data) throws -> Frame {
        let handle = try bytes.withUnsafeBytes { raw in
            try withErrorBuffer { ov_image_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, $0, $1) }
        }
        return Frame(handle: handle)
    }

    /// The frame as JPEG bytes.
    public func jpeg(quality: Int = 90) throws -> Data {
        var size = 0
        let buffer = try withErrorBuffer { ov_image_encode_jpeg(handle, Int32(quality), &size, $0, $1) }
        defer { free(buffer) }
        return Data(bytes: buffer, count: size)
    }

    public func write(to path: String) throws {
        _ = try withErrorBuffer { ov_image_write(path, handle, $0, $1) == 0 ? true : nil }
    }
}

/// OpenCV VideoCapture over a file, a V4L2 device or a network stream.
final class VideoCapture {
    enum Kind: Int32 {
        case file = 0, device = 1, stream = 2
    }

    private let handle: OpaquePointer

    /// `timeoutSeconds` bounds how long opening and each read may block (FFmpeg sources;
    /// nil = OpenCV's default of 30 s).
    init(source: String, kind: Kind, timeoutSeconds: Double? = nil) throws {
        let milliseconds = timeoutSeconds.map { Int32(clamping: Int(($0 * 1000).rounded(.up))) } ?? 0
        handle = try withErrorBuffer { ov_capture_open(source, kind.rawValue, milliseconds, $0, $1) }
    }

    deinit { ov_capture_close(handle) }

    /// The next frame, or nil at the end of a file or when a stream stops delivering.
    func read() -> Frame? {
        var out: OpaquePointer?
        guard ov_capture_read(handle, &out) == 1, let out else { return nil }
        return Frame(handle: out)
    }

    /// Skips a frame without making a new buffer. False at the end.
    func grab() -> Bool { ov_capture_grab(handle) == 1 }

    var positionMilliseconds: Double { ov_capture_position_ms(handle) }
    var framesPerSecond: Double { ov_capture_fps(handle) }
    /// Frames the file's header announces; nil when the source does not say.
    var announcedFrameCount: Int64? {
        let count = ov_capture_frame_count(handle)
        return count >= 0 ? count : nil
    }
}

/// Writes an MJPG AVI (tests and the bench make videos with it).
public final class VideoWriter {
    private let handle: OpaquePointer

    public init(path: String, fps: Double, width: Int, height: Int) throws {
        handle = try withErrorBuffer { ov_writer_open(path, fps, Int32(width), Int32(height), $0, $1) }
    }

    public func write(_ frame: Frame) { ov_writer_write(handle, frame.handle) }

    deinit { ov_writer_close(handle) }
}
