import Foundation
import Logging

/// `occur bench quality`: how big and how sharp the faces the configured detector finds in a
/// real video (or folder of frames) are, measured exactly as the quality gate measures them
/// (shorter box side; `Frame.sharpness` on the lighting-corrected frame the detector saw). The
/// figures that set `recognition.quality`'s defaults. Optionally on a changed copy of each
/// frame: scaled, with less light, re-encoded as JPEG, blurred; the output says which.
public enum QualityBenchmark {
    /// How each frame is changed before detection (all identity by default).
    public struct Variant: Sendable {
        /// Frame size factor (0.5 = half width and height: faces half as big).
        public var scale: Double = 1
        /// Fraction of the light kept (0.3 = every pixel times 0.3).
        public var brightness: Double = 1
        /// Re-encode as JPEG of this quality after the other changes (compression of a dim picture).
        public var jpegQuality: Int? = nil
        /// Gaussian blur of this standard deviation in pixels, after scaling (0 = none).
        public var blur: Double = 0

        public init() {}

        public var text: String {
            var parts: [String] = []
            if scale != 1 { parts.append("scaled \(scale)") }
            if brightness != 1 { parts.append("light \(Int((brightness * 100).rounded())) % (pixels times \(brightness))") }
            if blur > 0 { parts.append("Gaussian blur sigma \(blur) px") }
            if let jpegQuality { parts.append("re-encoded JPEG quality \(jpegQuality)") }
            return parts.isEmpty ? "as recorded" : parts.joined(separator: ", ")
        }

        public func apply(to frame: Frame) throws -> Frame {
            var out = frame
            if scale != 1 {
                out = out.resized(width: max(1, Int(Double(out.width) * scale)), height: max(1, Int(Double(out.height) * scale)))
            }
            if brightness != 1 { out = out.brightness(scaledBy: brightness) }
            if blur > 0 { out = out.blurred(sigma: blur) }
            if let jpegQuality { out = try Frame.decode(out.jpeg(quality: jpegQuality)) }
            return out
        }
    }

    /// One detected face: its shorter side in pixels and its sharpness.
    public struct Sample: Sendable {
        public var size: Double
        public var sharpness: Double
        /// Without the contrast normalisation (the gate's measure before it had one).
        public var rawSharpness: Double
    }

    public struct Result: Sendable {
        public var frames: Int
        public var width: Int
        public var height: Int
        public var meanBrightness: Double
        public var samples: [Sample]
    }

    /// Every face the detector finds in the first `frames` frames of `source`.
    public static func measure(source: String, frames limit: Int, variant: Variant, detection: DetectionConfiguration,
                               models: ModelFiles, logger: Logger) throws -> Result {
        let detector = try makeFaceDetector(detection, models: models)
        let camera = try CameraSource(configuration: CameraConfiguration(id: "bench", source: source), logger: logger) { false }
        var result = Result(frames: 0, width: 0, height: 0, meanBrightness: 0, samples: [])
        var brightness = 0.0
        while result.frames < limit, let input = camera.next() {
            let frame = try variant.apply(to: input.frame)
            let seen = detection.lightingCorrected(frame)
            result.frames += 1
            result.width = frame.width
            result.height = frame.height
            brightness += frame.meanBrightness
            for face in detector.detect(in: seen) {
                result.samples.append(Sample(size: min(face.box.width, face.box.height), sharpness: seen.sharpness(in: face.box),
                                             rawSharpness: seen.sharpness(in: face.box, normalizingContrast: false)))
            }
        }
        result.meanBrightness = result.frames > 0 ? brightness / Double(result.frames) : 0
        return result
    }

    /// Faces grouped by shorter side: count, sharpness percentiles (the gate's measure, and
    /// without contrast normalisation), and how many pass the gate.
    public static func table(_ samples: [Sample], minFaceSize: Int, minSharpness: Double) -> [String] {
        let bands: [(String, ClosedRange<Double>)] = [
            ("< \(minFaceSize) px", 0...(Double(minFaceSize) - 0.001)),
            ("\(minFaceSize)-59 px", Double(minFaceSize)...59.999), ("60-79 px", 60...79.999),
            ("80-110 px", 80...110), ("> 110 px", 110.001...1e9), ("all", 0...1e9),
        ]
        func percentiles(_ values: [Double]) -> String {
            let v = values.sorted()
            let p = { (q: Double) in v[min(v.count - 1, Int(Double(v.count) * q))] }
            return String(format: "%6.1f %6.1f %6.1f %6.1f %6.1f", p(0.05), p(0.10), p(0.25), p(0.5), p(0.9))
        }
        var lines = [
            "sharpness percentiles p5 p10 p25 median p90; gate: >= \(minFaceSize) px and sharpness >= \(UnassessedReason.rounded(minSharpness))",
            String(format: "%-10@ %6@  %-34@  %-34@  %@", "face side", "faces", "sharpness (gate's measure)",
                   "raw (no contrast normalisation)", "pass the gate"),
        ]
        for (label, range) in bands {
            let band = samples.filter { range.contains($0.size) }
            guard !band.isEmpty else {
                lines.append(String(format: "%-10@ %6d", label, 0))
                continue
            }
            let passing = band.filter { $0.size >= Double(minFaceSize) && $0.sharpness >= minSharpness }.count
            lines.append(String(format: "%-10@ %6d  %@  %@  %d (%.0f %%)", label, band.count,
                                percentiles(band.map(\.sharpness)), percentiles(band.map(\.rawSharpness)),
                                passing, 100 * Double(passing) / Double(band.count)))
        }
        return lines
    }
}
