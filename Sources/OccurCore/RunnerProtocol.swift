import Foundation
import PluginAPI

// What the host and a plugin runner (`occur plugin-runner`, isolation: process) say to each
// other. Two stream sockets join them:
//   channel      host -> runner: create, event, destroy
//                runner -> host: created, emitted (during on_event), done, destroyed
//   log channel  runner -> host: log, emitted (outside on_event); the host reads it on a
//                thread of its own, so a plugin's own threads can log and emit at any time.
// A message is a little-endian u32 length (of what follows), a u8 type and the body.
// Pixels never travel here: an event names a shared-memory slot (RunnerIPC.swift) whose
// file descriptor rides along (SCM_RIGHTS) the first time a runner needs it.

enum RunnerMessage: UInt8 {
    case create = 1, event = 2, destroy = 3
    case created = 10, emitted = 11, done = 12, destroyed = 13
    case log = 20
}

struct RunnerProtocolError: Error, CustomStringConvertible {
    var description: String
}

/// The largest message either side accepts (a result payload or a config can be big; a frame never is).
let runnerMessageLimit = 64 << 20

/// Builds one message.
struct WireWriter {
    private(set) var bytes: [UInt8]

    init(_ type: RunnerMessage, reserving capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes += [0, 0, 0, 0, type.rawValue]
    }

    private mutating func raw<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { raw(v) }
    mutating func i32(_ v: Int32) { raw(v) }
    mutating func u64(_ v: UInt64) { raw(v) }
    mutating func i64(_ v: Int64) { raw(v) }
    mutating func f64(_ v: Double) { raw(v.bitPattern) }
    mutating func f32(_ v: Float) { raw(v.bitPattern) }
    mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }

    mutating func string(_ s: String) {
        let utf8 = s.utf8
        u32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func optional<T>(_ value: T?, _ write: (inout WireWriter, T) -> Void) {
        bool(value != nil)
        if let value { write(&self, value) }
    }

    /// The message with its length filled in.
    func finished() -> [UInt8] {
        var out = bytes
        let length = UInt32(out.count - 4).littleEndian
        withUnsafeBytes(of: length) { for i in 0..<4 { out[i] = $0[i] } }
        return out
    }
}

/// Reads one message's body. Every read is bounds-checked: a runner is not trusted to send
/// well-formed messages, and a bad one must not take the host down.
struct WireReader {
    private let bytes: [UInt8]
    private var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset == bytes.count }

    private mutating func raw<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { throw RunnerProtocolError(description: "truncated message") }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    mutating func u8() throws -> UInt8 { try raw(UInt8.self) }
    mutating func u32() throws -> UInt32 { try raw(UInt32.self) }
    mutating func i32() throws -> Int32 { try raw(Int32.self) }
    mutating func u64() throws -> UInt64 { try raw(UInt64.self) }
    mutating func i64() throws -> Int64 { try raw(Int64.self) }
    mutating func f64() throws -> Double { Double(bitPattern: try raw(UInt64.self)) }
    mutating func f32() throws -> Float { Float(bitPattern: try raw(UInt32.self)) }
    mutating func bool() throws -> Bool { try u8() != 0 }

    /// A count of items that each take at least `itemSize` bytes: checked against what is left.
    mutating func count(itemSize: Int) throws -> Int {
        let n = Int(try u32())
        guard n * max(itemSize, 1) <= bytes.count - offset else {
            throw RunnerProtocolError(description: "count \(n) larger than the message")
        }
        return n
    }

    mutating func string() throws -> String {
        let n = try count(itemSize: 1)
        defer { offset += n }
        return String(decoding: bytes[offset..<offset + n], as: UTF8.self)
    }

    mutating func optional<T>(_ read: (inout WireReader) throws -> T) throws -> T? {
        try bool() ? try read(&self) : nil
    }
}

/// Where an event's frame lies in shared memory, and how to read it.
struct SharedFrameReference: Equatable {
    var slot: UInt32
    var generation: UInt32
    /// Bytes of the slot's mapping.
    var capacity: UInt64
    /// The slot's descriptor travels with this message (the runner has not mapped this
    /// slot generation yet).
    var carriesDescriptor: Bool
    var width: UInt32
    var height: UInt32
    var stride: UInt32
    var channels: UInt32

