import Foundation
import Synchronization

/// Where events go once made: the event log (all but per-frame events) and the plugin
/// dispatcher. It numbers events in publication order.
public final class EventBus: Sendable {
    private let sequence = Atomic<UInt64>(0)
    private let dispatcher: Mutex<Dispatcher?> = Mutex(nil)
    private let writer: EventWriter?
    private let counts = Mutex<[String: Int]>([:])

    public init(writer: EventWriter?) {
        self.writer = writer
    }

    /// Plugins are attached after the bus exists, because their emit publishes here.
    public func attach(_ dispatcher: Dispatcher) {
        self.dispatcher.withLock { $0 = dispatcher }
    }

    public func nextSequence() -> UInt64 {
        sequence.add(1, ordering: .relaxed).newValue
    }

    public func publish(_ event: Event) {
        if event.kind != .frame {
            writer?.append(event)
            counts.withLock { $0[event.logKind, default: 0] += 1 }
        }
        dispatcher.withLock { $0 }?.publish(event)
    }

    /// Records something the host itself noticed (`camera_disconnected`, `camera_reconnected`)
    /// in the event log under `kind`, with `payload` as its JSON object. Plugins are not told:
    /// occur_plugin.h has no event kind for it. In memory it is a result with no source plugin.
    public func logHostEvent(kind: String, cameraID: String, payload: [String: Any]) {
        let json = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let event = Event(kind: .pluginResult, sequence: nextSequence(), cameraID: cameraID,
                          timestampNanos: monotonicNanos(), payloadJSON: json, resultKind: kind)
        writer?.append(event)
        counts.withLock { $0[event.logKind, default: 0] += 1 }
    }

    /// True when some plugin takes events of this kind.
    public func anyoneWants(_ kind: EventKind) -> Bool {
        dispatcher.withLock { $0 }?.anyoneWants(kind) ?? false
    }

    /// Events published so far by log kind (per-frame events are not counted).
    public var publishedCounts: [String: Int] { counts.withLock { $0 } }

    /// Turns a plugin's emitted result into an event: attributed to the event the plugin
    /// was handling (camera, time, frame), or to no camera when emitted elsewhere.
    public func publishResult(_ result: PluginResult, from pluginID: String, during event: Event?) {
        publish(Event(
            kind: .pluginResult, sequence: nextSequence(), cameraID: event?.cameraID ?? "",
            timestampNanos: event?.timestampNanos ?? monotonicNanos(), frame: event?.frame,
            frameIndex: event?.frameIndex, faces: event?.faces ?? [], payloadJSON: result.payloadJSON,
            sourcePlugin: pluginID, resultKind: result.kind, resultTrackID: result.trackID,
            resultBox: result.box, confidence: result.confidence))
    }
}
