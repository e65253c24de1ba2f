import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// The `occur` executable on real video and real photos, with real .so plugins.
@Suite(.serialized) struct EndToEndTests {
    /// A work directory with occur.yaml, plugins.yaml and a plugins dir holding the fixtures.
    struct Setup {
        let dir: String
        var config: String { dir + "/occur.yaml" }
        var plugins: String { dir + "/plugins.yaml" }
        var record: String { dir + "/record.txt" }
        var database: String { dir + "/data/occur.db" }

        init(cameras: String, plugins: String) throws {
            dir = Fixtures.temporaryDirectory("e2e")
            try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
            for name in ["FixtureOK", "Sample"] {
                try FileManager.default.copyItem(atPath: Fixtures.plugin(name), toPath: "\(dir)/plugins/lib\(name).so")
            }
            try ("data_dir: ./data\nlog_level: warning\ncameras:\n" + cameras)
                .write(toFile: config, atomically: true, encoding: .utf8)
            try ("plugins_dir: ./plugins\nplugins:\n" + plugins.replacingOccurrences(of: "RECORD", with: record))
                .write(toFile: self.plugins, atomically: true, encoding: .utf8)
        }

        func occur(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runProcess(Fixtures.occurExecutable, arguments, currentDirectory: dir)
        }
    }

