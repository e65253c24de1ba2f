import Foundation

/// `retention:` in occur.yaml: how long each kind of data is kept. Every limit is off by
/// default (keep forever); the RetentionSweeper enforces the ones that are set.
public struct RetentionConfiguration: Sendable, Equatable {
    /// Events older than this many days are deleted, with the snapshot files they name.
    /// 0 = keep forever. Default 0.
    public var eventsDays: Int = 0
    /// Unknown clusters (`unknown-N`) not seen for this many days are removed completely, as
    /// `occur faces remove` would: embeddings, identity row, snapshots of their events (the
    /// events stay, without identity). Seen = their newest event, embedding or creation.
    /// With `eventsDays` set, at most `eventsDays`: a sighting is known from its event.
    /// 0 = keep forever. Default 0.
    public var unknownDays: Int = 0
    /// Snapshot files older than this many days (by the time of the event that names them,
    /// else the file's modification time) are deleted; the events stay, without them.
    /// 0 = keep forever. Default 0.
    public var snapshotsDays: Int = 0
    /// When the snapshot files together take more bytes than this, the oldest are deleted
    /// until they fit. In YAML a whole number of bytes, or a number with K, M, G or T
    /// (powers of 1024; `KB`/`KiB` spellings too): `500M`, `2G`, `1.5GB`. 0 = no cap. Default 0.
    public var snapshotsMaxBytes: Int64 = 0
    /// Seconds between sweeps; the first runs when the host starts. Default 3600.
    public var sweepInterval: Double = 3600

    public init() {}

    /// Longest retention in days a setting takes (about 2,700 years): more would overflow
    /// the millisecond cut-off times.
    public static let maxDays = 1_000_000

    /// True when some limit is set, i.e. there is something to sweep.
    public var hasLimits: Bool {
        eventsDays > 0 || unknownDays > 0 || snapshotsDays > 0 || snapshotsMaxBytes > 0
    }
}

extension RetentionConfiguration {
    init(_ node: ConfigNode) throws {
        self.init()
        let f = try node.fields()
        try f.read("events_days", into: &eventsDays) { try $0.int(atLeast: 0, atMost: Self.maxDays) }
        try f.read("unknown_days", into: &unknownDays) { try $0.int(atLeast: 0, atMost: Self.maxDays) }
        if let node = f.optional("unknown_days"), eventsDays > 0, unknownDays > eventsDays {
            throw node.error("\(unknownDays) days is longer than events_days (\(eventsDays)): when a cluster was last "
                             + "seen is read from its events, so it cannot be kept longer than they are; "
                             + "set unknown_days to at most \(eventsDays)")
        }
        try f.read("snapshots_days", into: &snapshotsDays) { try $0.int(atLeast: 0, atMost: Self.maxDays) }
        try f.read("snapshots_max_bytes", into: &snapshotsMaxBytes) { try $0.byteCount() }
        try f.read("sweep_interval", into: &sweepInterval) { try $0.seconds(atLeast: 1) }
        try f.finish()
    }
}

extension ConfigNode {
    /// A size: whole bytes (`1048576`), or a number with a K, M, G or T suffix in powers of
    /// 1024, optionally followed by `B` or `iB` (`512K`, `2G`, `1.5GB`, `3GiB`), any case.
    func byteCount() throws -> Int64 {
        let usage = "expected a size in bytes: a whole number, or a number with K, M, G or T (powers of 1024), e.g. 2G"
        guard !isNull, let text = try? string() else { throw error(usage) }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        var unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where unit.count > suffix.count && unit.hasSuffix(suffix) {
            unit.removeLast(suffix.count)
            break
        }
        if unit == "B" { unit = "" }
        let multipliers: [String: Double] = ["": 1, "K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        guard let number = Double(digits), let multiplier = multipliers[unit],
              unit != "" || !digits.contains(".") else {
            throw error("\(usage); got '\(text)'")
        }
        let bytes = (number * multiplier).rounded()
        guard bytes < Double(Int64.max) else { throw error("'\(text)' is too large") }
        return Int64(bytes)
    }
}
