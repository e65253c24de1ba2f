// The audited place for the file descriptors and shared memory of `isolation: process`:
// the sockets to a plugin runner and the shared-memory slots frames travel in.
// (The system calls Swift cannot make are in the CIsolation target.) Every raw pointer's
// lifetime is written beside it.
import CIsolation
import Foundation
import Synchronization

/// One end of a stream socket to or from a runner, carrying length-prefixed messages
/// (RunnerProtocol.swift). Sending is thread-safe; receiving is for one thread at a time.
/// Owns its descriptor (closed in deinit) and any descriptors received and not taken.
final class RunnerChannel: @unchecked Sendable {
    let fd: Int32
    private let writeLock = NSLock()
    // Receive state: touched only by the one receiving thread.
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0
    private var end = 0
    private var receivedFDs: [Int32] = []

    init(fd: Int32) { self.fd = fd }

    deinit {
        close(fd)
        receivedFDs.forEach { close($0) }
    }

    /// Sends one finished message, with `descriptor` attached when given. False when the
    /// peer is gone.
    @discardableResult
    func send(_ message: [UInt8], passing descriptor: Int32? = nil) -> Bool {
        writeLock.lock()
        defer { writeLock.unlock() }
        return message.withUnsafeBytes { occur_iso_send(fd, $0.baseAddress, $0.count, descriptor ?? -1) } == 0
    }

    enum Received {
        case message(RunnerMessage, WireReader)
        case timeout
        /// End of stream or a socket error: the peer is gone.
        case closed
        case malformed(String)
    }

    /// The next message; waits up to `timeout` seconds (nil = for ever).
    func receive(timeout: Double? = nil) -> Received {
        let deadline = timeout.map { monotonicNanos() + Int64($0 * 1e9) }
        while true {
            if end - start >= 4 {
                let length = (0..<4).reduce(0) { $0 | Int(buffer[start + $1]) << (8 * $1) }
                guard length >= 1, length <= runnerMessageLimit else { return .malformed("message length \(length)") }
                if end - start >= 4 + length {
                    let body = Array(buffer[(start + 5)..<(start + 4 + length)])
                    let type = buffer[start + 4]
                    start += 4 + length
                    guard let kind = RunnerMessage(rawValue: type) else { return .malformed("unknown message type \(type)") }
                    return .message(kind, WireReader(body))
                }
                if 4 + length > buffer.count - start { makeRoom(for: 4 + length) }
            }
            if end == buffer.count { makeRoom(for: end - start + 1) }
            if let deadline {
                let left = Int32(clamping: max(0, (deadline - monotonicNanos()) / 1_000_000))
                let ready = occur_iso_wait_readable(fd, left)
                if ready == 0 { return .timeout }
                if ready < 0 { return .closed }
            }
            var fds = [Int32](repeating: -1, count: 8)
            var fdCount: Int32 = 0
            let n = buffer.withUnsafeMutableBytes { raw in
                occur_iso_recv(fd, raw.baseAddress! + end, raw.count - end, &fds, Int32(fds.count), &fdCount)
            }
            receivedFDs += fds.prefix(Int(fdCount))
            if n <= 0 { return .closed }
            end += n
        }
    }

    /// Moves unread bytes to the front and grows the buffer to hold at least `bytes`.
    private func makeRoom(for bytes: Int) {
        if start > 0 {
            buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
            end -= start
            start = 0
        }
        if buffer.count < bytes { buffer += [UInt8](repeating: 0, count: bytes - buffer.count) }
    }

    /// The oldest descriptor received and not yet taken; the caller owns it.
    func takeDescriptor() -> Int32? { receivedFDs.isEmpty ? nil : receivedFDs.removeFirst() }

    /// A connected pair: (this process's end, the end a runner inherits).
    static func pair() throws -> (RunnerChannel, Int32) {
        var fds: [Int32] = [-1, -1]
        guard occur_iso_socketpair(&fds) == 0 else { throw POSIXError.current("socketpair") }
        return (RunnerChannel(fd: fds[0]), fds[1])
    }
}

extension POSIXError {
    static func current(_ what: String) -> RunnerProtocolError {
        RunnerProtocolError(description: "\(what): \(String(cString: strerror(errno)))")
    }
}

/// Shared-memory slots that frames are copied into, once, for every isolated plugin that
/// receives them: a slot remembers which Frame it holds (Frames are immutable), so a second
/// runner given the same frame maps the same pages and nothing is copied again.
/// One store per host process (`shared`); each slot is its own memfd, mapped read-write
/// here and read-only in runners.
final class SharedFrameStore: Sendable {
    static let shared = SharedFrameStore()

    /// Slots kept at most while none is in use; more are made only when every slot is in use.
    static let idleSlots = 8

    /// One slot. `base` is this process's mapping of `fd` (read-write, `capacity` bytes):
    /// valid until the slot is replaced or the store ends, which happens only while no
    /// lease is out on it.
    private final class Slot: @unchecked Sendable {
        let fd: Int32
        let base: UnsafeMutableRawPointer
        let capacity: Int
        let generation: UInt32
        var frame: Frame?
        var leases = 0
        var lastUse: UInt64 = 0

        init(capacity: Int, generation: UInt32) throws {
            let fd = occur_iso_memfd("occur-frame", capacity)
            guard fd >= 0 else { throw POSIXError.current("memfd_create") }
            guard let base = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
                let error = POSIXError.current("mmap")
                close(fd)
                throw error
            }
            self.fd = fd
            self.base = base
            self.capacity = capacity
            self.generation = generation
        }

