import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// face_db/<name>/*.jpg enrolment, as the original system did it.
@Suite struct FaceFoldersTests {
    /// face_db/obama (two photos), face_db/biden (one), and a folder with a bad name.
    func makeFaceDB() throws -> String {
        let root = Fixtures.temporaryDirectory("facedb") + "/face_db"
        for (name, images) in [("obama", ["obama.jpg", "obama3.jpg"]), ("biden", ["biden.jpg"]), ("unknown-7", ["obama2.jpg"])] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for image in images {
                try FileManager.default.copyItem(atPath: Fixtures.faceImage(image), toPath: "\(root)/\(name)/\(image)")
            }
        }
        try Data("notes".utf8).write(to: URL(fileURLWithPath: root + "/obama/readme.txt"))
        return root
    }

    @Test func enrolsEachFolderOnceAndSkipsReservedNames() throws {
        let root = try makeFaceDB()
        let gallery = try FaceGallery(store: EventStore(path: (root as NSString).deletingLastPathComponent + "/occur.db"))
        let faces = try StillImageFaces(configuration: HostConfiguration(), gallery: gallery, logger: Fixtures.logger)
        let first = try faces.enrollFolders(at: root)
        #expect(first.map(\.name) == ["biden", "obama", "unknown-7"])
        #expect(first[0].outcomes.filter(\.enrolled).count == 1)
        #expect(first[1].outcomes.filter(\.enrolled).count == 2)
        #expect(first[2].problem != nil)
        // A second pass finds everything enrolled already.
        let second = try faces.enrollFolders(at: root)
        #expect(second[1].outcomes.isEmpty && second[1].alreadyEnrolled == 2)
        #expect(gallery.count(model: faces.recognizer.embedder.model) == 3)
        let obama2 = try faces.recognize(imageAt: Fixtures.faceImage("obama2.jpg"))
        #expect(obama2.first?.recognition?.identity == "obama")
    }

    @Test func runEnrolsTheFaceDBBeforeCamerasStart() throws {
        let root = try makeFaceDB()
        let dir = (root as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir + "/stills", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.faceImage("obama2.jpg"), toPath: dir + "/stills/obama2.jpg")
        try """
            data_dir: ./data
            log_level: warning
            cameras: { door: { source: ./stills } }
            recognition: { face_db: ./face_db }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        try "plugins: {}\n".write(toFile: dir + "/plugins.yaml", atomically: true, encoding: .utf8)
        let run = try runProcess(Fixtures.occurExecutable, ["run"], currentDirectory: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("face_db/unknown-7 skipped"))
        #expect(run.stdout.contains("face_recognized  track=1") && run.stdout.contains("identity=obama"))
    }

    @Test func rebuildEmbedsTheGalleryWithANewBackendWithoutMixingModels() throws {
        let path = Fixtures.temporaryDirectory("rebuild") + "/occur.db"
        let gallery = try FaceGallery(store: EventStore(path: path))
        let sface = try StillImageFaces(configuration: HostConfiguration(), gallery: gallery, logger: Fixtures.logger)
        _ = try sface.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg"), Fixtures.faceImage("obama3.jpg")])
        var host = HostConfiguration()
        host.recognition.backend = "dlib"
        let dlib = try StillImageFaces(configuration: host, gallery: gallery, logger: Fixtures.logger)
        #expect(try dlib.recognize(imageAt: Fixtures.faceImage("obama2.jpg")).first?.recognition?.identity == nil)
        let outcomes = try dlib.rebuild()
        #expect(outcomes.count == 2 && outcomes.allSatisfy(\.enrolled))
        #expect(try dlib.rebuild().isEmpty)  // nothing left to do
        #expect(gallery.count(model: "sface-2021dec") == 2 && gallery.count(model: "dlib-resnet-v1") == 2)
        #expect(try dlib.recognize(imageAt: Fixtures.faceImage("obama2.jpg")).first?.recognition?.identity == "obama")
        #expect(try gallery.identities() == [FaceGallery.Identity(name: "obama", kind: .person,
                                                                  embeddings: ["sface-2021dec": 2, "dlib-resnet-v1": 2])])
    }
}
