import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events from the event log, oldest first.")

        @Option(name: .long, help: "Host settings file (to find the database).")
        var config = "occur.yaml"

        @Option(name: .long, help: "Event database path (overrides --config).")
        var database: String?

        @Option(name: .long, help: "Only events at or after this time: ISO 8601, or an age like 30s, 10m, 2h, 7d.")
        var since: String?

        @Option(name: .long, help: "Only this kind (face_appeared, face_recognized, face_unknown, face_unassessed, face_left, a plugin result kind, ...). Repeatable.")
        var kind: [String] = []

        @Option(name: .long, help: "Only this camera.")
        var camera: String?

        @Option(name: .long, help: "Only results emitted by this plugin.")
        var plugin: String?

        @Option(name: .long, help: "At most this many (the newest).")
        var limit = 100

        @Flag(name: .long, help: "One JSON object per line.")
        var json = false

        func run() throws {
            let path: String
            if let database { path = database } else {
                do { path = try HostConfiguration.load(contentsOf: config).databasePath } catch let error as ConfigError {
                    throw CleanExit.message("error: \(error)", code: 2)
                }
            }
            var query = EventStore.Query()
            if let since {
                guard let date = parseSince(since) else {
                    throw CleanExit.message("error: --since '\(since)' is neither ISO 8601 nor an age like 10m", code: 2)
                }
                query.since = date
            }
            query.kinds = kind
            query.camera = camera
            query.plugin = plugin
            query.limit = limit
            let events: [StoredEvent]
            do { events = try EventStore(path: path, readOnly: true).events(query) } catch {
                throw CleanExit.message("error: \(error)", code: 1)
            }
            for event in events {
                if json {
                    let data = try JSONSerialization.data(withJSONObject: event.jsonObject, options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print(event.line)
                }
            }
        }
    }
}
