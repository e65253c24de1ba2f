import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// Bad input never crashes the host. The repository's own occur.yaml and plugins.yaml, and
/// real photos, are mutated by a seeded generator (the same cases on every run; a failure
/// names its case): every configuration parses or fails with a ConfigError that names the
/// file and line, every image decodes or fails with a VisionError.
@Suite struct FuzzTests {
    static let occurYAML = Fixtures.packageRoot + "/occur.yaml"
    static let pluginsYAML = Fixtures.packageRoot + "/plugins.yaml"

    // MARK: configuration

    @Test func mutatedOccurYAMLParsesOrFailsWithALocatedError() throws {
        try fuzz(Self.occurYAML, seed: 1, cases: 2000) { path in
            let configuration = try HostConfiguration.load(contentsOf: path)
            return Self.unsafeValues(in: configuration)
        }
    }

    @Test func mutatedPluginsYAMLParsesOrFailsWithALocatedError() throws {
        try fuzz(Self.pluginsYAML, seed: 2, cases: 2000) { path in
            let registry = try PluginRegistry.load(contentsOf: path)
            return Self.unsafeValues(in: registry)
        }
    }

    /// Every numeric key set to values at and beyond the edge: refused, or safe to use.
    @Test func extremeNumbersAreRefusedOrSafe() throws {
        let extremes = [".nan", ".inf", "-.inf", "1e308", "-1e308", "1e-308", "9223372036854775807",
                        "-9223372036854775808", "99999999999999999999999", "0x7fffffffffffffff", "2147483648", "0"]
        let hostKeys = [
            "cameras.c.fps", "cameras.c.every_n_frames", "cameras.c.stall_seconds", "detection.input_size",
            "detection.score_threshold", "detection.second_score_threshold", "detection.min_face_size", "detection.scale_factor", "detection.min_neighbors",
            "detection.clahe_clip_limit", "detection.gamma", "detection.dark_threshold", "recognition.threshold",
            "recognition.margin", "recognition.recheck_seconds", "recognition.uncertain_recheck_seconds",
            "recognition.unknown_cooldown", "recognition.snapshot_cooldown", "recognition.cluster_threshold",
            "recognition.max_cluster_embeddings", "recognition.quality.min_face_size", "recognition.quality.min_sharpness",
            "tracking.iou_threshold", "tracking.max_missed_frames", "storage.batch_size", "storage.flush_interval",
            "api.max_upload_bytes", "retention.events_days", "retention.unknown_days", "retention.snapshots_days",
            "retention.snapshots_max_bytes", "retention.sweep_interval",
        ]
        let pluginKeys = ["plugins.p.cooldown", "plugins.p.queue.capacity", "plugins.p.timeout",
                          "plugins.p.restart_backoff_max", "plugins.p.max_crashes", "plugins.p.crash_window"]
        let dir = Fixtures.temporaryDirectory("extremes")
        var accepted = 0, refused = 0
        for key in hostKeys + pluginKeys {
            for value in extremes {
                var parts = key.split(separator: ".").map(String.init)
                let leaf = parts.removeLast()
                var yaml = parts.first == "cameras" ? "cameras:\n  c:\n    source: /tmp/x.avi\n" : ""
                var indent = ""
                for (i, part) in parts.enumerated() where !(parts.first == "cameras" && i < 2) {
                    yaml += "\(indent)\(part):\n"
                    indent += "  "
                }
                if parts.first == "cameras" { indent = "    " }
                yaml += "\(indent)\(leaf): \(value)\n"
                let isPlugin = parts.first == "plugins"
                let path = dir + (isPlugin ? "/plugins.yaml" : "/occur.yaml")
                try yaml.write(toFile: path, atomically: true, encoding: .utf8)
                do {
                    let problems = isPlugin ? Self.unsafeValues(in: try PluginRegistry.load(contentsOf: path))
                        : Self.unsafeValues(in: try HostConfiguration.load(contentsOf: path))
                    #expect(problems.isEmpty, "\(key): \(value) was accepted as \(problems)")
                    accepted += 1
                } catch let error as ConfigError {
                    #expect(error.line == yaml.split(separator: "\n").count, "\(key): \(value): \(error)")
                    #expect(error.keyPath == key, "\(key): \(value): \(error)")
                    refused += 1
                }
            }
        }
        #expect(accepted > 50 && refused > 200)   // both outcomes are exercised
    }