    /// Bytes the frame occupies from the start of its slot.
    static func byteCount(width: Int, height: Int, stride: Int, channels: Int) -> Int {
        height == 0 ? 0 : (height - 1) * stride + width * channels
    }
}

extension WireWriter {
    /// An event with what occur_event carries; the frame as a reference into shared memory.
    mutating func event(_ e: Event, frame: SharedFrameReference?) {
        u32(e.kind.rawValue)
        u64(e.sequence)
        string(e.cameraID)
        i64(e.timestampNanos)
        f64(e.wallTime.timeIntervalSince1970)
        optional(e.frameIndex) { $0.i64($1) }
        optional(frame) { w, f in
            w.u32(f.slot); w.u32(f.generation); w.u64(f.capacity); w.bool(f.carriesDescriptor)
            w.u32(f.width); w.u32(f.height); w.u32(f.stride); w.u32(f.channels)
        }
        u32(UInt32(e.faces.count))
        for face in e.faces {
            i64(face.trackID)
            box(face.box)
            f64(face.score)
            u32(UInt32(face.landmarks.count))
            for point in face.landmarks { f64(point.x); f64(point.y) }
            optional(face.identity) { $0.string($1) }
            optional(face.distance) { $0.f64($1) }
            optional(face.embedding) { w, embedding in
                w.u32(UInt32(embedding.count))
                for value in embedding { w.f32(value) }
            }
        }
        string(e.payloadJSON)
        optional(e.sourcePlugin) { $0.string($1) }
        optional(e.resultKind) { $0.string($1) }
    }

    mutating func box(_ b: Box) { f64(b.x); f64(b.y); f64(b.width); f64(b.height) }

    mutating func result(_ r: PluginResult) {
        string(r.kind)
        string(r.payloadJSON)
        optional(r.trackID) { $0.i64($1) }
        optional(r.box) { $0.box($1) }
        optional(r.confidence) { $0.f64($1) }
    }
}

extension WireReader {
    /// The event, its frame made by `frame` from the reference (nil when the event has none).
    mutating func event(frame makeFrame: (SharedFrameReference) throws -> Frame) throws -> Event {
        guard let kind = EventKind(rawValue: try u32()) else { throw RunnerProtocolError(description: "unknown event kind") }
        let sequence = try u64()
        let camera = try string()
        let timestamp = try i64()
        let wallTime = Date(timeIntervalSince1970: try f64())
        let frameIndex = try optional { try $0.i64() }
        let reference = try optional { r in
            SharedFrameReference(slot: try r.u32(), generation: try r.u32(), capacity: try r.u64(),
                                 carriesDescriptor: try r.bool(), width: try r.u32(), height: try r.u32(),
                                 stride: try r.u32(), channels: try r.u32())
        }
        var faces: [Face] = []
        for _ in 0..<(try count(itemSize: 48)) {
            var face = Face(trackID: try i64(), box: try box(), score: try f64())
            for _ in 0..<(try count(itemSize: 16)) { face.landmarks.append((try f64(), try f64())) }
            face.identity = try optional { try $0.string() }
            face.distance = try optional { try $0.f64() }
            face.embedding = try optional { r in try (0..<(try r.count(itemSize: 4))).map { _ in try r.f32() } }
            faces.append(face)
        }
        let payload = try string()
        let source = try optional { try $0.string() }
        let resultKind = try optional { try $0.string() }
        return Event(kind: kind, sequence: sequence, cameraID: camera, timestampNanos: timestamp, wallTime: wallTime,
                     frame: try reference.map(makeFrame), frameIndex: frameIndex, faces: faces, payloadJSON: payload,
                     sourcePlugin: source, resultKind: resultKind)
    }

    mutating func box() throws -> Box { Box(x: try f64(), y: try f64(), width: try f64(), height: try f64()) }

    mutating func result() throws -> PluginResult {
        PluginResult(kind: try string(), payloadJSON: try string(), trackID: try optional { try $0.i64() },
                     box: try optional { try $0.box() }, confidence: try optional { try $0.f64() })
    }
}
