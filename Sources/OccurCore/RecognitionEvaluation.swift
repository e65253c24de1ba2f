import Foundation
import Logging

/// `occur eval recognition DIR`: DIR/train/<name>/* enrolled (as `face_db`, into the run's
/// temporary gallery), DIR/test/* through the pipeline, each image scored by what its
/// largest face was announced as.
///
/// The expected name of a test image comes from a labels file (`file name` per line) or from
/// its file name with trailing digits and separators removed (obama2.jpg -> obama,
/// John_Simm_07.jpg -> John_Simm); names compare case-insensitively. A test image whose
/// expected name was not enrolled is a stranger: right when it stays unknown.
public struct RecognitionEvaluation: Sendable {
    public enum Outcome: String, Codable, Sendable, CaseIterable {
        /// Named as the expected person (or, for a stranger, unknown).
        case right
        case wrongName = "wrong_name"
        /// An enrolled person announced as face_unknown.
        case unknown
        /// A stranger named as someone enrolled.
        case strangerNamed = "stranger_named"
        /// The face was found but got no answer, or a face_unassessed one (the quality gate held it).
        case unassessed
        /// No face found in the image.
        case missedFace = "missed_face"
    }

    public struct ImageResult: Codable, Sendable, Equatable {
        public var file: String
        public var expected: String
        public var enrolled: Bool
        public var outcome: Outcome
        /// The name given, `unknown-N`, or the face_unassessed reason.
        public var answer: String?
    }

    public struct Report: Codable, Sendable, Equatable {
        public var directory: String
        public var detector: String
        public var backend: String
        /// Person -> embeddings enrolled from DIR/train.
        public var enrolled: [String: Int]
        /// Test images of enrolled people, and of strangers.
        public var people: Int
        public var strangers: Int
        /// Outcome -> count, over the enrolled people's images.
        public var peopleOutcomes: [String: Int]
        /// Outcome -> count, over the strangers' images.
        public var strangerOutcomes: [String: Int]
        public var images: [ImageResult]
        /// What the evaluation changed in the configuration (EvaluationRun.adjust).
        public var adjustments: [String]
    }

    public let directory: String
    public private(set) var run: EvaluationRun
    let tests: [String]
    let expected: [String: String]

    /// `labels`: a file of `file-name expected-name` lines (the name may contain spaces);
    /// without it, names come from the file names.
    public init(directory: String, labels: String? = nil, host: HostConfiguration, registry: PluginRegistry) throws {
        let train = directory + "/train", test = directory + "/test"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EvaluationError("\(directory): no such directory (expected \(directory)/train/<name>/ and \(directory)/test/)")
        }
        guard FileManager.default.fileExists(atPath: train, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EvaluationError("\(train): no such directory (one folder of images per person to enrol)")
        }
        let people = try FileManager.default.contentsOfDirectory(atPath: train).filter {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: train + "/" + $0, isDirectory: &d) && d.boolValue
        }
        guard !people.isEmpty else { throw EvaluationError("\(train): no person folders in it") }
        tests = try evaluationImages(in: test, role: "the test images of eval recognition")
        var expected: [String: String] = [:]
        if let labels {
            guard let text = try? String(contentsOfFile: labels, encoding: .utf8) else {
                throw EvaluationError("\(labels): cannot read the labels file")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                    throw EvaluationError("\(labels):\(number + 1): expected `file-name expected-name`, got '\(trimmed)'")
                }
                expected[String(trimmed[..<space])] = trimmed[space...].trimmingCharacters(in: .whitespaces)
            }
            for file in tests where expected[(file as NSString).lastPathComponent] == nil {
                throw EvaluationError("\(labels): no label for \((file as NSString).lastPathComponent)")
            }
        } else {
            for file in tests {
                let name = (file as NSString).lastPathComponent
                expected[name] = Self.expectedName(fromFileName: name)
            }
        }
        self.directory = directory
        self.expected = expected
        run = EvaluationRun(host: host, registry: registry, cameras: [CameraConfiguration(id: "test", source: test)],
                            faceDB: train)
        // Every test image is a scene of its own and needs its own answer: a stranger seen in
        // two images must be announced twice, not held back by the unknown cooldown.
        if run.host.recognition.unknownCooldown != 0 {
            run.adjust("recognition.unknown_cooldown: 0 instead of \(run.host.recognition.unknownCooldown) (every test image is announced)") {
                $0.recognition.unknownCooldown = 0
            }
        }
    }

    /// obama2.jpg -> obama, John_Simm_07.jpg -> John_Simm, biden.jpg -> biden.
    public static func expectedName(fromFileName file: String) -> String {
        let stem = (file as NSString).deletingPathExtension
        let trimmed = stem.replacing(#/[\s_\-.0-9]+$/#, with: "")
        return trimmed.isEmpty ? stem : trimmed
    }

    public var imageCount: Int { tests.count }

    public func evaluate(logger: Logger, progress: (@Sendable ([String: Int64]) -> Void)? = nil) async throws -> Report {
        let output = try await run.run(logger: logger, progress: progress)
        guard !output.enrolled.isEmpty else {
            throw EvaluationError("\(directory)/train: nobody could be enrolled (every image needs exactly one face the detector finds)")
        }
        return score(output.events, enrolled: output.enrolled)
    }

    static let answerKinds: Set<String> = [EventKind.faceRecognized.name, EventKind.faceUnknown.name, "face_unassessed"]

    func score(_ events: [StoredEvent], enrolled: [String: Int]) -> Report {
        let known = Set(enrolled.keys.map { $0.lowercased() })
        let appeared = Dictionary(grouping: events.filter { $0.kind == EventKind.faceAppeared.name && $0.frameIndex != nil },
                                  by: { $0.frameIndex! })
        var answers: [Int64: StoredEvent] = [:]   // track -> its first answer
        for e in events where Self.answerKinds.contains(e.kind) {
            if let track = e.trackID, answers[track] == nil { answers[track] = e }
        }
        var results: [ImageResult] = []
        for (index, file) in tests.enumerated() {
            let name = (file as NSString).lastPathComponent
            let want = expected[name] ?? ""
            let isKnown = known.contains(want.lowercased())
            var result = ImageResult(file: name, expected: want, enrolled: isKnown, outcome: .missedFace, answer: nil)
            if let face = appeared[Int64(index)]?.max(by: { ($0.box?.area ?? 0) < ($1.box?.area ?? 0) }) {
                let answer = face.trackID.flatMap { answers[$0] }
                switch answer?.kind {
                case EventKind.faceRecognized.name?:
                    let given = answer?.identity ?? ""
                    result.answer = given
                    result.outcome = given.lowercased() == want.lowercased() ? .right : isKnown ? .wrongName : .strangerNamed
                case EventKind.faceUnknown.name?:
                    result.answer = answer?.identity ?? "unknown"
                    result.outcome = isKnown ? .unknown : .right
                default:
                    result.answer = answer.flatMap { $0.payloadObject["reason"] as? String }
                    result.outcome = .unassessed
                }
            }
            results.append(result)
        }
        let tally = { (subset: [ImageResult]) in
            Dictionary(grouping: subset, by: \.outcome.rawValue).mapValues(\.count)
        }
        return Report(directory: directory, detector: run.host.detection.detectorName, backend: run.host.recognition.backend,
                      enrolled: enrolled, people: results.filter(\.enrolled).count,
                      strangers: results.filter { !$0.enrolled }.count,
                      peopleOutcomes: tally(results.filter(\.enrolled)),
                      strangerOutcomes: tally(results.filter { !$0.enrolled }), images: results,
                      adjustments: run.adjustments)
    }
}