    @Test func yamlAliasesCannotBlowUpAPluginConfig() throws {
        var yaml = "plugins:\n  p:\n    config:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "      l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let error = #expect(throws: ConfigError.self) { try PluginRegistry(ConfigNode.parse(yaml, file: "plugins.yaml")) }
        #expect(error?.keyPath.hasPrefix("plugins.p.config.") == true, "\(String(describing: error))")
        #expect(error?.line != nil)
        #expect(error?.message == "more than 100000 values (YAML aliases repeating one another?)")
    }

    @Test func theCheckConfigCommandExitsCleanlyOnMutatedFiles() throws {
        let occur = Fixtures.occurExecutable
        try #require(FileManager.default.isExecutableFile(atPath: occur), "build the package first: \(occur)")
        var random = SeededRandom(seed: 3)
        let dir = Fixtures.temporaryDirectory("check-config")
        let original = (occur: try Data(contentsOf: URL(fileURLWithPath: Self.occurYAML)),
                        plugins: try Data(contentsOf: URL(fileURLWithPath: Self.pluginsYAML)))
        var statuses: [Int32: Int] = [:]
        var outputs: [String] = []
        for run in 0..<24 {
            let mutateOccur = run % 2 == 0
            let source = mutateOccur ? original.occur : original.plugins
            // Half the runs change one value only, so that some files still load.
            let mutated = run % 4 < 2 ? ConfigMutator.mutate(source, &random)
                : Data(ConfigMutator.mutateOnce([UInt8](source), &random, kind: ConfigMutator.wrongValue))
            try mutated.write(to: URL(fileURLWithPath: dir + (mutateOccur ? "/occur.yaml" : "/plugins.yaml")))
            try (mutateOccur ? original.plugins : original.occur)
                .write(to: URL(fileURLWithPath: dir + (mutateOccur ? "/plugins.yaml" : "/occur.yaml")))
            let result = try runProcessReportingSignal(occur, ["check-config"], currentDirectory: dir)
            #expect(result.signal == nil, "run \(run): occur check-config died of signal \(result.signal ?? 0): \(result.stderr)")
            #expect([0, 1, 2].contains(result.status), "run \(run): exit \(result.status): \(result.stderr)")
            if result.status == 2 {
                let file = mutateOccur ? "occur.yaml" : "plugins.yaml"
                #expect(result.stderr.range(of: #"error: \#(file):\d+:\d+: "#, options: .regularExpression) != nil
                        || result.stderr.contains("error: \(file): cannot read"), "run \(run): \(result.stderr)")
            }
            statuses[result.status, default: 0] += 1
            outputs.append("run \(run): exit \(result.status): \(result.stderr.prefix(300))")
        }
        // Both outcomes occur: some mutations still load, others are refused.
        #expect(statuses[2, default: 0] > 0 && statuses[2, default: 0] < 24, "\(outputs.joined(separator: "\n"))")
    }

    /// Parses `cases` mutations of `original`. `parse` throws, or returns what is unsafe in
    /// what it accepted.
    func fuzz(_ original: String, seed: UInt64, cases: Int, parse: (String) throws -> [String]) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: original))
        let dir = Fixtures.temporaryDirectory("fuzz")
        let path = dir + "/" + (original as NSString).lastPathComponent
        var random = SeededRandom(seed: seed)
        var parsed = 0, refused = 0
        for index in 0..<cases {
            let mutated = ConfigMutator.mutate(bytes, &random)
            try mutated.write(to: URL(fileURLWithPath: path))
            let lines = Self.yamlLineCount(mutated)
            do {
                let unsafe = try parse(path)
                #expect(unsafe.isEmpty, "case \(index) accepted unsafe values: \(unsafe)")
                parsed += 1
            } catch let error as ConfigError {
                refused += 1
                #expect(error.file == path, "case \(index): \(error)")
                let line = try #require(error.line, "case \(index): no line in \(error)")
                #expect((1...lines + 1).contains(line), "case \(index): line \(line) of \(lines): \(error)")
                #expect(error.description.hasPrefix("\(path):\(line):"), "case \(index): \(error)")
                #expect(!error.message.isEmpty)
            } catch {
                Issue.record("case \(index): \(type(of: error)) is not a ConfigError: \(error)")
            }
        }
        #expect(parsed > cases / 20 && refused > cases / 4, "parsed \(parsed), refused \(refused)")
    }

    /// Lines as YAML counts them: \r\n, \r, \n, U+0085, U+2028 and U+2029 each end one (only
    /// \n for bytes that are not UTF-8, as the error for those counts).
    static func yamlLineCount(_ data: Data) -> Int {
        guard let text = String(data: data, encoding: .utf8) else {
            return data.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        }
        var lines = 1, afterCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n", afterCR { afterCR = false; continue }
            afterCR = scalar == "\r"
            if ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains(scalar) { lines += 1 }
        }
        return lines
    }

    /// Accepted values the host could not use safely: non-finite numbers, durations whose
    /// nanoseconds overflow Int64, sizes that overflow the C API's Int32.
    static func unsafeValues(in c: HostConfiguration) -> [String] {
        var unsafe: [String] = []
        func seconds(_ name: String, _ value: Double) {
            if !value.isFinite || Int64(exactly: (value * 1e9).rounded()) == nil { unsafe.append("\(name) \(value)") }
        }
        func int32(_ name: String, _ value: Int) { if Int32(exactly: value) == nil { unsafe.append("\(name) \(value)") } }
        for camera in c.cameras {
            if !camera.fps.isFinite || (camera.fps > 0 && (1e9 / camera.fps) >= 9.2e18) { unsafe.append("fps \(camera.fps)") }
            seconds("stall_seconds", camera.stallSeconds)
        }
        for (name, value) in [("recheck_seconds", c.recognition.recheckSeconds),
                              ("uncertain_recheck_seconds", c.recognition.uncertainRecheckSeconds),
                              ("unknown_cooldown", c.recognition.unknownCooldown),
                              ("snapshot_cooldown", c.recognition.snapshotCooldown),
                              ("flush_interval", c.storage.flushInterval), ("sweep_interval", c.retention.sweepInterval)] {
            seconds(name, value)
        }
        for value in [c.detection.scoreThreshold, c.detection.scaleFactor, c.detection.claheClipLimit, c.detection.gamma,
                      c.detection.darkThreshold, c.recognition.margin, c.recognition.minSharpness, c.tracking.iouThreshold,
                      c.recognition.threshold ?? 0, c.recognition.clusterThreshold ?? 0] where !value.isFinite {
            unsafe.append("\(value)")
        }
        int32("input_size", c.detection.inputSize)
        int32("min_face_size", c.detection.minFaceSize)
        int32("min_neighbors", c.detection.minNeighbors)
        for days in [c.retention.eventsDays, c.retention.unknownDays, c.retention.snapshotsDays]
        where days.multipliedReportingOverflow(by: 86_400_000).overflow {
            unsafe.append("days \(days)")
        }
        return unsafe
    }

    static func unsafeValues(in registry: PluginRegistry) -> [String] {
        var unsafe: [String] = []
        for p in registry.plugins {
            for (name, value) in [("cooldown", p.cooldown), ("timeout", p.timeout),
                                  ("restart_backoff_max", p.restartBackoffMax), ("crash_window", p.crashWindow)]
            where !value.isFinite || Int64(exactly: (value * 1e9).rounded()) == nil {
                unsafe.append("\(p.id).\(name) \(value)")
            }
            if (try? JSONSerialization.jsonObject(with: Data(p.configJSON.utf8))) as? [String: Any] == nil {
                unsafe.append("\(p.id).config \(p.configJSON)")
            }
        }
        return unsafe
    }

    // MARK: images

    @Test func mutatedImagesDecodeOrFailWithAVisionError() throws {
        let originals = try ["obama.jpg", "biden.jpg", "32bit.png"].map {
            try Data(contentsOf: URL(fileURLWithPath: Fixtures.faceImage($0)))
        }
        var detection = DetectionConfiguration()
        detection.detector = "haar"
        var detectors = [try makeFaceDetector(detection, models: ModelFiles(directory: ModelFiles.defaultDirectory))]
        if let yunet = try? makeFaceDetector(DetectionConfiguration(), models: ModelFiles(directory: ModelFiles.defaultDirectory)) {
            detectors.append(yunet)
        }
        let dir = Fixtures.temporaryDirectory("fuzz-images")
        var random = SeededRandom(seed: 4)
        var decoded = 0, refused = 0
        for index in 0..<240 {
            let original = originals[index % originals.count]
            let mutated = ImageMutator.mutate(original, &random)
            let path = dir + "/case.\(index % 3 == 2 ? "png" : "jpg")"
            try mutated.write(to: URL(fileURLWithPath: path))
            for read in [{ try Frame.decode(mutated) }, { try Frame.read(contentsOf: path) }] {
                do {
                    let frame = try read()
                    #expect(frame.width > 0 && frame.height > 0 && frame.channels == 3)
                    if index % 6 == 0 { for detector in detectors { _ = detector.detect(in: frame) } }
                    decoded += 1
                } catch let error as VisionError {
                    #expect(!error.message.isEmpty)
                    refused += 1
                } catch {
                    Issue.record("case \(index): \(type(of: error)) is not a VisionError: \(error)")
                }
            }
        }
        #expect(decoded > 50 && refused > 50, "decoded \(decoded), refused \(refused)")
    }

    @Test func aTruncatedJPEGIsRefusedWithAMessageThatSaysSo() throws {
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Fixtures.faceImage("obama.jpg")))
        let error = #expect(throws: VisionError.self) { try Frame.decode(jpeg.prefix(jpeg.count * 3 / 4)) }
        #expect(error?.message.hasPrefix("truncated JPEG (no end-of-image marker") == true)
        // Bytes after the end-of-image marker (some cameras append their own) do no harm.
        #expect(try Frame.decode(jpeg + Data("trailer".utf8)).width > 0)
    }
}

