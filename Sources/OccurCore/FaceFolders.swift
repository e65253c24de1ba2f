import Foundation
import GRDB

/// Enrolment from a folder per person (`face_db/<name>/*.jpg`, as the original system did),
/// and re-embedding the gallery after a backend change.
extension StillImageFaces {
    public struct FolderReport: Sendable {
        public var name: String
        public var outcomes: [EnrollOutcome]
        /// Images already enrolled for this model, left alone.
        public var alreadyEnrolled: Int
        /// A folder whose name cannot be a person's name.
        public var problem: String?
    }

    /// Enrols every image under `root/<name>/` that is not yet enrolled for the current
    /// model (by its path); safe to run on every start.
    public func enrollFolders(at root: String) throws -> [FolderReport] {
        let known = try recognizer.gallery.sources(model: recognizer.embedder.model)
        var reports: [FolderReport] = []
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        for name in names where !name.hasPrefix(".") {
            let folder = (root as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                continue
            }
            if let problem = validatePersonName(name) {
                reports.append(FolderReport(name: name, outcomes: [], alreadyEnrolled: 0, problem: problem))
                continue
            }
            let images = try FileManager.default.contentsOfDirectory(atPath: folder)
                .filter { SourceKind.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .sorted().map { (folder as NSString).appendingPathComponent($0) }
            let fresh = images.filter { !known.contains(.init(name: name, source: $0)) }
            reports.append(FolderReport(name: name, outcomes: try enroll(name: name, images: fresh),
                                        alreadyEnrolled: images.count - fresh.count))
        }
        return reports
    }

    /// Embeds, with the current model, every source image of every enrolled person that has
    /// no embedding of this model yet. Embeddings of other models stay (they are never mixed).
    public func rebuild() throws -> [EnrollOutcome] {
        let model = recognizer.embedder.model
        let done = try recognizer.gallery.sources(model: model)
        var outcomes: [EnrollOutcome] = []
        for entry in try recognizer.gallery.sources(model: nil, kind: .person) where !done.contains(entry) {
            outcomes += try enroll(name: entry.name, images: [entry.source])
        }
        return outcomes
    }
}

extension FaceGallery {
    public struct Source: Hashable, Sendable {
        public var name: String
        public var source: String
    }

    /// (name, source image) pairs with embeddings of `model` (any model when nil).
    public func sources(model: String?, kind: Kind? = nil) throws -> Set<Source> {
        try store.pool.read { db in
            var sql = """
                SELECT DISTINCT identities.name, embeddings.source FROM embeddings
                JOIN identities ON identities.id = embeddings.identity_id WHERE embeddings.source IS NOT NULL
                """
            var arguments: StatementArguments = []
            if let model {
                sql += " AND embeddings.model = ?"
                _ = arguments.append(contentsOf: [model])
            }
            if let kind {
                sql += " AND identities.kind = ?"
                _ = arguments.append(contentsOf: [kind.rawValue])
            }
            return Set(try Row.fetchAll(db, sql: sql, arguments: arguments).map { Source(name: $0["name"], source: $0["source"]) })
        }
    }
}
