import ArgumentParser
import Foundation
import Logging
import OccurCore

extension Occur {
    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accuracy on labelled data, through the same pipeline as `occur run` (same occur.yaml and plugins.yaml).",
            discussion: """
                Every mode runs HostRuntime — detector, quality gate, tracker, recogniser, plugins — over the data in a \
                temporary data directory that is removed afterwards: the operator's database and gallery are never touched. \
                Progress goes to stderr, the table (or --json) to stdout.
                """,
            subcommands: [MaskEval.self, DetectionEval.self, RecognitionEval.self, VideoEval.self])
    }
}

/// Options every eval mode shares.
struct EvalOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions

    @Flag(name: .long, help: "Print the report as JSON instead of a table.")
    var json = false

    /// occur.yaml, plugins.yaml, and the logger.
    func load() throws -> (HostConfiguration, PluginRegistry, Logger) {
        let host = try config.loadHost()
        return (host, try config.loadRegistry(), logger(host))
    }

    /// Logs at warning (or the configured level when it is more verbose): eval's own output is the table.
    func logger(_ host: HostConfiguration) -> Logger {
        let verbose = ["trace", "debug", "info"].firstIndex(of: host.logLevel).map { $0 < 2 } ?? false
        return bootstrapLogging(level: verbose ? host.logLevel : "warning")
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func stderrLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }

/// `text` padded with spaces to `width` (left-aligned; right-aligned when width is negative).
func pad(_ text: String, _ width: Int) -> String {
    let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
    return width < 0 ? fill + text : text + fill
}

/// "eval: 120/400 images" on stderr.
func progressLine(_ label: String, total: Int) -> @Sendable ([String: Int64]) -> Void {
    { counts in stderrLine("eval \(label): \(counts.values.reduce(0, +))/\(total) \(label == "video" ? "frames" : "images")") }
}

/// Runs an evaluation, turning its input errors into `error: …` and exit 1.
func evaluating<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as EvaluationError {
        throw CleanExit.message("error: \(error)", code: 1)
    } catch let error as MissingModelError {
        throw CleanExit.message("error: \(error)", code: 1)
    }
}

