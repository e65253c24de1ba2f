import Foundation
import GRDB
import Synchronization
import Testing
import OccurTestSupport
@testable import OccurCore

@Suite struct EventStoreTests {
    @Test func writesAndFiltersEventsInARealSQLiteFile() throws {
        let path = Fixtures.temporaryDirectory("store") + "/events.db"
        let store = try EventStore(path: path)
        let old = Date(timeIntervalSinceNow: -3600)
        try store.append([
            Event(kind: .faceAppeared, sequence: 1, cameraID: "front", timestampNanos: 0, wallTime: old,
                  frameIndex: 4, faces: [Face(trackID: 7, box: Box(x: 1, y: 2, width: 30, height: 40), score: 0.9)]),
            Event(kind: .faceLeft, sequence: 2, cameraID: "back", timestampNanos: 0,
                  faces: [Face(trackID: 8, box: Box(x: 0, y: 0, width: 10, height: 10))],
                  payloadJSON: #"{"dwell_seconds": 2.5}"#),
            Event(kind: .pluginResult, sequence: 3, cameraID: "front", timestampNanos: 0, payloadJSON: #"{"label": "mask"}"#,
                  sourcePlugin: "mask", resultKind: "mask", resultTrackID: 7, confidence: 0.97),
        ])
        #expect(try store.count() == 3)
        let all = try store.events(EventStore.Query())
        #expect(all.map(\.kind) == ["face_appeared", "face_left", "mask"])
        #expect(all[0].trackID == 7 && all[0].box == Box(x: 1, y: 2, width: 30, height: 40) && all[0].frameIndex == 4)
        #expect(all[2].plugin == "mask" && all[2].confidence == 0.97 && all[2].trackID == 7)

        var q = EventStore.Query()
        q.camera = "front"
        #expect(try store.events(q).count == 2)
        q = EventStore.Query()
        q.kinds = ["face_left"]
        #expect(try store.events(q).first?.payload == #"{"dwell_seconds": 2.5}"#)
        q = EventStore.Query()
        q.since = Date(timeIntervalSinceNow: -60)
        #expect(try store.events(q).count == 2)
        q = EventStore.Query()
        q.plugin = "mask"
        #expect(try store.events(q).count == 1)
        q = EventStore.Query()
        q.limit = 1
        #expect(try store.events(q).map(\.kind) == ["mask"])

        let mode = try DatabaseQueue(path: path).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test func theWriterBatchesAndFlushesEverythingOnStop() throws {
        let path = Fixtures.temporaryDirectory("writer") + "/events.db"
        let store = try EventStore(path: path)
        var storage = StorageConfiguration()
        storage.batchSize = 64
        storage.flushInterval = 30  // only size and stop trigger writes here
        let batches = Mutex<[Int]>([])
        let writer = EventWriter(store: store, configuration: storage, logger: Fixtures.logger) { batch in
            batches.withLock { $0.append(batch.count) }
        }
        writer.start()
        for i in 1...1000 { writer.append(TestEvents.faceAppeared(sequence: UInt64(i), track: Int64(i))) }
        writer.stopAndFlush()
        #expect(try store.count() == 1000)
        #expect(writer.eventsWritten == 1000)
        #expect(batches.withLock { $0 }.allSatisfy { $0 <= 64 })
    }

    @Test func readingAMissingDatabaseSaysSo() {
        #expect(throws: StoreError.self) { try EventStore(path: "/nonexistent/occur.db", readOnly: true) }
    }
}
