import Crypto
import Foundation
import GRDB

/// `occur keys rotate`: a new data key, and every sealed embedding and image re-sealed under
/// it (plain ones from before encryption was on are sealed too). Crash-safe: the key file holds
/// the new key first and the old ones after it until everything is re-sealed, so every blob
/// opens at every moment; running it again after a crash finishes the job. Needs the data
/// directory to itself (DataDirectoryLock): stop `occur run` first.
public enum KeyRotation {
    public struct Report: Sendable, Equatable {
        public var embeddings = 0
        public var images = 0
        public var newKeyID: UInt32 = 0
        public var retiredKeyIDs: [UInt32] = []
    }

    public static func rotate(store: EventStore, progress: (String) -> Void = { _ in }) throws -> Report {
        let dataDir = store.dataDir
        guard case .file(let keyPath) = store.protection.source else {
            throw ProtectionError(store.protection.source == .environment
                ? "the data key comes from \(DataProtection.environmentVariable): rotation rewrites the key file only; "
                    + "unset it and put the key in \(dataDir)/\(DataProtection.keyFileName) (mode 0600) to rotate"
                : "encryption is off (storage.encryption: false) and there is no data key to rotate")
        }
        let lock = try DataDirectoryLock(dataDir: dataDir, purpose: "occur keys rotate")
        defer { withExtendedLifetime(lock) {} }

        let old = try DataProtection.readKeyFile(keyPath)
        let key = SymmetricKey(size: .bits256)
        try DataProtection.writeKeyFile(keyPath, keys: [key] + old)   // 1: new key first, old ones still open
        let ring = DataProtection(keys: [key] + old, source: .file(keyPath), seal: true)
        var report = Report(newKeyID: DataProtection.id(of: key), retiredKeyIDs: old.map(DataProtection.id(of:)))

        // 2: embeddings, in one transaction.
        report.embeddings = try store.pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, vector FROM embeddings")
            let update = try db.makeStatement(sql: "UPDATE embeddings SET vector = ? WHERE id = ?")
            for row in rows {
                let id: Int64 = row["id"]
                try update.execute(arguments: [ring.seal(ring.open(row["vector"], .embedding), .embedding), id])
            }
            return rows.count
        }
        progress("re-sealed \(report.embeddings) embeddings")

        // 3: images under snapshots/, one file at a time (write new, then rename over / remove the old).
        let files = snapshotImages(in: dataDir)
        for (url, sealed) in files {
            let data = try ring.seal(ring.open(Data(contentsOf: url), .image), .image)
            if sealed {
                try PrivateFiles.write(data, to: url.path, describing: "the snapshot")
            } else {   // a plain crop from before encryption: sealed beside it, the event pointed there, then removed
                let target = url.path + DataProtection.sealedExtension
                try PrivateFiles.write(data, to: target, describing: "the snapshot")
                let relative = String(url.path.dropFirst(dataDir.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                try store.pool.write { db in
                    for column in ["snapshot_face", "snapshot_frame"] {
                        try db.execute(sql: "UPDATE events SET \(column) = ? WHERE \(column) = ?",
                                       arguments: [relative + DataProtection.sealedExtension, relative])
                    }
                }
                try FileManager.default.removeItem(at: url)
            }
            report.images += 1
            if report.images % 500 == 0 { progress("re-sealed \(report.images) of \(files.count) images") }
        }
        progress("re-sealed \(report.images) images")

        try DataProtection.writeKeyFile(keyPath, keys: [key])   // 4: old keys gone
        return report
    }

    /// The image files under `<data dir>/snapshots`, sealed (`*.sealed`) or plain (`*.jpg`, from
    /// before encryption was on), in path order.
    static func snapshotImages(in dataDir: String) -> [(url: URL, sealed: Bool)] {
        let root = URL(fileURLWithPath: dataDir).appendingPathComponent("snapshots")
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])?
            .compactMap { $0 as? URL }.filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true } ?? []
        return files.sorted { $0.path < $1.path }.compactMap { url in
            let sealed = url.path.hasSuffix(DataProtection.sealedExtension)
            return sealed || url.pathExtension.lowercased() == "jpg" ? (url, sealed) : nil
        }
    }
}

/// How much biometric data is sealed and how much is plain (from before encryption was on).
public struct ProtectionCensus: Sendable, Equatable {
    public var sealedEmbeddings = 0, plainEmbeddings = 0, sealedImages = 0, plainImages = 0

    public static func take(store: EventStore) throws -> ProtectionCensus {
        var census = ProtectionCensus()
        try store.pool.read { db in
            for vector in try Data.fetchAll(db, sql: "SELECT vector FROM embeddings") {
                if DataProtection.isSealed(vector) { census.sealedEmbeddings += 1 } else { census.plainEmbeddings += 1 }
            }
        }
        for image in KeyRotation.snapshotImages(in: store.dataDir) {
            if image.sealed { census.sealedImages += 1 } else { census.plainImages += 1 }
        }
        return census
    }
}
