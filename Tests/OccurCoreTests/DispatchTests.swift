import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// Dispatch through real fixture plugins: filters, cooldowns, queues, ordering, sharing.
@Suite struct DispatchTests {
    /// A fixture_ok worker that records what it receives into a file.
    func recordingWorker(_ settings: (inout PluginSettings) -> Void = { _ in }, config: [String: Any] = [:],
                         bus: EventBus? = nil) throws -> (PluginWorker, String) {
        let record = Fixtures.temporaryDirectory("record") + "/events.txt"
        var json = config
        json["record"] = record
        let text = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.withoutEscapingSlashes]), as: UTF8.self)
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        var s = PluginSettings.fixture("fixture_ok", library: library.path, config: text)
        settings(&s)
        let worker = try PluginWorker(library: library, settings: s, logger: Fixtures.logger) { result, event in
            bus?.publishResult(result, from: "fixture_ok", during: event)
        }
        return (worker, record)
    }

    @Test(arguments: [CooldownScope.global, .camera, .track])
    func cooldownHoldsPerScope(scope: CooldownScope) throws {
        let (worker, record) = try recordingWorker { $0.cooldown = 1.0; $0.cooldownScope = scope }
        let dispatcher = Dispatcher(workers: [worker])
        // Two cameras x two tracks, one event each every 0.25 s for 4 s.
        var sequence: UInt64 = 0
        for step in 0..<16 {
            for camera in ["a", "b"] {
                for track in [Int64(1), 2] {
                    sequence += 1
                    dispatcher.publish(TestEvents.faceAppeared(sequence: sequence, camera: camera, track: track,
                                                               seconds: Double(step) * 0.25))
                }
            }
        }
        dispatcher.drainBlocking()
        let received = RecordedEvent.read(record)
        let scopes: Int = switch scope { case .global: 1; case .camera: 2; case .track: 4 }
        // Within each scope: deliveries at 0, 1, 2, 3 s.
        #expect(received.count == 4 * scopes)
        #expect(worker.counters.droppedByCooldown == UInt64(64 - 4 * scopes))
        let grouped = Dictionary(grouping: received) { r -> String in
            switch scope {
            case .global: "all"
            case .camera: r.camera
            case .track: "\(r.camera)#\(r.track)"
            }
        }
        for (_, events) in grouped {
            let times = events.map(\.timestampNanos)
            for (a, b) in zip(times, times.dropFirst()) { #expect(b - a >= 1_000_000_000) }
        }
    }

    @Test func eventsWithoutATrackFallBackToTheCameraUnderTrackScope() throws {
        let (worker, record) = try recordingWorker { $0.cooldown = 10; $0.cooldownScope = .track }
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...5 {
            dispatcher.publish(Event(kind: .frame, sequence: UInt64(i), cameraID: "a", timestampNanos: Int64(i)))
        }
        dispatcher.drainBlocking()
        #expect(RecordedEvent.read(record).count == 1)
    }

    @Test func eventKindAndCameraFiltersApply() throws {
        let (worker, record) = try recordingWorker {
            $0.events = [.faceLeft]
            $0.cameras = ["front"]
        }
        let dispatcher = Dispatcher(workers: [worker])
        var n: UInt64 = 0
        for camera in ["front", "back"] {
            for kind in [EventKind.faceAppeared, .faceLeft, .frame, .faceLeft] {
                n += 1
                dispatcher.publish(TestEvents.event(kind, sequence: n, camera: camera))
            }
        }
        dispatcher.drainBlocking()
        let received = RecordedEvent.read(record)
        #expect(received.count == 2)
        #expect(received.allSatisfy { $0.kind == EventKind.faceLeft.rawValue && $0.camera == "front" })
    }

    @Test func thePluginsOwnEventMaskNarrowsDelivery() throws {
        // The sample plugin asks only for face_appeared and face_left.
        let library = try PluginLibrary.load(path: Fixtures.plugin("Sample"), expectedID: "sample")
        let worker = try PluginWorker(library: library, settings: .fixture("sample", library: library.path),
                                      logger: Fixtures.logger) { _, _ in }
        let dispatcher = Dispatcher(workers: [worker])
        for (i, kind) in EventKind.allCases.enumerated() {
            dispatcher.publish(TestEvents.event(kind, sequence: UInt64(i + 1)))
        }
        dispatcher.drainBlocking()
        #expect(worker.counters.delivered == 2)
    }

    @Test func eventsArriveInPublicationOrder() throws {
        let (worker, record) = try recordingWorker { $0.queueCapacity = 2000 }
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...1000 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: Int64(i % 7))) }
        dispatcher.drainBlocking()
        let sequences = RecordedEvent.read(record).map(\.sequence)
        #expect(sequences == Array(1...1000))
    }

    @Test func aSlowPluginDropsByItsPolicyAndDoesNotStallOthers() throws {
        let (slow, _) = try recordingWorker({ $0.queueCapacity = 2; $0.overflow = .dropOldest }, config: ["sleep_ms": 100])
        let (fast, fastRecord) = try recordingWorker { $0.queueCapacity = 100 }
        let dispatcher = Dispatcher(workers: [slow, fast])
        for i in 1...50 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: 1)) }
        // Publishing returned for all 50 events while the slow plugin had handled only a few.
        #expect(slow.counters.delivered < 50)
        dispatcher.drainBlocking()
        #expect(fast.counters.delivered == 50)
        #expect(RecordedEvent.read(fastRecord).count == 50)
        let s = slow.counters
        #expect(s.droppedByOverflow > 0)
        #expect(s.delivered + s.droppedByOverflow == 50)
        #expect(s.maxCallMicros >= 100_000)
    }

    @Test func framesAreSharedNotCopied() throws {
        let (first, recordA) = try recordingWorker()
        let (second, recordB) = try recordingWorker()
        let frame = Frame.filled(width: 640, height: 480, blue: 10, green: 20, red: 30)
        let dispatcher = Dispatcher(workers: [first, second])
        for i in 1...20 {
            dispatcher.publish(TestEvents.event(.frame, sequence: UInt64(i), frame: frame))
        }
        dispatcher.drainBlocking()
        // Both plugins read the very pixels the frame owns (the buffer count is in `occur bench dispatch`).
        let address = String(format: "%p", Int(bitPattern: frame.pixels))
        let seen = RecordedEvent.read(recordA) + RecordedEvent.read(recordB)
        #expect(seen.count == 40)
        #expect(seen.allSatisfy { $0.pixels == address })
    }

    @Test func emittedResultsReachSubscribersButNotTheEmitter() throws {
        let bus = EventBus(writer: nil)
        let (emitter, emitterRecord) = try recordingWorker(
            { $0.events = [.faceAppeared, .pluginResult] }, config: ["emit": "seen"], bus: bus)
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        let subscriberRecord = Fixtures.temporaryDirectory("sub") + "/events.txt"
        var settings = PluginSettings.fixture("listener", library: library.path,
                                              config: "{\"record\": \"\(subscriberRecord)\"}")
        settings.events = [.pluginResult]
        let subscriber = try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }
        let dispatcher = Dispatcher(workers: [emitter, subscriber])
        bus.attach(dispatcher)
        for i in 1...3 { bus.publish(TestEvents.faceAppeared(sequence: bus.nextSequence(), camera: "door", track: Int64(i))) }
        // Let the emitter handle its events (and emit) before the queues close.
        while emitter.counters.delivered < 3 { usleep(1000) }
        dispatcher.drainBlocking()
        let heard = RecordedEvent.read(subscriberRecord)
        #expect(heard.count == 3)
        #expect(heard.allSatisfy { $0.resultKind == "seen" && $0.camera == "door" })
        #expect(heard.map(\.track).sorted() == [1, 2, 3])
        #expect(RecordedEvent.read(emitterRecord).allSatisfy { $0.kind == EventKind.faceAppeared.rawValue })
        #expect(bus.publishedCounts["seen"] == 3)
    }
}

