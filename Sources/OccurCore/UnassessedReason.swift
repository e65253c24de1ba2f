import Foundation

/// Why a face could not be recognised on a frame: what a `face_unassessed` event reports,
/// with the measured value and the threshold it missed where there is a measure.
public struct UnassessedReason: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The face's shorter side (pixels) is below `recognition.quality.min_face_size`.
        case tooSmall = "too_small"
        /// The face's sharpness is below `recognition.quality.min_sharpness`.
        case tooBlurry = "too_blurry"
        /// The embedder aligns by landmarks and the detector gave the face none.
        case noLandmarks = "no_landmarks"
        /// The embedder could not produce an embedding for the face.
        case embedderFailed = "embedder_failed"
    }

    public var code: Code
    public var value: Double?
    public var threshold: Double?
    /// What the value measures, for people reading the log ("px", "sharpness", ...).
    public var measure: String?

    public init(_ code: Code, value: Double? = nil, threshold: Double? = nil, measure: String? = nil) {
        self.code = code
        self.value = value
        self.threshold = threshold
        self.measure = measure
    }

    public var description: String {
        guard let value, let threshold else { return code.rawValue }
        return "\(code.rawValue): \(measure ?? "value") \(Self.rounded(value)) below \(Self.rounded(threshold))"
    }

    /// The event payload: `{"reason": ..., "value": ..., "threshold": ...}`.
    public var payloadJSON: String {
        var object: [String: Any] = ["reason": code.rawValue]
        if let value { object["value"] = Self.rounded(value) }
        if let threshold { object["threshold"] = Self.rounded(threshold) }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func rounded(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}
