import Foundation
import GRDB
import Testing
import OccurTestSupport
@testable import OccurCore

/// Strangers become stable unknown-N identities, can be named, leave snapshots, and are
/// erased completely — through the `occur` CLI on the face_recognition photos.
@Suite(.serialized) struct UnknownFacesTests {
    struct Site {
        let dir = Fixtures.temporaryDirectory("unknown")
        var stills: String { dir + "/stills" }

        init(images: [String], recognition: String = "", unknownCooldown: Double = 0) throws {
            try FileManager.default.createDirectory(atPath: stills, withIntermediateDirectories: true)
            for image in images {
                try FileManager.default.copyItem(atPath: Fixtures.faceImage(image), toPath: "\(stills)/\(image)")
            }
            try """
                data_dir: ./data
                log_level: warning
                cameras:
                  door: { source: ./stills }
                recognition:
                  unknown_cooldown: \(unknownCooldown)
                \(recognition)
                """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
            try "plugins: {}\n".write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        }

        func occur(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let result = try runProcess(Fixtures.occurExecutable, arguments, currentDirectory: dir)
            #expect(result.status == 0, "occur \(arguments.joined(separator: " ")): \(result.stderr)")
            return result
        }

        func events(_ kind: String) throws -> [StoredEvent] {
            var query = EventStore.Query()
            query.kinds = [kind]
            query.limit = 1000
            return try EventStore(path: dir + "/data/occur.db", readOnly: true).events(query)
        }

        func replaceStills(with images: [String]) throws {
            try FileManager.default.removeItem(atPath: stills)
            try FileManager.default.createDirectory(atPath: stills, withIntermediateDirectories: true)
            for image in images {
                try FileManager.default.copyItem(atPath: Fixtures.faceImage(image), toPath: "\(stills)/\(image)")
            }
        }

        /// Every file under the data directory.
        func dataFiles() -> [String] {
            (FileManager.default.enumerator(atPath: dir + "/data")?.allObjects as? [String] ?? [])
                .filter { !$0.hasSuffix(".db") && !$0.contains(".db-") && !["data.key", "run.lock", "admin.token"].contains($0) }
                .filter { var d: ObjCBool = false; FileManager.default.fileExists(atPath: "\(dir)/data/\($0)", isDirectory: &d); return !d.boolValue }
        }
    }

    /// unknown_cooldown spares snapshots, never the answer: the stranger's second track (within
    /// the cooldown) still gets face_unknown, marked as a repeat and without a snapshot.
    @Test func aStrangerSeenAgainWithinTheCooldownIsAnsweredAsARepeat() throws {
        let site = try Site(images: ["obama2.jpg", "obama3.jpg"], unknownCooldown: 3600)
        _ = try site.occur(["run"])
        let unknown = try site.events("face_unknown").sorted { $0.id < $1.id }
        #expect(unknown.count == 2, "\(unknown.map(\.payload))")
        #expect(unknown.allSatisfy { $0.identity == "unknown-1" })
        #expect(unknown.first.map { !$0.payload.contains("repeat") && $0.snapshotFace != nil } == true)
        #expect(unknown.last.map { $0.payload.contains("\"repeat\":true") && $0.snapshotFace == nil } == true)
        #expect(try site.events("face_appeared").count == 2)
    }