    @Test func runOverARealVideoAndAnImageDirectoryLogsEventsAndFeedsPlugins() throws {
        let setup = try Setup(cameras: """
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
                every_n_frames: 3
              stills:
                source: \(Fixtures.facesDirectory)
            """, plugins: """
              fixture_ok:
                enabled: true
                library: libFixtureOK.so
                cooldown: 1.0
                cooldown_scope: track
                queue: { capacity: 1000, overflow: block }
                events: [face_appeared, face_left]
                config: { record: "RECORD" }
              sample:
                enabled: true
                library: libSample.so
                events: [face_appeared]
            """)
        let run = try setup.occur(["run"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("Summary"))

        // Face events from both cameras are in SQLite.
        let store = try EventStore(path: setup.database, readOnly: true)
        var query = EventStore.Query()
        query.limit = 10_000
        let stored = try store.events(query)
        let appeared = stored.filter { $0.kind == "face_appeared" }
        #expect(appeared.contains { $0.camera == "video" })
        #expect(appeared.filter { $0.camera == "stills" }.count >= 5)  // obama x3, biden, partial faces
        #expect(stored.filter { $0.kind == "face_left" }.count == appeared.count)
        // The sample plugin's results were stored, one per face that appeared.
        #expect(stored.filter { $0.kind == "face_seen" && $0.plugin == "sample" }.count == appeared.count)

        // `occur events` prints them back.
        let printed = try setup.occur(["events", "--kind", "face_appeared", "--limit", "10000"])
        #expect(printed.status == 0)
        #expect(printed.stdout.split(separator: "\n").count == appeared.count)
        #expect(printed.stdout.contains("  video  face_appeared  track="))
        let json = try setup.occur(["events", "--camera", "stills", "--kind", "face_seen", "--json", "--limit", "1"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["plugin"] as? String == "sample")
        #expect((object?["payload"] as? [String: Any])?["camera"] as? String == "stills")

        // The fixture plugin received face events with its cooldown honoured per track.
        let received = RecordedEvent.read(setup.record)
        #expect(!received.isEmpty)
        #expect(received.count < appeared.count * 2)  // some face_left fell within the cooldown
        for (_, events) in Dictionary(grouping: received, by: { "\($0.camera)#\($0.track)" }) {
            let times = events.map(\.timestampNanos)
            for (a, b) in zip(times, times.dropFirst()) { #expect(b - a >= 1_000_000_000) }
        }
        #expect(Set(received.map(\.camera)) == ["video", "stills"])
    }

    @Test func enrolThenRunNamesTheEnrolledPersonAndNotTheStranger() throws {
        let stills = Fixtures.temporaryDirectory("stills")
        for image in ["biden.jpg", "obama2.jpg", "obama3.jpg"] {  // sorted: biden is frame 0
            try FileManager.default.copyItem(atPath: Fixtures.faceImage(image), toPath: "\(stills)/\(image)")
        }
        let setup = try Setup(cameras: "  door: { source: \(stills) }\n", plugins: "")
        let enrol = try setup.occur(["faces", "enroll", "obama", Fixtures.faceImage("obama.jpg")])
        #expect(enrol.status == 0, "\(enrol.stderr)")
        #expect(enrol.stdout.contains("obama: 1 of 1 images enrolled"))
        #expect(try setup.occur(["faces", "list"]).stdout.contains("obama  1 sface-2021dec"))
        let run = try setup.occur(["run"])
        #expect(run.status == 0, "\(run.stderr)")
        var query = EventStore.Query()
        query.limit = 1000
        let events = try EventStore(path: setup.database, readOnly: true).events(query)
        let recognized = events.filter { $0.kind == "face_recognized" }
        let unknown = events.filter { $0.kind == "face_unknown" }
        #expect(recognized.count == 2 && recognized.allSatisfy { $0.identity == "obama" })
        #expect(Set(recognized.compactMap(\.frameIndex)) == [1, 2])
        #expect(unknown.count == 1 && unknown.first?.frameIndex == 0 && unknown.first?.identity == "unknown-1")
        #expect(!events.contains { $0.frameIndex == 0 && $0.identity == "obama" })
        #expect(run.stdout.contains("face_recognized  track="))
        let recognize = try setup.occur(["recognize", "\(stills)/biden.jpg", "\(stills)/obama3.jpg"])
        #expect(recognize.stdout.contains("unknown  (nearest distance="))
        #expect(recognize.stdout.contains("obama  distance=0."))
        #expect(try setup.occur(["faces", "remove", "obama"]).status == 0)
        #expect(try setup.occur(["faces", "list"]).stdout.contains("nobody enrolled"))
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aShutdownSignalDrainsFlushesAndExitsZero(signal: Int32) throws {
        let setup = try Setup(cameras: """
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
                loop: true
            """, plugins: """
              fixture_ok:
                enabled: true
                library: libFixtureOK.so
                events: [face_appeared]
                config: { record: "RECORD", sleep_ms: 20 }
            """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Fixtures.occurExecutable)
        process.arguments = ["run", "--quiet"]
        process.currentDirectoryURL = URL(fileURLWithPath: setup.dir)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait (bounded) until the plugin has received something, then ask the host to stop.
        for _ in 0..<600 where RecordedEvent.read(setup.record).isEmpty { usleep(100_000) }
        #expect(!RecordedEvent.read(setup.record).isEmpty)
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        // Everything the plugin received was logged first: the log holds at least as many.
        let store = try EventStore(path: setup.database, readOnly: true)
        var query = EventStore.Query()
        query.kinds = ["face_appeared"]
        query.limit = 100_000
        #expect(try store.events(query).count >= RecordedEvent.read(setup.record).count)
    }

    @Test func aBadConfigStopsEverythingWithFileLineAndKeyPath() throws {
        let setup = try Setup(cameras: "  video: { source: \(Fixtures.openCVData)/Megamind.avi }\n", plugins: """
              fixture_ok:
                enabled: true
                queue: { capacity: lots }
            """)
        for command in [["run"], ["check-config"]] {
            let result = try setup.occur(command)
            #expect(result.status == 2)
            #expect(result.stderr.contains("plugins.yaml:5:24: "))
            #expect(result.stderr.contains("plugins.fixture_ok.queue.capacity: expected a whole number, got 'lots'"))
        }
        #expect(!FileManager.default.fileExists(atPath: setup.database))
    }

    @Test func checkConfigNamesMissingModelsAndTheCommandThatPreparesThem() throws {
        let setup = try Setup(cameras: "", plugins: "")
        try "data_dir: ./data\nmodels_dir: ./no-models\nrecognition: { backend: sface }\n"
            .write(toFile: setup.config, atomically: true, encoding: .utf8)
        let result = try setup.occur(["check-config"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("problem: detection.detector yunet: model file"))
        #expect(result.stdout.contains("face_recognition_sface_2021dec.onnx is missing: run scripts/models"))
    }

    @Test func pluginsListsLoadedDisabledAndRefusedWithReasons() throws {
        let setup = try Setup(cameras: "", plugins: """
              fixture_ok: { enabled: true, library: libFixtureOK.so }
              sample: { enabled: false, library: libSample.so }
              wrong: { enabled: true, library: libFixtureOK.so }
              gone: { enabled: true, library: libGone.so }
            """)
        try FileManager.default.copyItem(atPath: Fixtures.plugin("FixtureWrongMajor"),
                                         toPath: setup.dir + "/plugins/libFixtureWrongMajor.so")
        let result = try setup.occur(["plugins"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("fixture_ok  libFixtureOK.so  loaded") })
        #expect(lines.contains { $0.hasPrefix("sample  libSample.so  disabled") })
        #expect(lines.contains { $0.hasPrefix("wrong  libFixtureOK.so  refused: ") && $0.contains("differs from its key 'wrong'") })
        #expect(lines.contains { $0.hasPrefix("gone  libGone.so  refused: ") && $0.contains("no such file") })
        #expect(lines.contains { $0.hasPrefix("-  libFixtureWrongMajor.so  disabled (not in plugins.yaml)") })
    }
}

/// A plugin written from the README and the header alone, compiled with cc outside the package.
@Suite struct ExternalPluginTests {
    @Test func theReadmeExampleCompilesLoadsAndReceivesEventsAtItsCooldown() throws {
        let readme = try String(contentsOfFile: Fixtures.packageRoot + "/README.md", encoding: .utf8)
        let source = try #require(readme.components(separatedBy: "```c\n/* hello.c */").dropFirst().first?
            .components(separatedBy: "```").first)
        let dir = Fixtures.temporaryDirectory("external")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try ("/* hello.c */" + source).write(toFile: dir + "/hello.c", atomically: true, encoding: .utf8)
        let cc = try runProcess("/usr/bin/cc", ["-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC",
                                                "-fvisibility=hidden", "-I", Fixtures.packageRoot + "/Sources/PluginAPI/include",
                                                "-o", dir + "/plugins/libhello.so", dir + "/hello.c"])
        #expect(cc.status == 0, "cc: \(cc.stderr)")
        try """
            data_dir: ./data
            log_level: warning
            cameras:
              video:
                source: \(Fixtures.openCVData)/Megamind.avi
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        try """
            plugins:
              hello:
                enabled: true
                library: libhello.so
                cooldown: 5
                cooldown_scope: camera
                events: [face_appeared]
            """.write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        let listed = try runProcess(Fixtures.occurExecutable, ["plugins"], currentDirectory: dir)
        #expect(listed.stdout.contains("hello  libhello.so  loaded"))
        let run = try runProcess(Fixtures.occurExecutable, ["run", "--quiet"], currentDirectory: dir)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let store = try EventStore(path: dir + "/data/occur.db", readOnly: true)
        var query = EventStore.Query()
        query.limit = 10_000
        let events = try store.events(query)
        let greetings = events.filter { $0.kind == "hello" }
        let appeared = events.filter { $0.kind == "face_appeared" }
        // The clip lasts 11.3 s: a 5 s camera-wide cooldown lets 2 or 3 greetings through.
        #expect((2...3).contains(greetings.count))
        #expect(appeared.count > greetings.count)
        #expect(greetings.allSatisfy { $0.plugin == "hello" && $0.camera == "video" && $0.trackID != nil })
        #expect(greetings.first?.payload.contains("\"frame_width\": 720") == true)
    }
}