// MARK: mutators

/// Damages a YAML file the ways people and disks do: flipped bytes, lost, doubled and
/// shuffled lines, wrong indentation, values of the wrong type or size, stray Unicode,
/// deep nesting, truncation, or garbage instead of text.
enum ConfigMutator {
    static let values = [
        "", "~", "null", "true", "no", "0", "-1", "3.5", "1e308", "-1e308", "1e-308", ".nan", ".inf", "-.inf",
        "99999999999999999999999", "9223372036854775807", "-9223372036854775808", "0x7fffffffffffffff", "0o777",
        "1_000", "[]", "[1, [2, [3]]]", "{}", "{a: {b: c}}", "\"\"", "'x'", "\"unterminated", "'", "&anchor 1",
        "*anchor", "*undefined", "!!binary aGVsbG8=", "!!int x", "!!float 3", "!custom tag", "|\n  block", ">",
        "カメラ", "😀🎥", "\u{202E}rtl", "a: b: c", "- item", "? complex", "%YAML 1.2", "---", "...", "# comment",
        String(repeating: "x", count: 10_000), "\u{7F}", "\t", "\u{FEFF}", "\u{1}", "\u{0}", "\u{85}", "\u{2028}",
        "/dev/null", "rtsp://u:p@h/s", "../../etc/passwd", "~root",
    ]
    static let keys = [
        "cameras", "source", "fps", "every_n_frames", "loop", "stall_seconds", "detection", "detector", "recognition",
        "backend", "plugins", "plugins_dir", "enabled", "library", "queue", "capacity", "overflow", "events", "config",
        "sha256", "isolation", "zzz", "", "\"\"", "a.b", "[x]", "1", "ÿ", "<<", "? x",
    ]

