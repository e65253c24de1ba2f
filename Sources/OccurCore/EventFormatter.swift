import Foundation

extension StoredEvent {
    /// The row an Event becomes in the log (id 0 until stored).
    public init(_ event: Event) {
        let face = event.kind == .pluginResult ? nil : event.faces.first
        self.init(id: 0, timeMilliseconds: Int64(event.wallTime.timeIntervalSince1970 * 1000), camera: event.cameraID,
                  kind: event.logKind, trackID: event.trackID, box: event.resultBox ?? face?.box,
                  identity: face?.identity ?? face?.unknownID, confidence: event.confidence ?? face?.score,
                  plugin: event.sourcePlugin, payload: event.payloadJSON, frameIndex: event.frameIndex,
                  snapshotFace: event.snapshot?.face, snapshotFrame: event.snapshot?.frame)
    }

    /// One line for people: `2026-11-25 09:10:11.123  front  face_appeared  track=3  box=...`.
    public var line: String {
        var parts = [Self.timeFormatter.string(from: time), camera.isEmpty ? "-" : camera, kind]
        if let trackID { parts.append("track=\(trackID)") }
        if let box { parts.append("box=\(Int(box.x)),\(Int(box.y)),\(Int(box.width))x\(Int(box.height))") }
        if let identity { parts.append("identity=\(identity)") }
        if let confidence { parts.append(String(format: "conf=%.2f", confidence)) }
        if let frameIndex { parts.append("frame=\(frameIndex)") }
        if let plugin { parts.append("plugin=\(plugin)") }
        if payload != "{}" { parts.append(payload) }
        if let snapshotFace { parts.append("snapshot=\(snapshotFace)") }
        return parts.joined(separator: "  ")
    }

    /// One JSON object (for `--json`), payload embedded as JSON.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "id": id, "time": ISO8601DateFormatter.withFractions.string(from: time), "camera": camera, "kind": kind,
        ]
        if let trackID { object["track_id"] = trackID }
        if let box { object["box"] = ["x": box.x, "y": box.y, "width": box.width, "height": box.height] }
        if let identity { object["identity"] = identity }
        if let confidence { object["confidence"] = confidence }
        if let plugin { object["plugin"] = plugin }
        if let frameIndex { object["frame_index"] = frameIndex }
        if let snapshotFace { object["snapshot_face"] = snapshotFace }
        if let snapshotFrame { object["snapshot_frame"] = snapshotFrame }
        object["payload"] = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) ?? payload
        return object
    }

    static let timeFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return f
    }()
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) public static let withFractions: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}

/// Parses `--since`: an ISO 8601 time, or an age such as 30s, 10m, 2h, 7d.
public func parseSince(_ text: String, now: Date = Date()) -> Date? {
    if let date = ISO8601DateFormatter.withFractions.date(from: text) ?? ISO8601DateFormatter().date(from: text) {
        return date
    }
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    guard let unit = text.last.flatMap({ units[$0] }), let value = Double(text.dropLast()), value >= 0 else {
        return nil
    }
    return now.addingTimeInterval(-value * unit)
}