    @Test func theSameStrangerTwiceIsOneUnknownThatCanBeNamed() throws {
        let site = try Site(images: ["obama2.jpg", "obama3.jpg"])
        _ = try site.occur(["run"])
        let unknown = try site.events("face_unknown")
        #expect(unknown.count == 2)
        #expect(unknown.allSatisfy { $0.identity == "unknown-1" })
        #expect(unknown.allSatisfy { $0.payload.contains("\"unknown_id\":\"unknown-1\"") })
        let list = try site.occur(["faces", "list"]).stdout
        #expect(list.contains("unknown-1  2 sface-2021dec  (unknown"))
        #expect(!list.contains("unknown-2"))

        // Naming the stranger enrols them: the next appearance is recognised by name.
        #expect(try site.occur(["faces", "name", "unknown-1", "barack"]).stdout.contains("unknown-1 is now barack"))
        #expect(try site.occur(["faces", "list"]).stdout.contains("barack  2 sface-2021dec"))
        #expect(try site.events("face_unknown").allSatisfy { $0.identity == "barack" })
        try site.replaceStills(with: ["obama.jpg", "biden.jpg"])
        _ = try site.occur(["run"])
        let recognized = try site.events("face_recognized")
        #expect(recognized.count == 1 && recognized.first?.identity == "barack")
        // Biden is a new stranger; numbers are not reused after unknown-1 was named.
        #expect(try site.events("face_unknown").contains { $0.identity == "unknown-2" })
    }

    @Test func snapshotsAreSavedWithCooldownAndErasedWithThePerson() throws {
        let site = try Site(images: ["obama2.jpg", "obama3.jpg", "obama_partial_face2.jpg"],
                            recognition: "  snapshot_cooldown: 3600")
        _ = try site.occur(["faces", "enroll", "obama", Fixtures.faceImage("obama.jpg")])
        _ = try site.occur(["run"])
        let recognized = try site.events("face_recognized")
        #expect(recognized.count == 3)
        // One snapshot pair per camera and identity per cooldown: the first appearance only.
        let withSnapshots = recognized.filter { $0.snapshotFace != nil }
        #expect(withSnapshots.count == 1)
        let event = try #require(withSnapshots.first)
        // Sealed on disk (encryption is on by default); the data key opens them.
        let protection = try DataProtection.load(dataDir: site.dir + "/data", seal: false, environment: [:])
        let crop = try Frame.decode(protection.readImage(at: site.dir + "/data/" + event.snapshotFace!))
        let frame = try Frame.decode(protection.readImage(at: site.dir + "/data/" + event.snapshotFrame!))
        #expect(crop.width > 100 && crop.width < frame.width)
        #expect(site.dataFiles().count == 2)

        _ = try site.occur(["faces", "remove", "obama"])
        #expect(site.dataFiles().isEmpty)
        let rows = try DatabaseQueue(path: site.dir + "/data/occur.db").read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM embeddings")!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM identities")!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE identity = 'obama' OR snapshot_face IS NOT NULL")!)
        }
        #expect(rows == (0, 0, 0))
    }

    @Test func tooSmallFacesAreKeptOutOfMatching() throws {
        let site = try Site(images: [], recognition: "  quality: { min_face_size: 48 }")
        // obama.jpg shrunk so the face is about 30 pixels wide.
        let photo = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        try photo.resized(width: photo.width / 8, height: photo.height / 8).write(to: site.stills + "/small.png")
        try """
            data_dir: ./data
            log_level: warning
            detection: { min_face_size: 10 }
            cameras:
              door: { source: ./stills }
            recognition:
              quality: { min_face_size: 48 }
            """.write(toFile: site.dir + "/occur.yaml", atomically: true, encoding: .utf8)
        _ = try site.occur(["run"])
        #expect(try site.events("face_appeared").count == 1)
        #expect(try site.events("face_unknown").isEmpty)
        #expect(try site.occur(["faces", "list"]).stdout.contains("nobody enrolled"))
    }

    @Test func blurIsMeasured() throws {
        let photo = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        let face = try #require(try YuNetFaceDetector(configuration: DetectionConfiguration(),
                                                      modelPath: ModelFiles().require(.yunet)).detect(in: photo).first)
        // Shrinking to a twelfth and back blurs like a fast move or a far, out-of-focus face.
        let blurred = photo.resized(width: photo.width / 12, height: photo.height / 12)
            .resized(width: photo.width, height: photo.height)
        let sharp = photo.sharpness(in: face.box), soft = blurred.sharpness(in: face.box)
        #expect(sharp > RecognitionConfiguration().minSharpness)
        #expect(soft < RecognitionConfiguration().minSharpness)
        #expect(sharp > 5 * soft)
    }
}