    static func mutate(_ original: Data, _ random: inout SeededRandom) -> Data {
        var bytes = [UInt8](original)
        for _ in 0...random.below(3) {
            bytes = mutateOnce(bytes, &random)
        }
        return Data(bytes)
    }

    /// The mutation that puts a value of the wrong type or size after a key.
    static let wrongValue = 4

    /// One mutation: `kind` (0...12), or a random one.
    static func mutateOnce(_ bytes: [UInt8], _ random: inout SeededRandom, kind: Int? = nil) -> [UInt8] {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        let line = random.below(lines.count)
        func joined() -> [UInt8] { Array(lines.joined(separator: [UInt8(ascii: "\n")])) }
        switch kind ?? random.below(13) {
        case 0:   // flip bytes
            var out = bytes
            for _ in 0...random.below(8) where !out.isEmpty { out[random.below(out.count)] ^= UInt8(1 + random.below(255)) }
            return out
        case 1: lines.remove(at: line)
        case 2: lines.insert(lines[line], at: line)
        case 3: lines.swapAt(line, random.below(lines.count))
        case wrongValue:   // a value of the wrong type or size
            guard let colon = lines[line].firstIndex(of: UInt8(ascii: ":")) else { return bytes }
            lines[line] = Array(lines[line][...colon]) + Array((" " + values[random.below(values.count)]).utf8)
        case 5:   // an unknown or misplaced key
            let indent = String(repeating: " ", count: [0, 2, 4, 6, 1, 3][random.below(6)])
            lines.insert(Array("\(indent)\(keys[random.below(keys.count)]): \(values[random.below(values.count)])".utf8), at: line)
        case 6:   // indentation
            switch random.below(3) {
            case 0: lines[line] = Array(repeating: UInt8(ascii: " "), count: 1 + random.below(3)) + lines[line]
            case 1: lines[line] = Array(lines[line].drop { $0 == UInt8(ascii: " ") })
            default: lines[line] = [UInt8(ascii: "\t")] + lines[line]
            }
        case 7: return Array(bytes.prefix(random.below(bytes.count + 1)))
        case 8:   // stray Unicode
            let scalars = ["\u{0}", "\u{1}", "\u{1B}", "\u{85}", "\u{A0}", "\u{2028}", "\u{FEFF}", "\u{FFFD}", "é", "ß", "漢",
                           "😀", "\u{301}", "\r", "\r\n"]
            var out = bytes
            out.insert(contentsOf: Array(scalars[random.below(scalars.count)].utf8), at: random.below(out.count + 1))
            return out
        case 9:   // deep nesting: flow or block, near and past libyaml's limit of 1000
            let depth = [10, 100, 999, 1001, 5000][random.below(5)]
            switch random.below(3) {
            case 0: lines.insert(Array(("deep: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8), at: line)
            case 1: lines.insert(Array(("deep: " + String(repeating: "{a: ", count: depth) + "1" + String(repeating: "}", count: depth)).utf8), at: line)
            default:
                let block = (0..<min(depth, 1200)).map { String(repeating: " ", count: $0) + "a:" }.joined(separator: "\n")
                lines.insert(Array(block.utf8), at: line)
            }
        case 10: return (0..<random.below(4096)).map { _ in random.byte() }   // garbage
        case 11: return Array(["", "\n\n", "   ", "# only a comment\n", "---\n...\n", "~", "[]", "- a\n- b\n"][random.below(8)].utf8)
        default:   // a whole section doubled (duplicate keys)
            let end = min(lines.count, line + 1 + random.below(10))
            lines.insert(contentsOf: lines[line..<end], at: end)
        }
        return joined()
    }
}

/// Damages image bytes: flipped bytes (anywhere, or in the headers), truncation, zeroed or
/// garbage runs, duplicated or dropped chunks.
enum ImageMutator {
    static func mutate(_ original: Data, _ random: inout SeededRandom) -> Data {
        var bytes = [UInt8](original)
        switch random.below(7) {
        case 0:
            for _ in 0...random.below(40) { bytes[random.below(bytes.count)] ^= UInt8(1 + random.below(255)) }
        case 1:
            for _ in 0...random.below(6) { bytes[random.below(min(bytes.count, 700))] = random.byte() }
        case 2: bytes = Array(bytes.prefix(random.below(bytes.count)))
        case 3:
            let start = random.below(bytes.count), length = min(bytes.count - start, 1 + random.below(5000))
            bytes.replaceSubrange(start..<start + length, with: Array(repeating: 0, count: length))
        case 4:
            let start = random.below(bytes.count)
            bytes.insert(contentsOf: (0..<1 + random.below(3000)).map { _ in random.byte() }, at: start)
        case 5:
            let start = random.below(bytes.count), length = min(bytes.count - start, 1 + random.below(8000))
            if random.below(2) == 0 { bytes.removeSubrange(start..<start + length) }
            else { bytes.insert(contentsOf: bytes[start..<start + length], at: start) }
        default:
            bytes = (0..<random.below(2000)).map { _ in random.byte() }
            if bytes.count > 4, random.below(2) == 0 { bytes.replaceSubrange(0..<3, with: [0xFF, 0xD8, 0xFF]) }
        }
        return Data(bytes)
    }
}

/// Runs a command; its exit status, or the signal that ended it.
func runProcessReportingSignal(_ executable: String, _ arguments: [String], currentDirectory: String)
    throws -> (status: Int32, signal: Int32?, stderr: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
    let err = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = err
    try process.run()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let signalled = process.terminationReason == .uncaughtSignal
    return (signalled ? -1 : process.terminationStatus, signalled ? process.terminationStatus : nil,
            String(decoding: stderr, as: UTF8.self))
}