extension DispatchTests {
    @Test func resultsStillInFlightAtShutdownAreDelivered() throws {
        let bus = EventBus(writer: nil)
        // A slow emitter: when the drain starts, most of its results are not made yet.
        let (emitter, _) = try recordingWorker(
            { $0.events = [.faceAppeared]; $0.queueCapacity = 100 }, config: ["emit": "seen", "sleep_ms": 20], bus: bus)
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        let record = Fixtures.temporaryDirectory("late") + "/events.txt"
        var settings = PluginSettings.fixture("listener", library: library.path, config: "{\"record\": \"\(record)\"}")
        settings.events = [.pluginResult]
        settings.queueCapacity = 100
        let listener = try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }
        let dispatcher = Dispatcher(workers: [emitter, listener])
        bus.attach(dispatcher)
        for i in 1...20 { bus.publish(TestEvents.faceAppeared(sequence: bus.nextSequence(), track: Int64(i))) }
        dispatcher.drainBlocking()  // at once: the queues stay open until both workers are idle
        #expect(RecordedEvent.read(record).count == 20)
        #expect(listener.counters.droppedByOverflow == 0)
    }
}

/// The bounded queue's overflow policies, without any consumer timing involved.
@Suite struct EventQueueTests {
    func events(_ n: Int) -> [Event] { (1...n).map { TestEvents.faceAppeared(sequence: UInt64($0), track: 1) } }

    @Test func dropNewestRefusesWhenFull() {
        let queue = EventQueue(capacity: 3, policy: .dropNewest)
        let offers = events(5).map { queue.offer($0) }
        #expect(offers == [.accepted, .accepted, .accepted, .rejected, .rejected])
        queue.close()
        var taken: [UInt64] = []
        while let e = queue.take() { taken.append(e.sequence) }
        #expect(taken == [1, 2, 3])
    }

    @Test func dropOldestEvictsTheOldest() {
        let queue = EventQueue(capacity: 3, policy: .dropOldest)
        let offers = events(5).map { queue.offer($0) }
        #expect(offers == [.accepted, .accepted, .accepted, .acceptedEvictingOldest, .acceptedEvictingOldest])
        queue.close()
        var taken: [UInt64] = []
        while let e = queue.take() { taken.append(e.sequence) }
        #expect(taken == [3, 4, 5])
    }

    @Test func blockMakesThePublisherWaitAndLosesNothing() {
        let queue = EventQueue(capacity: 2, policy: .block)
        let all = events(20)
        let producerDone = Completion()
        let producer = Thread {
            for e in all { #expect(queue.offer(e) == .accepted) }
            producerDone.complete()
        }
        producer.start()
        var taken: [UInt64] = []
        while taken.count < 20, let e = queue.take() { taken.append(e.sequence) }
        producerDone.waitBlocking()
        #expect(taken == Array(1...20))
    }

    @Test func closingWakesABlockedPublisher() {
        let queue = EventQueue(capacity: 1, policy: .block)
        #expect(queue.offer(TestEvents.faceAppeared(sequence: 1, track: 1)) == .accepted)
        let result = Completion()
        nonisolated(unsafe) var second: EventQueue.Offer?
        let producer = Thread {
            second = queue.offer(TestEvents.faceAppeared(sequence: 2, track: 1))
            result.complete()
        }
        producer.start()
        queue.close()
        result.waitBlocking()
        #expect(second == .closed)
    }
}
