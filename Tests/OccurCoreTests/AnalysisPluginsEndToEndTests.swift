import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// `occur run` with the four analysis plugins enabled: their results land in SQLite, `occur events
/// --plugin` prints them, and disabling one stops only its results.
@Suite(.serialized) struct AnalysisPluginsEndToEndTests {
    /// A clip of messi5.jpg (opencv-doc) gliding across a grey background: a real person whose
    /// face YuNet finds, moving, so every plugin has work.
    static func makeClip(in dir: String) throws -> String {
        let photo = try Frame.read(contentsOf: Fixtures.openCVData + "/messi5.jpg")
        let background = Frame.filled(width: 900, height: 420, blue: 128, green: 128, red: 128)
        let path = dir + "/messi.avi"
        do {
            let writer = try VideoWriter(path: path, fps: 10, width: 900, height: 420)
            for step in 0..<30 {
                writer.write(background.pasting(photo, region: Box(x: 0, y: 0, width: 548, height: 342),
                                                atX: step * 10, y: 40))
            }
        }
        return path
    }

    func run(dir: String, enabled: [String]) throws -> [StoredEvent] {
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        for name in ["Mask", "Pose", "Clothes", "Movement"] where !FileManager.default.fileExists(atPath: "\(dir)/plugins/lib\(name).so") {
            try FileManager.default.copyItem(atPath: Fixtures.plugin(name), toPath: "\(dir)/plugins/lib\(name).so")
        }
        try """
            data_dir: ./data
            log_level: warning
            detection: { score_threshold: 0.5, min_face_size: 20 }
            cameras:
              pitch: { source: ./messi.avi }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let on = { (id: String) in enabled.contains(id) ? "true" : "false" }
        try """
            plugins_dir: ./plugins
            plugins:
              mask:
                enabled: \(on("mask"))
                library: libMask.so
                cooldown: 1.0
                events: [face_appeared, face_recognized, face_unknown, face_left]
                queue: { capacity: 64, overflow: block }
              pose:
                enabled: \(on("pose"))
                library: libPose.so
                cooldown: 1.0
                events: [face_appeared, face_recognized, face_unknown]
                queue: { capacity: 64, overflow: block }
              clothes:
                enabled: \(on("clothes"))
                library: libClothes.so
                events: [plugin_result]
                queue: { capacity: 64, overflow: block }
              movement:
                enabled: \(on("movement"))
                library: libMovement.so
                events: [frame, face_appeared, face_left]
                queue: { capacity: 64, overflow: block }
                config: { motion_threshold: 0.002 }
            """.write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: dir + "/data")
        let result = try runProcess(Fixtures.occurExecutable, ["run", "--quiet"], currentDirectory: dir)
        #expect(result.status == 0, "\(result.stderr)")
        var query = EventStore.Query()
        query.limit = 10_000
        return try EventStore(path: dir + "/data/occur.db", readOnly: true).events(query)
    }

    @Test func resultsOfEveryEnabledPluginAreLoggedAndDisablingOneStopsOnlyIt() throws {
        let dir = Fixtures.temporaryDirectory("analysis")
        _ = try Self.makeClip(in: dir)
        let all = try run(dir: dir, enabled: ["mask", "pose", "clothes", "movement"])
        let byPlugin = Dictionary(grouping: all.filter { $0.plugin != nil }, by: { $0.plugin! })
        #expect(byPlugin["mask"]?.contains { $0.kind == "mask" } == true)
        #expect(byPlugin["pose"]?.contains { $0.kind == "pose" && $0.payload.contains("\"keypoints\"") } == true)
        #expect(byPlugin["movement"]?.contains { $0.kind == "motion_started" } == true)
        // Clothes works on Pose's results: one clothes result per pose result.
        let clothes = byPlugin["clothes"] ?? []
        #expect(!clothes.isEmpty && clothes.count == byPlugin["pose"]?.count)
        #expect(clothes.allSatisfy { $0.kind == "clothes" && $0.payload.contains("\"upper\"") })

        let printed = try runProcess(Fixtures.occurExecutable, ["events", "--plugin", "pose"], currentDirectory: dir)
        #expect(printed.status == 0)
        let lines = printed.stdout.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("  pose  ") && $0.contains("plugin=pose") })

        // Pose off: no pose results (nor clothes, which is built on them); the face events and
        // the other plugins' results stay the same.
        let withoutPose = try run(dir: dir, enabled: ["mask", "clothes", "movement"])
        #expect(!withoutPose.contains { $0.plugin == "pose" || $0.plugin == "clothes" })
        let count = { (events: [StoredEvent], test: (StoredEvent) -> Bool) in events.filter(test).count }
        for kind in ["face_appeared", "face_left", "face_unknown"] {
            #expect(count(withoutPose) { $0.kind == kind } == count(all) { $0.kind == kind }, "\(kind)")
        }
        #expect(count(withoutPose) { $0.plugin == "mask" } == count(all) { $0.plugin == "mask" })
        #expect(count(withoutPose) { $0.plugin == "movement" } == count(all) { $0.plugin == "movement" })
    }
}
