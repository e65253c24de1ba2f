import Foundation
import Prometheus
import Synchronization

/// `GET /metrics`: the host's figures in Prometheus text format (swift-prometheus), clean under
/// `promtool check metrics` — every family has help text, counters end in `_total`, durations
/// are in seconds.
///
/// Stage latencies, DB writes and plugin call times are recorded as they happen (histograms);
/// counters the host already keeps (camera frames, plugin deliveries) are brought up to date
/// when scraped, so the capture and delivery paths pay nothing extra for them.
///
/// swift-metrics' API is not used for these: it cannot carry help text, and promtool rejects
/// metrics without it.
public final class HostMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Last value of each mirrored counter, by name and labels.
    private let mirrored = Mutex<[String: Int64]>([:])

    public init() {}

    static let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
                                             .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                             .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                             .seconds(2.5)]

    static func name(_ name: String, _ help: String, unit: String = "") -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "occur", metricName: name, unitName: unit, helpText: help)   // "" = no unit suffix
    }

    // MARK: recorded as they happen

    /// Time of one pipeline stage on one camera: detect, recognize.
    public func stage(_ stage: String, camera: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: Self.name("stage_duration", "Time per frame (detect) or per face (recognize) of a pipeline stage", unit: "seconds"),
            labels: [("stage", stage), ("camera", camera)], buckets: Self.latencyBuckets)
    }

    /// Time of one plugin's on_event calls.
    public func pluginCall(_ plugin: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: Self.name("plugin_call_duration", "Time a plugin's on_event call took", unit: "seconds"),
            labels: [("plugin", plugin)], buckets: Self.latencyBuckets)
    }

    /// One committed batch of the event log: how long, how many events.
    public func databaseWrite(seconds: Double, events: Int) {
        registry.makeDurationHistogram(
            descriptor: Self.name("db_write_duration", "Time to commit one batch of events to SQLite", unit: "seconds"),
            labels: [], buckets: Self.latencyBuckets).record(.nanoseconds(Int64(seconds * 1e9)))
        registry.makeValueHistogram(
            descriptor: Self.name("db_batch_size", "Events per committed batch", unit: "events"),
            labels: [], buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]).record(Double(events))
    }

    /// Events logged, by camera and kind (faces detected, recognised, unknown, plugin results ...).
    public func eventsLogged(_ batch: [StoredEvent]) {
        var counts: [[String]: Int64] = [:]
        for row in batch { counts[[row.camera, row.kind], default: 0] += 1 }
        for (key, n) in counts {
            registry.makeCounter(descriptor: Self.name("events_logged_total", "Events written to the event log"),
                                 labels: [("camera", key[0]), ("kind", key[1])]).increment(by: n)
        }
    }

    // MARK: storage faults (StorageSpace, EventWriter, SnapshotStore)

    /// 1 while `store` (snapshots, events) is stopped by a full disk.
    public func storageFull(_ store: String, _ full: Bool) {
        registry.makeGauge(descriptor: Self.name("storage_full", "1 while a full disk stops snapshots or holds events in memory"),
                           labels: [("store", store)]).set(to: full ? 1 : 0)
    }

    /// Free space on the data dir's filesystem at the last check.
    public func storageFreeBytes(_ bytes: Int64) {
        registry.makeGauge(descriptor: Self.name("storage_free", "Free space on the data dir's filesystem at the last check", unit: "bytes"),
                           labels: []).set(to: Double(bytes))
    }

    /// A snapshot not taken, and why (`disk_full`).
    public func snapshotSkipped(reason: String) {
        registry.makeCounter(descriptor: Self.name("snapshots_skipped_total", "Snapshots not written"),
                             labels: [("reason", reason)]).increment()
    }

    /// Events that will never reach the log, and why (`disk_full`, `write_error`).
    public func eventsLost(_ count: Int, reason: String) {
        registry.makeCounter(descriptor: Self.name("events_lost_total", "Events that could not be written to the event log"),
                             labels: [("reason", reason)]).increment(by: Int64(count))
    }

    // MARK: brought up to date when scraped

    /// The text exposition, after updating the mirrored counters and gauges.
    public func render(cameras: [CameraPipeline], workers: [PluginWorker]) -> String {
        for camera in cameras {
            let c = camera.counters
            let labels = [("camera", camera.configuration.id)]
            mirror("camera_frames_decoded_total", "Frames read from the camera's source", labels, c.framesRead)
            mirror("camera_frames_processed_total", "Frames that went through detection", labels, c.framesProcessed)
            mirror("camera_frames_dropped_total", "Frames read but not processed (every_n_frames, fps limit)", labels,
                   max(0, c.framesRead - c.framesProcessed))
            mirror("camera_faces_detected_total", "Faces the detector found", labels, c.facesDetected)
            mirror("camera_recognitions_total", "Faces embedded and matched against the gallery", labels, c.recognitions)
            mirror("camera_reconnects_total", "Times a live source was reopened", labels, Int64(c.reconnects))
            mirror("camera_disconnects_total", "Times a live source was lost: closed, failed, stalled or not openable",
                   labels, Int64(c.disconnects))
            gauge("camera_up", "1 while the camera's source is open and delivering frames", labels, c.open ? 1 : 0)
            gauge("camera_fps", "Frames processed per second, about the last second", labels, c.fps)
        }
        for worker in workers {
            let c = worker.counters
            let labels = [("plugin", worker.id)]
            mirror("plugin_deliveries_total", "Events a plugin's on_event was called with", labels, Int64(c.delivered))
            mirror("plugin_dropped_total", "Events not delivered to a plugin", labels + [("reason", "cooldown")],
                   Int64(c.droppedByCooldown))
            mirror("plugin_dropped_total", "Events not delivered to a plugin", labels + [("reason", "overflow")],
                   Int64(c.droppedByOverflow))
            mirror("plugin_errors_total", "on_event calls that returned an error status", labels, Int64(c.errors))
            if worker.settings.isolation == .process {
                mirror("plugin_dropped_total", "Events not delivered to a plugin", labels + [("reason", "runner_down")],
                       Int64(c.droppedWhileDown))
                mirror("plugin_crashes_total", "Times an isolated plugin's runner process died or was killed", labels,
                       Int64(c.runner.crashes))
                mirror("plugin_restarts_total", "Times an isolated plugin's runner process was started again", labels,
                       Int64(c.runner.restarts))
                gauge("plugin_failed", "1 while an isolated plugin is off after max_crashes in crash_window", labels,
                      c.runner.failed ? 1 : 0)
            }
            gauge("plugin_queue_depth", "Events waiting in a plugin's queue", labels, Double(c.queueDepth))
            gauge("plugin_paused", "1 while a plugin is paused through the API", labels, c.paused ? 1 : 0)
        }
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "process", metricName: "resident_memory",
                                                            unitName: "bytes", helpText: "Resident memory size in bytes"),
                           labels: []).set(Double(Self.residentBytes()))
        return registry.emitToString()
    }

    private func mirror(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Int64) {
        let key = name + labels.map { "\u{1}\($0.0)=\($0.1)" }.joined()
        let delta = mirrored.withLock { last -> Int64 in
            let d = value - (last[key] ?? 0)
            if d > 0 { last[key] = value }
            return d
        }
        let counter = registry.makeCounter(descriptor: Self.name(name, help), labels: labels)
        if delta > 0 { counter.increment(by: delta) }
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
        registry.makeGauge(descriptor: Self.name(name, help), labels: labels).set(to: value)
    }

    /// Resident set size from /proc/self/statm (pages × page size); 0 where unreadable.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