extension Occur.Eval {
    struct MaskEval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mask",
            abstract: "Mask plugin accuracy: DIR/with_mask/ and DIR/without_mask/, per class and balanced.",
            discussion: """
                Each image counts right when the `mask` result for its largest face has the folder's label; an image \
                without a face counts wrong and on its own line. The Mask plugin is loaded from plugins.yaml as \
                `occur run` loads it; when it is disabled there it is enabled for the evaluation, and it is given every \
                face (cooldown 0, queue overflow block). The report says what was changed.
                """)

        @OptionGroup var options: EvalOptions
        @Argument(help: "A folder holding with_mask/ and without_mask/.") var directory: String

        func run() async throws {
            let (host, registry, logger) = try options.load()
            let report = try await evaluating {
                let evaluation = try MaskEvaluation(directory: directory, host: host, registry: registry)
                for line in evaluation.run.adjustments { stderrLine("eval mask: \(line)") }
                stderrLine("eval mask: \(evaluation.imageCount) images, detector \(host.detection.detectorName)")
                return try await evaluation.evaluate(logger: logger, progress: progressLine("mask", total: evaluation.imageCount))
            }
            if options.json { return try printJSON(report) }
            print("eval mask \(report.directory)   detector \(report.detector)")
            print("class         images  right  other label  unsure  no face  no result  accuracy  (even / odd positions)")
            for c in report.classes {
                let even = percent(c.evenImages > 0 ? Double(c.evenRight) / Double(c.evenImages) : 0)
                let odd = percent(c.oddImages > 0 ? Double(c.oddRight) / Double(c.oddImages) : 0)
                print(pad(c.folder, 12) + String(format: "  %6d  %5d  %11d  %6d  %7d  %9d  ", c.images, c.right,
                                                 c.wrongLabel, c.unsure, c.noFace, c.noResult)
                      + pad(percent(c.accuracy), -8) + "  (\(even) / \(odd))")
            }
            print("balanced accuracy \(percent(report.balancedAccuracy))  (even positions \(percent(report.balancedEven)), odd positions \(percent(report.balancedOdd)))")
            for line in report.adjustments { print("note: \(line)") }
        }
    }

    struct DetectionEval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detection",
            abstract: "Face detector recall and precision at IoU 0.5 against dlib imglab XML ground truth.",
            discussion: """
                FILE.xml is dlib's imglab format (e.g. /usr/share/doc/libdlib19.1/examples/faces/testing.xml); boxes \
                marked ignore='1' count neither as hits nor as false alarms. Detected faces are the pipeline's \
                face_appeared events (occur.yaml's score_threshold and min_face_size apply).
                """)

        @OptionGroup var options: EvalOptions
        @Argument(help: "dlib imglab XML ground truth.") var file: String
        @Option(help: "Detectors to compare, comma-separated: a name alone (yunet, ssd, blazeface, haar, dlib_hog, dlib_mmod), or name+ssd for it with SSD as second detector (default: what occur.yaml configures).") var detector: String?

        func run() async throws {
            let (host, registry, logger) = try options.load()
            let detectors = detector?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
            let report = try await evaluating {
                let evaluation = try DetectionEvaluation(file: file, detectors: detectors, host: host, registry: registry)
                let total = evaluation.dataset.images.count
                return try await evaluation.evaluate(logger: logger) { detector, counts in
                    stderrLine("eval detection: \(detector): \(counts.values.reduce(0, +))/\(total) images")
                }
            }
            if options.json { return try printJSON(report) }
            print("eval detection \(report.file)   \(report.images) images, IoU \(report.iou), score_threshold \(report.scoreThreshold), second_score_threshold \(report.secondScoreThreshold), min_face_size \(report.minFaceSize)")
            print("detector    faces  found  detections  false alarms  recall  precision")
            for d in report.detectors {
                print(pad(d.detector, 10) + String(format: " %6d  %5d  %10d  %12d  ", d.truths, d.hits, d.detections,
                                                   d.falseAlarms) + pad(percent(d.recall), -6) + "  " + pad(percent(d.precision), -9))
            }
        }
    }

    struct RecognitionEval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recognition",
            abstract: "Recognition accuracy: DIR/train/<name>/* enrolled into a temporary gallery, DIR/test/* scored.",
            discussion: """
                The expected name of a test image is its file name without trailing digits and separators \
                (obama2.jpg -> obama), or what --labels says (`file-name expected-name` per line). Each image is scored by \
                the first answer for its largest face: right, wrong name, unknown, unassessed (found, no answer), or missed \
                face. Test images of people not enrolled are strangers: right when unknown; those named as someone are \
                listed. recognition.unknown_cooldown is 0 for the evaluation, so that every image gets its answer.
                """)

        @OptionGroup var options: EvalOptions
        @Argument(help: "A folder holding train/<name>/ and test/.") var directory: String
        @Option(help: "A labels file: `file-name expected-name` per line.") var labels: String?

        func run() async throws {
            let (host, registry, logger) = try options.load()
            let report = try await evaluating {
                let evaluation = try RecognitionEvaluation(directory: directory, labels: labels, host: host, registry: registry)
                for line in evaluation.run.adjustments { stderrLine("eval recognition: \(line)") }
                return try await evaluation.evaluate(logger: logger, progress: progressLine("recognition", total: evaluation.imageCount))
            }
            if options.json { return try printJSON(report) }
            let enrolled = report.enrolled.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            print("eval recognition \(report.directory)   detector \(report.detector), backend \(report.backend)")
            print("enrolled: \(enrolled)")
            let order: [RecognitionEvaluation.Outcome] = [.right, .wrongName, .unknown, .strangerNamed, .unassessed, .missedFace]
            print("images        total  " + order.map { pad($0.rawValue, -14) }.joined(separator: " "))
            for (label, total, tally) in [("enrolled", report.people, report.peopleOutcomes),
                                          ("strangers", report.strangers, report.strangerOutcomes)] {
                print(pad(label, 12) + String(format: "  %5d  ", total)
                      + order.map { pad("\(tally[$0.rawValue] ?? 0)", -14) }.joined(separator: " "))
            }
            if report.people > 0 {
                print("enrolled people named right: \(report.peopleOutcomes["right"] ?? 0)/\(report.people) "
                      + "(\(percent(Double(report.peopleOutcomes["right"] ?? 0) / Double(report.people))))")
            }
            for image in report.images where image.outcome != .right {
                print("  \(image.file): expected \(image.expected)\(image.enrolled ? "" : " (stranger)"), "
                      + "\(image.outcome.rawValue)\(image.answer.map { ": \($0)" } ?? "")")
            }
            for line in report.adjustments { print("note: \(line)") }
        }
    }

    struct VideoEval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "video",
            abstract: "Per track of a video: face size, media time from appearing to the first answer, and the answer.",
            discussion: """
                --person name=image enrols a person (into a temporary gallery) before the video runs; repeat it for more. \
                An answer is face_recognized, face_unknown or face_unassessed; a track that left without one is listed \
                as none.
                """)

        @OptionGroup var options: EvalOptions
        @Argument(help: "A video file.") var video: String
        @Option(name: .customLong("person"), help: "name=image: enrol name from image (one face) first.") var people: [String] = []

        func run() async throws {
            let (host, registry, logger) = try options.load()
            var persons: [(name: String, image: String)] = []
            for spec in people {
                guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex, spec.index(after: equals) != spec.endIndex else {
                    throw CleanExit.message("error: --person \(spec): expected name=image", code: 2)
                }
                persons.append((String(spec[..<equals]), String(spec[spec.index(after: equals)...])))
            }
            let report = try await evaluating {
                let evaluation = try VideoEvaluation(video: video, people: persons, host: host, registry: registry)
                return try await evaluation.evaluate(logger: logger) { counts in
                    stderrLine("eval video: \(counts.values.reduce(0, +)) frames")
                }
            }
            if options.json { return try printJSON(report) }
            let enrolled = report.enrolled.sorted { $0.key < $1.key }.map(\.key).joined(separator: ", ")
            print("eval video \(report.video)   \(String(format: "%.2f", report.framesPerSecond)) fps, detector \(report.detector), enrolled: \(enrolled.isEmpty ? "nobody" : enrolled)")
            print("track  size (px)  appeared (s)  to answer (s)  answer")
            for t in report.tracks {
                let wait = t.secondsToAnswer.map { String(format: "%.2f", $0) } ?? "-"
                let answer = t.answerKind.map { "\($0)\(t.answer.map { " \($0)" } ?? "")" } ?? "none"
                print(pad("\(t.track)", -5) + "  " + pad("\(t.width)x\(t.height)", -9) + "  "
                      + pad(String(format: "%.2f", t.appearedAt), -12) + "  " + pad(wait, -13) + "  " + answer)
            }
            let answers = report.answers.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("tracks \(report.tracks.count): \(answers.isEmpty ? "none" : answers)")
            if let median = report.medianSecondsToAnswer, let max = report.maxSecondsToAnswer {
                print(String(format: "time to answer: median %.2f s, max %.2f s", median, max))
            }
            print("named: \(report.named.isEmpty ? "nobody" : report.named.joined(separator: ", "))")
        }
    }
}
