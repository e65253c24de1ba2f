import Foundation
import GRDB
import Testing
import OccurTestSupport
@testable import OccurCore

/// Encryption at rest on real data: Obama's embedding and a real face crop are sealed on disk,
/// open only with the data key, and stay readable across `occur keys rotate`.
@Suite struct DataProtectionTests {
    /// A data dir with Obama enrolled (YuNet + SFace) and one snapshot of his face written.
    func enrolledDataDir(_ label: String, encryption: Bool = true) throws -> (dir: String, snapshot: String) {
        let dir = Fixtures.temporaryDirectory(label)
        let store = try EventStore(path: dir + "/occur.db", encryption: encryption)
        let gallery = try FaceGallery(store: store)
        let faces = try StillImageFaces(configuration: HostConfiguration(), gallery: gallery, logger: Fixtures.logger)
        #expect(try faces.enroll(name: "obama", images: [Fixtures.faceImage("obama.jpg")]).allSatisfy(\.enrolled))
        let snapshots = SnapshotStore(dataDir: dir, cooldown: 0, protection: store.protection, logger: Fixtures.logger)
        snapshots.start()
        let frame = try Frame.read(contentsOf: Fixtures.faceImage("obama.jpg"))
        let face = try #require(faces.detector.detect(in: frame).first)
        let paths = try #require(snapshots.request(frame: frame, face: face, label: "obama", camera: "cam", sequence: 1,
                                                   timestampNanos: 0, wallTime: Date()))
        snapshots.stopAndDrain()
        return (dir, paths.face)
    }

    func rawEmbeddings(_ dir: String) throws -> [Data] {
        try DatabaseQueue(path: dir + "/occur.db").read { try Data.fetchAll($0, sql: "SELECT vector FROM embeddings") }
    }

    func obamaIsRecognised(in dir: String, environment: [String: String] = [:]) throws -> Bool {
        let store = try EventStore(path: dir + "/occur.db")
        let faces = try StillImageFaces(configuration: HostConfiguration(), gallery: FaceGallery(store: store), logger: Fixtures.logger)
        return try faces.recognize(imageAt: Fixtures.faceImage("obama2.jpg")).first?.recognition?.identity == "obama"
    }

    @Test func embeddingsAndCropsAreSealedOnDiskAndOpenWithTheKey() throws {
        let (dir, snapshot) = try enrolledDataDir("sealed")
        // The key file: 0600, one key.
        var info = stat()
        #expect(stat(dir + "/data.key", &info) == 0 && info.st_mode & 0o777 == 0o600)

        // The embedding is not 128 floats any more: magic, key id, nonce, 512 bytes of ciphertext, tag.
        let blobs = try rawEmbeddings(dir)
        #expect(blobs.count == 1)
        for blob in blobs {
            #expect(DataProtection.isSealed(blob))
            #expect(blob.count == 4 + 4 + 12 + 128 * 4 + 16)
            #expect(blob.count % 4 != 0 || blob.prefix(4) == Data("OCE1".utf8))
        }
        // The crop is not an image without the key; with it, it is his face.
        #expect(snapshot.hasSuffix("-face.jpg.sealed"))
        let sealed = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + snapshot))
        #expect(throws: VisionError.self) { try Frame.decode(sealed) }
        #expect(!sealed.starts(with: [0xFF, 0xD8]))   // no JPEG start-of-image marker
        let store = try EventStore(path: dir + "/occur.db")
        let crop = try Frame.decode(store.protection.readImage(at: dir + "/" + snapshot))
        #expect(crop.width > 100 && crop.height > 100)
        // And the embedding opens: Obama is recognised in another photo.
        #expect(try obamaIsRecognised(in: dir))
    }

    @Test func anotherKeyOpensNothing() throws {
        let (dir, snapshot) = try enrolledDataDir("wrong-key")
        let otherKey = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let wrong = try DataProtection.load(dataDir: dir, seal: true, environment: [DataProtection.environmentVariable: otherKey])
        #expect(wrong.source == .environment)
        for blob in try rawEmbeddings(dir) {
            #expect(throws: ProtectionError.self) { try wrong.open(blob, .embedding) }
        }
        #expect(throws: ProtectionError.self) { try wrong.readImage(at: dir + "/" + snapshot) }
        // A sealed image does not pass as an embedding, even with the right key.
        let right = try DataProtection.load(dataDir: dir, seal: true, environment: [:])
        let image = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + snapshot))
        #expect(throws: ProtectionError.self) { try right.open(image, .embedding) }
        // Without the key file, the gallery refuses to start rather than guess.
        try FileManager.default.removeItem(atPath: dir + "/data.key")
        let error = #expect(throws: ProtectionError.self) { try FaceGallery(store: EventStore(path: dir + "/occur.db", encryption: false)) }
        #expect(error?.message.contains("cannot be read") == true)
    }

    @Test func rotationReSealsEverythingUnderANewKey() throws {
        let (dir, snapshot) = try enrolledDataDir("rotate")
        let oldKeys = try DataProtection.readKeyFile(dir + "/data.key")
        let before = oldKeys.map(DataProtection.id(of:))
        let oldBlob = try #require(rawEmbeddings(dir).first)
        let report = try KeyRotation.rotate(store: EventStore(path: dir + "/occur.db"))
        #expect(report.embeddings == 1 && report.images == 2)   // crop and annotated frame
        #expect(report.retiredKeyIDs == before)
        let after = try DataProtection.readKeyFile(dir + "/data.key").map(DataProtection.id(of:))
        #expect(after == [report.newKeyID] && !before.contains(report.newKeyID))
        // Every blob and file is now under the new key, and still opens.
        let blob = try #require(rawEmbeddings(dir).first)
        #expect(DataProtection.keyID(of: blob) == report.newKeyID && blob != oldBlob)
        let image = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + snapshot))
        #expect(DataProtection.keyID(of: image) == report.newKeyID)
        #expect(try obamaIsRecognised(in: dir))
        let store = try EventStore(path: dir + "/occur.db")
        #expect(try Frame.decode(store.protection.readImage(at: dir + "/" + snapshot)).width > 100)
        // The old key no longer opens the new blobs.
        #expect(throws: ProtectionError.self) {
            try DataProtection(keys: oldKeys, source: .none, seal: false).open(blob, .embedding)
        }
    }

    @Test func rotationSealsDataWrittenBeforeEncryptionWasOn() throws {
        let (dir, snapshot) = try enrolledDataDir("plain", encryption: false)
        #expect(!FileManager.default.fileExists(atPath: dir + "/data.key"))
        #expect(try rawEmbeddings(dir).allSatisfy { !DataProtection.isSealed($0) && $0.count == 128 * 4 })
        #expect(snapshot.hasSuffix("-face.jpg"))
        #expect(try Frame.decode(Data(contentsOf: URL(fileURLWithPath: dir + "/" + snapshot))).width > 100)
        // Turning encryption on: plain data stays readable, and rotation seals it.
        let store = try EventStore(path: dir + "/occur.db")
        #expect(try ProtectionCensus.take(store: store) == ProtectionCensus(plainEmbeddings: 1, plainImages: 2))
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO events (time_ms, camera, kind, identity, snapshot_face) VALUES (0, 'cam', 'face_recognized', 'obama', ?)",
                           arguments: [snapshot])
        }
        let report = try KeyRotation.rotate(store: store)
        #expect(report.embeddings == 1 && report.images == 2)
        #expect(try ProtectionCensus.take(store: store) == ProtectionCensus(sealedEmbeddings: 1, sealedImages: 2))
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + snapshot))
        let moved = try store.pool.read { try String.fetchOne($0, sql: "SELECT snapshot_face FROM events") }
        #expect(moved == snapshot + ".sealed")
        #expect(try obamaIsRecognised(in: dir))
    }

    @Test func aKeyFileOthersCanReadIsRefused() throws {
        let (dir, _) = try enrolledDataDir("mode")
        chmod(dir + "/data.key", 0o644)
        let error = #expect(throws: ProtectionError.self) { try EventStore(path: dir + "/occur.db") }
        #expect(error?.message.contains("chmod 600") == true)
    }

    @Test func rotationWaitsForARunningHost() throws {
        let (dir, _) = try enrolledDataDir("locked")
        let running = try DataDirectoryLock(dataDir: dir, purpose: "occur run")
        let error = #expect(throws: ProtectionError.self) { try KeyRotation.rotate(store: EventStore(path: dir + "/occur.db")) }
        #expect(error?.message.contains("in use") == true)
        withExtendedLifetime(running) {}
    }
}
