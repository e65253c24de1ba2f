import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Saves a face crop and an annotated full frame for recognised and unknown appearances,
/// at most one pair per camera and identity every `cooldown` seconds (snapshot_cooldown).
/// JPEG encoding and disk writes happen on the store's own thread, off the capture path;
/// the paths are decided up front so the event that names them can be logged at once.
/// With encryption on (DataProtection) both files are sealed: `…-face.jpg.sealed`.
/// While StorageSpace says the disk is (nearly) full, snapshots are skipped and counted: the
/// event is logged without them.
public final class SnapshotStore: Service, Sendable {
    /// Paths relative to the data directory.
    public struct Paths: Sendable, Equatable {
        public var face: String
        public var frame: String
    }

    private struct Job {
        var frame: Frame
        var box: Box
        var label: String
        var paths: Paths
    }

    public let dataDir: String
    private let protection: DataProtection
    private let cooldownNanos: Int64
    private let logger: Logger
    private let last = Mutex<[String: Int64]>([:])
    private let written = Atomic<Int>(0)
    private let skipped = Atomic<Int>(0)
    private let queue: BackgroundQueue<Job>
    private let space: StorageSpace?
    private let metrics: HostMetrics?

    public init(dataDir: String, cooldown: Double, protection: DataProtection, space: StorageSpace? = nil,
                metrics: HostMetrics? = nil, logger: Logger) {
        self.dataDir = dataDir
        self.protection = protection
        self.space = space
        self.metrics = metrics
        cooldownNanos = Int64(cooldown * 1e9)
        self.logger = logger
        let owner = WeakBox<SnapshotStore>()
        queue = BackgroundQueue(name: "snapshots", batchSize: 1, maxWait: 1) { jobs in jobs.forEach { owner.value?.write($0) } }
        owner.value = self
    }

    public var snapshotsWritten: Int { written.load(ordering: .relaxed) }

    /// Snapshots not written because the disk was (nearly) full.
    public var snapshotsSkipped: Int { skipped.load(ordering: .relaxed) }

    /// Books a snapshot of `face` in `frame` unless one of the same camera and label was taken
    /// within the cooldown. Returns where the files will be.
    public func request(frame: Frame, face: Face, label: String, camera: String, sequence: UInt64,
                        timestampNanos: Int64, wallTime: Date) -> Paths? {
        let key = camera + "\u{1}" + label
        let admitted = last.withLock { last -> Bool in
            if let previous = last[key], timestampNanos - previous < cooldownNanos, timestampNanos >= previous {
                return false
            }
            last[key] = timestampNanos
            return true
        }
        guard admitted else { return nil }
        guard space?.allowsSnapshots ?? true else {
            skip()
            return nil
        }
        let day = Self.dayFormatter.string(from: wallTime)
        let safeLabel = label.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        let base = "snapshots/\(day)/\(camera)/\(sequence)-\(String(safeLabel))"
        let suffix = protection.sealsNewData ? DataProtection.sealedExtension : ""
        let paths = Paths(face: base + "-face.jpg" + suffix, frame: base + "-frame.jpg" + suffix)
        queue.append(Job(frame: frame, box: face.box, label: label, paths: paths))
        return paths
    }

    public func start() { queue.start() }

    private func write(_ job: Job) {
        guard space?.allowsSnapshots ?? true else {  // the disk filled up since it was booked
            skip()
            return
        }
        do {
            // The crop keeps a margin of a fifth of the face around it.
            let b = job.box, m = 0.2
            let region = Box(x: b.x - b.width * m, y: b.y - b.height * m, width: b.width * (1 + 2 * m),
                             height: b.height * (1 + 2 * m))
            if let crop = job.frame.cropped(to: region) { try save(crop, at: job.paths.face) }
            if let annotated = job.frame.annotated(box: job.box, label: job.label) { try save(annotated, at: job.paths.frame) }
            written.add(1, ordering: .relaxed)
        } catch where StorageSpace.isDiskFull(error) {
            for path in [job.paths.face, job.paths.frame] {  // no half pair
                try? FileManager.default.removeItem(atPath: (dataDir as NSString).appendingPathComponent(path))
            }
            space?.snapshotWriteFailed()
            skip()
        } catch {
            logger.error("snapshot not written: \(error)")
        }
    }

    private func skip() {
        skipped.add(1, ordering: .relaxed)
        metrics?.snapshotSkipped(reason: "disk_full")
    }

    private func save(_ image: Frame, at path: String) throws {
        let file = (dataDir as NSString).appendingPathComponent(path)
        try PrivateFiles.makeDirectory((file as NSString).deletingLastPathComponent)
        try PrivateFiles.write(protection.seal(image.jpeg(), .image), to: file, sync: false, describing: "the snapshot")
    }

    /// Writes what is queued and ends the thread. Blocks until done.
    public func stopAndDrain() { queue.stopAndDrain() }

    public func run() async throws { await queue.runUntilShutdown() }

    static let dayFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f
    }()
}
