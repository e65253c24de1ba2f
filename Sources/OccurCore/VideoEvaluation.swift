import Foundation
import Logging

/// `occur eval video VIDEO [--person name=image]…`: the video through the pipeline with the
/// given people enrolled (into the run's temporary gallery); per track its face size, the
/// media time from its appearance to its first answer (face_recognized, face_unknown or
/// face_unassessed), and that answer.
public struct VideoEvaluation: Sendable {
    public static let answerKinds: Set<String> = [EventKind.faceRecognized.name, EventKind.faceUnknown.name, "face_unassessed"]

    public struct TrackResult: Codable, Sendable, Equatable {
        public var track: Int64
        /// Face box width and height when the track appeared, in pixels.
        public var width: Int
        public var height: Int
        /// Media seconds into the video when it appeared.
        public var appearedAt: Double
        /// Media seconds from appearing to the first answer; nil when it never got one.
        public var secondsToAnswer: Double?
        /// face_recognized, face_unknown or face_unassessed; nil: no answer.
        public var answerKind: String?
        /// The name, unknown-N, or the face_unassessed reason.
        public var answer: String?
        /// Media seconds in view (face_left's dwell).
        public var dwellSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case track, width, height, appearedAt = "appeared_at", secondsToAnswer = "seconds_to_answer",
                 answerKind = "answer_kind", answer, dwellSeconds = "dwell_seconds"
        }
    }

    public struct Report: Codable, Sendable, Equatable {
        public var video: String
        public var framesPerSecond: Double
        public var detector: String
        public var enrolled: [String: Int]
        public var tracks: [TrackResult]
        /// Answer kind -> tracks; "none" for tracks that never got one.
        public var answers: [String: Int]
        /// Over the answered tracks.
        public var medianSecondsToAnswer: Double?
        public var maxSecondsToAnswer: Double?
        /// Names given to some track.
        public var named: [String]

        enum CodingKeys: String, CodingKey {
            case video, framesPerSecond = "fps", detector, enrolled, tracks, answers,
                 medianSecondsToAnswer = "median_seconds_to_answer", maxSecondsToAnswer = "max_seconds_to_answer", named
        }
    }

    public let video: String
    public let run: EvaluationRun
    let framesPerSecond: Double
    let people: [(name: String, image: String)]
    private let faceDB: String

    /// `people`: name -> image to enrol (one face each).
    public init(video: String, people: [(name: String, image: String)], host: HostConfiguration,
                registry: PluginRegistry) throws {
        guard FileManager.default.fileExists(atPath: video) else { throw EvaluationError("\(video): no such video file") }
        guard SourceKind.of(video) == .videoFile else {
            throw EvaluationError("\(video): not a video file (eval video reads a recording; use eval recognition for images)")
        }
        let capture: VideoCapture
        do { capture = try VideoCapture(source: video, kind: .file) } catch {
            throw EvaluationError("\(video): cannot be opened as a video: \(error)")
        }
        framesPerSecond = capture.framesPerSecond > 0 ? capture.framesPerSecond : 25
        for person in people {
            if let problem = validatePersonName(person.name) {
                throw EvaluationError("--person \(person.name)=\(person.image): \(problem)")
            }
            guard FileManager.default.fileExists(atPath: person.image) else {
                throw EvaluationError("--person \(person.name)=\(person.image): no such image")
            }
        }
        // A face_db of links: <dir>/<name>/<n>.<ext> -> the image.
        faceDB = FileManager.default.temporaryDirectory.appendingPathComponent("occur-eval-people-\(UUID().uuidString.prefix(8))").path
        for (i, person) in people.enumerated() {
            let dir = faceDB + "/" + person.name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let image = person.image.hasPrefix("/") ? person.image : FileManager.default.currentDirectoryPath + "/" + person.image
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/\(i).\((image as NSString).pathExtension)",
                                                       withDestinationPath: image)
        }
        self.video = video
        self.people = people
        run = EvaluationRun(host: host, registry: registry, cameras: [CameraConfiguration(id: "video", source: video)],
                            faceDB: people.isEmpty ? nil : faceDB)
    }

    public func evaluate(logger: Logger, progress: (@Sendable ([String: Int64]) -> Void)? = nil) async throws -> Report {
        defer { try? FileManager.default.removeItem(atPath: faceDB) }
        let output = try await run.run(logger: logger, progress: progress)
        for person in people where output.enrolled[person.name] == nil {
            throw EvaluationError("--person \(person.name)=\(person.image): not enrolled (the image needs exactly one face the detector finds)")
        }
        return score(output.events, enrolled: output.enrolled)
    }

    func score(_ events: [StoredEvent], enrolled: [String: Int]) -> Report {
        let seconds = { (frame: Int64?) in frame.map { Double($0) / framesPerSecond } }
        var tracks: [TrackResult] = []
        var index: [Int64: Int] = [:]
        for e in events {
            guard let track = e.trackID, e.plugin == nil else { continue }
            if e.kind == EventKind.faceAppeared.name, index[track] == nil {
                index[track] = tracks.count
                tracks.append(TrackResult(track: track, width: Int((e.box?.width ?? 0).rounded()),
                                          height: Int((e.box?.height ?? 0).rounded()),
                                          appearedAt: seconds(e.frameIndex) ?? 0))
            }
            guard let i = index[track] else { continue }
            if Self.answerKinds.contains(e.kind), tracks[i].answerKind == nil {
                tracks[i].answerKind = e.kind
                tracks[i].answer = e.kind == "face_unassessed" ? e.payloadObject["reason"] as? String : e.identity
                if let at = seconds(e.frameIndex) { tracks[i].secondsToAnswer = max(0, at - tracks[i].appearedAt) }
            }
            if e.kind == EventKind.faceLeft.name {
                tracks[i].dwellSeconds = e.payloadObject["dwell_seconds"] as? Double
            }
        }
        let times = tracks.compactMap(\.secondsToAnswer).sorted()
        let median = times.isEmpty ? nil : times.count % 2 == 1 ? times[times.count / 2]
            : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let named = Set(tracks.filter { $0.answerKind == EventKind.faceRecognized.name }.compactMap(\.answer)).sorted()
        return Report(video: video, framesPerSecond: framesPerSecond, detector: run.host.detection.detectorName,
                      enrolled: enrolled, tracks: tracks,
                      answers: Dictionary(grouping: tracks, by: { $0.answerKind ?? "none" }).mapValues(\.count),
                      medianSecondsToAnswer: median, maxSecondsToAnswer: times.last, named: named)
    }
}