        deinit {
            munmap(base, capacity)
            close(fd)
        }
    }

    /// A frame held in a slot for one delivery: the runner may read it until `release`.
    struct Lease {
        let index: Int
        let generation: UInt32
        let descriptor: Int32
        let capacity: Int
    }

    struct Statistics: Sendable {
        var copies: UInt64 = 0
        var bytesCopied: UInt64 = 0
        var copyNanos: UInt64 = 0
        /// Frames found already in a slot (copied for another runner): no copy.
        var reused: UInt64 = 0
    }

    private struct State {
        var slots: [Slot] = []
        var clock: UInt64 = 0
        var nextGeneration: UInt32 = 1
        var statistics = Statistics()
    }

    private let state = Mutex(State())

    var statistics: Statistics { state.withLock { $0.statistics } }

    /// Puts `frame` in a slot (copying its pixels unless a slot holds it already) and leases
    /// the slot. The copy happens under the store's lock: other isolated workers wait for it.
    func lease(_ frame: Frame) throws -> Lease {
        let bytes = SharedFrameReference.byteCount(width: frame.width, height: frame.height, stride: frame.stride,
                                                   channels: frame.channels)
        return try state.withLock { s in
            s.clock += 1
            if let index = s.slots.firstIndex(where: { $0.frame === frame }) {
                let slot = s.slots[index]
                slot.leases += 1
                slot.lastUse = s.clock
                s.statistics.reused += 1
                return Lease(index: index, generation: slot.generation, descriptor: slot.fd, capacity: slot.capacity)
            }
            let free = s.slots.indices.filter { s.slots[$0].leases == 0 }
            let index: Int
            if s.slots.count < Self.idleSlots || free.isEmpty {
                index = s.slots.count
                s.slots.append(try Slot(capacity: Self.roundedUp(bytes), generation: s.nextGeneration))
                s.nextGeneration &+= 1
            } else {
                // The least recently used free slot; too small: a bigger memfd in its place.
                index = free.min { s.slots[$0].lastUse < s.slots[$1].lastUse }!
                if s.slots[index].capacity < bytes {
                    s.slots[index] = try Slot(capacity: Self.roundedUp(bytes), generation: s.nextGeneration)
                    s.nextGeneration &+= 1
                }
            }
            let slot = s.slots[index]
            let start = monotonicNanos()
            // frame.pixels is valid while `frame` lives (it is retained below, as the slot's occupant).
            slot.base.copyMemory(from: frame.pixels, byteCount: bytes)
            s.statistics.copyNanos += UInt64(max(0, monotonicNanos() - start))
            s.statistics.copies += 1
            s.statistics.bytesCopied += UInt64(bytes)
            slot.frame = frame
            slot.leases = 1
            slot.lastUse = s.clock
            return Lease(index: index, generation: slot.generation, descriptor: slot.fd, capacity: slot.capacity)
        }
    }

    func release(_ lease: Lease) {
        state.withLock { s in
            if lease.index < s.slots.count, s.slots[lease.index].generation == lease.generation {
                s.slots[lease.index].leases -= 1
            }
        }
    }

    private static func roundedUp(_ bytes: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return max(page, (bytes + page - 1) / page * page)
    }
}

/// A runner's read-only mappings of the host's frame slots, by slot index; a new generation
/// of a slot replaces the old mapping. Used by the runner's plugin thread only.
final class SharedFrameMappings {
    /// `base` maps `length` bytes read-only; valid until replaced by a newer generation of the
    /// same slot or until deinit. Frames made over it live only while one on_event call runs.
    private var slots: [UInt32: (generation: UInt32, base: UnsafeRawPointer, length: Int)] = [:]

    deinit { slots.values.forEach { munmap(UnsafeMutableRawPointer(mutating: $0.base), $0.length) } }

    /// A Frame over the referenced slot's pixels (no copy). `descriptor` is the slot's fd when
    /// the message carried one (it is mapped, then closed). The Frame is valid only until the
    /// next message is handled: the host reuses the slot once this delivery is answered.
    func frame(_ ref: SharedFrameReference, descriptor: Int32?) throws -> Frame {
        if let descriptor {
            defer { close(descriptor) }
            let length = Int(ref.capacity)
            guard let base = mmap(nil, length, PROT_READ, MAP_SHARED, descriptor, 0), base != MAP_FAILED else {
                throw POSIXError.current("mmap of a frame slot")
            }
            if let old = slots[ref.slot] { munmap(UnsafeMutableRawPointer(mutating: old.base), old.length) }
            slots[ref.slot] = (ref.generation, UnsafeRawPointer(base), length)
        }
        guard let slot = slots[ref.slot], slot.generation == ref.generation else {
            throw RunnerProtocolError(description: "frame slot \(ref.slot) generation \(ref.generation) is not mapped")
        }
        let bytes = SharedFrameReference.byteCount(width: Int(ref.width), height: Int(ref.height),
                                                   stride: Int(ref.stride), channels: Int(ref.channels))
        guard ref.channels == 1 || ref.channels == 3, Int(ref.stride) >= Int(ref.width * ref.channels),
              bytes <= slot.length else {
            throw RunnerProtocolError(description: "frame \(ref.width)x\(ref.height) does not fit its slot")
        }
        guard let frame = Frame.borrowing(slot.base.assumingMemoryBound(to: UInt8.self), width: Int(ref.width),
                                          height: Int(ref.height), stride: Int(ref.stride),
                                          channels: Int(ref.channels)) else {
            throw RunnerProtocolError(description: "cannot wrap frame slot \(ref.slot)")
        }
        return frame
    }
}
