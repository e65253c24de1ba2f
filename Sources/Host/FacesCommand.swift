import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    struct Faces: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the gallery of enrolled people.",
            subcommands: [Enroll.self, EnrollDir.self, List.self, Remove.self, Name.self, Rebuild.self])
    }

    struct Recognize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every face in each image with its identity and distance, or unknown.")

        @OptionGroup var options: HostOptions
        @Argument(help: "Image files.") var images: [String]

        func run() throws {
            let (host, store) = try options.openStore()
            let faces = try options.stillImageFaces(host: host, store: store)
            for path in images {
                let results: [(face: Face, recognition: Recognition?)]
                do { results = try faces.recognize(imageAt: path) } catch {
                    print("\(path): unreadable (\(error))")
                    continue
                }
                print("\(path): \(results.count) face\(results.count == 1 ? "" : "s")")
                for (i, result) in results.enumerated() {
                    let b = result.face.box
                    var line = "  face \(i + 1)  box=\(Int(b.x)),\(Int(b.y)),\(Int(b.width))x\(Int(b.height))  "
                    if let r = result.recognition {
                        let d = r.distance.isFinite ? String(format: "%.3f", r.distance) : "-"
                        line += r.identity.map { "\($0)  distance=\(d)" } ?? "unknown  (nearest distance=\(d))"
                    } else {
                        line += "not recognisable (no landmarks)"
                    }
                    print(line)
                }
            }
        }
    }
}

/// --config for commands that only need occur.yaml.
struct HostOptions: ParsableArguments {
    @Option(name: .long, help: "Host settings file.")
    var config = "occur.yaml"

    func loadHost() throws -> HostConfiguration { try loadHostConfiguration(config) }

    func openStore() throws -> (HostConfiguration, EventStore) {
        let host = try loadHost()
        do { return (host, try EventStore(host)) } catch {
            throw CleanExit.message("error: \(error)", code: 1)
        }
    }

    func stillImageFaces(host: HostConfiguration, store: EventStore) throws -> StillImageFaces {
        let logger = bootstrapLogging(level: "warning")
        do {
            return try StillImageFaces(configuration: host, gallery: FaceGallery(store: store), logger: logger)
        } catch {
            throw CleanExit.message("error: \(error)", code: 1)
        }
    }
}

extension Occur.Faces {
    struct Enroll: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol a person from images that each show exactly one face.",
            discussion: "Images with no face or several faces are reported and skipped. Exit 1 when no image was enrolled.")

        @OptionGroup var options: HostOptions
        @Argument(help: "The person's name.") var name: String
        @Argument(help: "Image files.") var images: [String]

        func run() throws {
            if let problem = validatePersonName(name) {
                throw CleanExit.message("error: '\(name)': \(problem)", code: 2)
            }
            let (host, store) = try options.openStore()
            let outcomes = try options.stillImageFaces(host: host, store: store).enroll(name: name, images: images)
            outcomes.forEach { print($0.message) }
            let count = outcomes.filter(\.enrolled).count
            try AuditLog(store: store).record(actor: "cli", action: "faces.enroll", target: name, result: count > 0 ? "ok" : "refused",
                                              detail: "\(count) of \(images.count) images enrolled")
            print("\(name): \(count) of \(images.count) images enrolled")
            if count == 0 { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled people and their embeddings per model.")

        @OptionGroup var options: HostOptions

        func run() throws {
            let (_, store) = try options.openStore()
            let gallery = try FaceGallery(store: store)
            let people = try gallery.identities(kind: .person)
            if people.isEmpty { print("nobody enrolled") }
            for identity in people + (try gallery.identities(kind: .unknown)) {
                let models = identity.embeddings.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                var line = "\(identity.name)  \(models.isEmpty ? "no embeddings" : models.joined(separator: ", "))"
                if identity.kind == .unknown { line += "  (unknown: `occur faces name \(identity.name) NAME`)" }
                print(line)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a person and all their embeddings.")

        @OptionGroup var options: HostOptions
        @Argument(help: "The person's name.") var name: String

        func run() throws {
            let (host, store) = try options.openStore()
            let removed = try FaceGallery(store: store).remove(name: name, dataDir: host.dataDir, faceDB: host.recognition.faceDB)
            try AuditLog(store: store).record(actor: "cli", action: "faces.remove", target: name,
                                              result: removed ? "ok" : "not_found")
            guard removed else { throw CleanExit.message("error: nobody called '\(name)' is enrolled", code: 1) }
            print("\(name): removed (embeddings, snapshots\(host.recognition.faceDB == nil ? "" : ", face_db folder"))")
        }
    }

    struct Name: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Name an unknown face: unknown-N joins the gallery (or the named person) and is recognised from now on.")

        @OptionGroup var options: HostOptions
        @Argument(help: "The unknown face, e.g. unknown-3.") var unknown: String
        @Argument(help: "The person's name.") var name: String

        func run() throws {
            if let problem = validatePersonName(name) {
                throw CleanExit.message("error: '\(name)': \(problem)", code: 2)
            }
            let (_, store) = try options.openStore()
            do { try FaceGallery(store: store).promote(unknown: unknown, to: name) } catch {
                try? AuditLog(store: store).record(actor: "cli", action: "faces.name", target: unknown, result: "not_found", detail: "\(error)")
                throw CleanExit.message("error: \(error)", code: 1)
            }
            try AuditLog(store: store).record(actor: "cli", action: "faces.name", target: unknown, result: "ok", detail: "named \(name)")
            print("\(unknown) is now \(name)")
        }
    }

    struct EnrollDir: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll-dir",
            abstract: "Enrol a folder per person: DIR/<name>/*.jpg (images already enrolled are skipped).")

        @OptionGroup var options: HostOptions
        @Argument(help: "The folder holding one folder per person.") var directory: String

        func run() throws {
            let (host, store) = try options.openStore()
            let reports: [StillImageFaces.FolderReport]
            do { reports = try options.stillImageFaces(host: host, store: store).enrollFolders(at: directory) } catch {
                throw CleanExit.message("error: \(error)", code: 1)
            }
            if reports.isEmpty { print("\(directory): no person folders") }
            for report in reports {
                if let problem = report.problem {
                    print("\(report.name): skipped, \(problem)")
                    continue
                }
                report.outcomes.filter { !$0.enrolled }.forEach { print($0.message) }
                let added = report.outcomes.filter(\.enrolled).count
                print("\(report.name): \(added) enrolled, \(report.alreadyEnrolled) already enrolled, \(report.outcomes.count - added) skipped")
            }
        }
    }

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-embed every enrolled person's source images with the current backend (after changing it).",
            discussion: "Embeddings are stored per model, so the old backend's stay and are never mixed with the new ones. Unknown clusters have no source images; they form again as strangers are seen.")

        @OptionGroup var options: HostOptions

        func run() throws {
            let (host, store) = try options.openStore()
            let faces = try options.stillImageFaces(host: host, store: store)
            let outcomes = try faces.rebuild()
            outcomes.forEach { print($0.message) }
            print("\(faces.recognizer.embedder.model): \(outcomes.filter(\.enrolled).count) of \(outcomes.count) source images embedded")
        }
    }
}
