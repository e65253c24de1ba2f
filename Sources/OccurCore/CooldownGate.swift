import Synchronization

/// Lets at most one event through per `cooldown` seconds within a scope: the whole
/// plugin (global), one camera, or one track (a person). Events without a track fall
/// back to their camera under `track` scope. Time is the event's own timestamp.
final class CooldownGate: Sendable {
    struct Key: Hashable {
        var camera: String
        var track: Int64
    }

    let cooldownNanos: Int64
    let scope: CooldownScope
    private let lastPassed = Mutex<[Key: Int64]>([:])

    init(cooldown: Double, scope: CooldownScope) {
        cooldownNanos = Int64(cooldown * 1_000_000_000)
        self.scope = scope
    }

    func key(for event: Event) -> Key {
        switch scope {
        case .global: Key(camera: "", track: -1)
        case .camera: Key(camera: event.cameraID, track: -1)
        case .track: Key(camera: event.cameraID, track: event.trackID ?? -1)
        }
    }

    /// True when the event may pass; passing starts a new cooldown for its scope.
    func admit(_ event: Event) -> Bool {
        guard cooldownNanos > 0 else { return true }
        let key = key(for: event)
        let now = event.timestampNanos
        return lastPassed.withLock { last in
            if let previous = last[key], now - previous < cooldownNanos, now >= previous { return false }
            last[key] = now
            if last.count > 4096 {  // forget scopes whose cooldown ran out long ago
                last = last.filter { now - $0.value < cooldownNanos }
            }
            return true
        }
    }
}
