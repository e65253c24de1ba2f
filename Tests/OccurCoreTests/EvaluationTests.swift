import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// `occur eval` on public and shared real data: every mode through HostRuntime, the pipeline
/// `occur run` runs, with the shipped defaults (HostConfiguration(), plugins.yaml's mask entry).
@Suite(.serialized) struct EvaluationTests {
    /// The shipped detection and recognition settings; no cameras (the evaluation brings its own).
    func host() -> HostConfiguration {
        var host = HostConfiguration()
        host.logLevel = "warning"
        return host
    }

    /// The shipped plugins.yaml, with libMask.so taken from the build.
    func registry() throws -> PluginRegistry {
        var registry = try PluginRegistry.load(contentsOf: Fixtures.packageRoot + "/plugins.yaml")
        for i in registry.plugins.indices {
            if registry.plugins[i].id == "mask" { registry.plugins[i].library = Fixtures.plugin("Mask") }
            if registry.plugins[i].id == "sample" { registry.plugins[i].enabled = false }  // not built into plugins_dir here
        }
        return registry
    }

    /// Links the first `count` images of each masks-dev class into a new folder, plus a grey
    /// image without a face into with_mask/.
    func masksSubset(count: Int) throws -> String {
        let source = Fixtures.sharedData + "/masks-dev"
        let dir = Fixtures.temporaryDirectory("masks")
        for folder in ["with_mask", "without_mask"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true)
            let files = try SourceKind.imageFiles(inDirectory: source + "/" + folder)
            try #require(files.count >= count, "\(source)/\(folder): \(files.count) images")
            for file in files.prefix(count) {
                try FileManager.default.createSymbolicLink(atPath: dir + "/" + folder + "/" + (file as NSString).lastPathComponent,
                                                           withDestinationPath: file)
            }
        }
        try Frame.filled(width: 320, height: 240, blue: 128, green: 128, red: 128).write(to: dir + "/with_mask/zz-grey.png")
        return dir
    }

    @Test func maskEvaluationLabelsRealMaskedAndBareFacesAndCountsFacelessImages() async throws {
        let dir = try masksSubset(count: 20)
        let evaluation = try MaskEvaluation(directory: dir, host: host(), registry: try registry())
        #expect(evaluation.run.adjustments.contains { $0.contains("mask: disabled") && $0.contains("enabled for this evaluation") })
        let report = try await evaluation.evaluate(logger: Fixtures.logger)
        let with = try #require(report.classes.first { $0.folder == "with_mask" })
        let without = try #require(report.classes.first { $0.folder == "without_mask" })
        #expect(with.images == 21 && without.images == 20)
        for c in report.classes {
            #expect(c.right + c.wrongLabel + c.unsure + c.noFace + c.noResult == c.images, "\(c.folder)")
            #expect(c.evenImages + c.oddImages == c.images)
        }
        // The grey image has no face: wrong, and counted on its own line.
        #expect(with.misses["zz-grey.png"] == "no face")
        #expect(with.noFace >= 1)
        // Real photos: most of either class right (the first 20 masked ones include thumbnails whose
        // faces are under min_face_size; a detector that misses masked faces gets far fewer).
        #expect(with.right >= 15, "with_mask: \(with)")
        #expect(without.right >= 18, "without_mask: \(without)")
        #expect(abs(report.balancedAccuracy - (with.accuracy + without.accuracy) / 2) < 1e-9)
    }

    @Test func maskEvaluationRefusesAFolderWithoutItsClasses() throws {
        let dir = Fixtures.temporaryDirectory("masks-empty")
        try FileManager.default.createDirectory(atPath: dir + "/with_mask", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/without_mask", withIntermediateDirectories: true)
        try Frame.filled(width: 64, height: 64).write(to: dir + "/with_mask/a.png")
        #expect {
            try MaskEvaluation(directory: dir, host: host(), registry: try registry())
        } throws: { "\($0)".contains("\(dir)/without_mask: no images in it") }
        #expect {
            try MaskEvaluation(directory: dir + "/nowhere", host: host(), registry: try registry())
        } throws: { "\($0)".contains("no such directory") }
    }

    @Test func detectionEvaluationOnDlibsTestingXML() async throws {
        let evaluation = try DetectionEvaluation(file: Fixtures.dlibFaces + "/testing.xml", detectors: ["yunet+ssd", "ssd"],
                                                 host: host(), registry: try registry())
        #expect(evaluation.dataset.images.count == 5)
        #expect(evaluation.dataset.images.map(\.boxes.count).reduce(0, +) == 25)
        let report = try await evaluation.evaluate(logger: Fixtures.logger)
        #expect(report.detectors.map(\.detector) == ["yunet+ssd", "ssd"])
        for d in report.detectors {
            #expect(d.truths == 25)
            #expect(d.hits <= d.detections && d.hits + d.falseAlarms + d.ignoredDetections == d.detections)
        }
        // Measured: the shipped pair finds all 25 faces (10 are 37 px; at min_face_size 40 it found
        // 11) with no false alarm; SSD alone (score 0.8) 24.
        let merged = try #require(report.detectors.first), ssd = try #require(report.detectors.last)
        #expect(merged.hits >= 24 && merged.falseAlarms == 0, "\(merged)")
        #expect(ssd.hits >= 22 && ssd.hits <= merged.hits, "\(ssd)")
        #expect(report.secondScoreThreshold == 0.6)
    }

    @Test func detectionMatchIsOneToOneAndIgnoresIgnoredBoxes() {
        var match = DetectionMatch()
        let truth = [Box(x: 0, y: 0, width: 100, height: 100), Box(x: 300, y: 0, width: 50, height: 50)]
        let ignored = [Box(x: 0, y: 300, width: 80, height: 80)]
        let detected = [Box(x: 5, y: 5, width: 100, height: 100),    // hit
                        Box(x: 0, y: 0, width: 95, height: 95),      // the same face again: a false alarm
                        Box(x: 2, y: 302, width: 80, height: 80),    // on an ignored box
                        Box(x: 600, y: 600, width: 40, height: 40)]  // nothing there
        match.add(detected: detected, truth: truth, ignored: ignored)
        #expect(match.hits == 1 && match.ignoredDetections == 1 && match.falseAlarms == 2)
        #expect(match.recall == 0.5)
        #expect(abs(match.precision - 1.0 / 3) < 1e-9)
    }

    @Test func imglabXMLErrorsNameTheFile() throws {
        let dir = Fixtures.temporaryDirectory("xml")
        try "<dataset><images><image file='a.jpg'><box top='1' left='x' width='2' height='2'/></image></images></dataset>"
            .write(toFile: dir + "/bad.xml", atomically: true, encoding: .utf8)
        #expect { try ImglabDataset.load(contentsOf: dir + "/bad.xml") } throws: {
            "\($0)".contains("\(dir)/bad.xml") && "\($0)".contains("numeric left")
        }
        try "<dataset><images><image file='a.jpg'>".write(toFile: dir + "/cut.xml", atomically: true, encoding: .utf8)
        #expect { try ImglabDataset.load(contentsOf: dir + "/cut.xml") } throws: { "\($0)".contains("\(dir)/cut.xml") }
        #expect { try ImglabDataset.load(contentsOf: dir + "/none.xml") } throws: { "\($0)".contains("cannot read") }
        try "<dataset><images><image file='missing.jpg'/></images></dataset>".write(toFile: dir + "/m.xml", atomically: true, encoding: .utf8)
        #expect { try ImglabDataset.load(contentsOf: dir + "/m.xml") } throws: { "\($0)".contains("missing.jpg does not exist") }
    }

    @Test func expectedNamesComeFromFileNames() {
        #expect(RecognitionEvaluation.expectedName(fromFileName: "obama2.jpg") == "obama")
        #expect(RecognitionEvaluation.expectedName(fromFileName: "biden.jpg") == "biden")
        #expect(RecognitionEvaluation.expectedName(fromFileName: "John_Simm_07.jpg") == "John_Simm")
        #expect(RecognitionEvaluation.expectedName(fromFileName: "ann-3.png") == "ann")
        #expect(RecognitionEvaluation.expectedName(fromFileName: "2024.jpg") == "2024")
    }

    /// train/obama/obama.jpg; test: obama2, obama3 (obama), biden (a stranger).
    @Test func recognitionEvaluationOnTheSamplePhotos() async throws {
        let dir = Fixtures.temporaryDirectory("recognition")
        try FileManager.default.createDirectory(atPath: dir + "/train/obama", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/test", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/train/obama/obama.jpg", withDestinationPath: Fixtures.faceImage("obama.jpg"))
        for name in ["obama2.jpg", "obama3.jpg", "biden.jpg"] {
            try FileManager.default.createSymbolicLink(atPath: dir + "/test/" + name, withDestinationPath: Fixtures.faceImage(name))
        }
        try Frame.filled(width: 200, height: 200).write(to: dir + "/test/obama4.png")   // no face in it
        let report = try await RecognitionEvaluation(directory: dir, host: host(), registry: try registry())
            .evaluate(logger: Fixtures.logger)
        #expect(report.enrolled == ["obama": 1])
        let outcome = Dictionary(uniqueKeysWithValues: report.images.map { ($0.file, $0.outcome) })
        #expect(outcome == ["obama2.jpg": .right, "obama3.jpg": .right, "obama4.png": .missedFace, "biden.jpg": .right])
        #expect(report.people == 3 && report.strangers == 1)
        #expect(report.peopleOutcomes == ["right": 2, "missed_face": 1])
        #expect(report.strangerOutcomes == ["right": 1])
        #expect(report.images.first { $0.file == "biden.jpg" }?.answer?.hasPrefix("unknown-") == true)
    }

    /// A stranger enrolled under the wrong name is "named as someone": biden enrolled as obama.
    @Test func recognitionEvaluationListsStrangersNamedAsSomeone() async throws {
        let dir = Fixtures.temporaryDirectory("recognition-wrong")
        try FileManager.default.createDirectory(atPath: dir + "/train/obama", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/test", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/train/obama/b.jpg", withDestinationPath: Fixtures.faceImage("biden.jpg"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/test/x.jpg", withDestinationPath: Fixtures.faceImage("biden.jpg"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/test/y.jpg", withDestinationPath: Fixtures.faceImage("obama2.jpg"))
        try "x.jpg joe biden\ny.jpg obama\n".write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        let report = try await RecognitionEvaluation(directory: dir, labels: dir + "/labels.txt", host: host(),
                                                     registry: try registry()).evaluate(logger: Fixtures.logger)
        let x = try #require(report.images.first { $0.file == "x.jpg" })
        #expect(x.expected == "joe biden" && !x.enrolled && x.outcome == .strangerNamed && x.answer == "obama")
        #expect(report.images.first { $0.file == "y.jpg" }?.outcome == .unknown)
    }

    @Test func recognitionEvaluationNeedsATrainingFolderAndLabelsForEveryImage() throws {
        let dir = Fixtures.temporaryDirectory("recognition-bad")
        try FileManager.default.createDirectory(atPath: dir + "/test", withIntermediateDirectories: true)
        #expect { try RecognitionEvaluation(directory: dir, host: host(), registry: try registry()) } throws: {
            "\($0)".contains("\(dir)/train: no such directory")
        }
        try FileManager.default.createDirectory(atPath: dir + "/train/ann", withIntermediateDirectories: true)
        try Frame.filled(width: 64, height: 64).write(to: dir + "/test/a.png")
        try "b.png ann\n".write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        #expect {
            try RecognitionEvaluation(directory: dir, labels: dir + "/labels.txt", host: host(), registry: try registry())
        } throws: { "\($0)".contains("no label for a.png") }
    }

    /// obama2.jpg gliding across a grey background for 2 s, obama.jpg enrolled: one track, named.
    @Test func videoEvaluationTimesTheFirstAnswerOfEachTrack() async throws {
        let dir = Fixtures.temporaryDirectory("video")
        let photo = try Frame.read(contentsOf: Fixtures.faceImage("obama2.jpg"))
        let background = Frame.filled(width: 960, height: 720, blue: 128, green: 128, red: 128)
        do {
            let writer = try VideoWriter(path: dir + "/clip.avi", fps: 10, width: 960, height: 720)
            for step in 0..<20 {
                writer.write(background.pasting(photo, region: Box(x: 0, y: 0, width: Double(photo.width), height: Double(photo.height)),
                                                atX: step * 8, y: 20))
            }
        }
        let evaluation = try VideoEvaluation(video: dir + "/clip.avi", people: [("obama", Fixtures.faceImage("obama.jpg"))],
                                             host: host(), registry: try registry())
        let report = try await evaluation.evaluate(logger: Fixtures.logger)
        #expect(report.enrolled == ["obama": 1])
        #expect(abs(report.framesPerSecond - 10) < 0.01)
        let track = try #require(report.tracks.first)
        #expect(report.tracks.count == 1, "\(report.tracks)")
        #expect(track.answerKind == "face_recognized" && track.answer == "obama")
        #expect(track.width >= 150 && track.appearedAt == 0)
        #expect(track.secondsToAnswer == 0)   // recognised in the frame it appeared in
        #expect(report.named == ["obama"] && report.answers == ["face_recognized": 1])
        #expect((track.dwellSeconds ?? 0) > 1.5)
    }

    @Test func videoEvaluationRefusesWhatIsNotAVideo() throws {
        #expect {
            try VideoEvaluation(video: Fixtures.faceImage("obama.jpg"), people: [], host: host(), registry: try registry())
        } throws: { "\($0)".contains("not a video file") }
        #expect {
            try VideoEvaluation(video: "/nowhere.avi", people: [], host: host(), registry: try registry())
        } throws: { "\($0)".contains("/nowhere.avi: no such video file") }
        #expect {
            try VideoEvaluation(video: Fixtures.openCVData + "/vtest.avi", people: [("ann", "/nowhere.jpg")], host: host(),
                                registry: try registry())
        } throws: { "\($0)".contains("--person ann=/nowhere.jpg: no such image") }
    }
}
