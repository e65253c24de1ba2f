// The one audited place where the host touches the plugin ABI's raw memory:
// dlopen/dlsym, the descriptor and host API tables, C callbacks, and the C form of events.
// Every pointer's lifetime is written beside it.
import Foundation
import Logging
import PluginAPI
import Synchronization

/// The ABI version this host implements.
public let hostABIMajor = UInt32(OCCUR_PLUGIN_ABI_MAJOR)
public let hostABIMinor = UInt32(OCCUR_PLUGIN_ABI_MINOR)

/// Why a library was not loaded. The description is the one log line an operator reads.
public enum PluginLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingLibrary(path: String)
    case dlopenFailed(path: String, message: String)
    case noEntrySymbol(path: String)
    case entryRefused(path: String)
    case structTooSmall(path: String, size: UInt32, required: Int)
    case versionMismatch(path: String, pluginMajor: UInt32, pluginMinor: UInt32)
    case idMismatch(path: String, expected: String, found: String)
    case createFailed(path: String, status: Int32)
    /// `checked` (the library, its directory, or a symlink's target) is group- or world-writable;
    /// `mode` is its permission bits.
    case writableByOthers(path: String, checked: String, mode: UInt32)
    /// `checked` belongs to a user other than root or the one the host runs as.
    case ownedByAnotherUser(path: String, checked: String, owner: UInt32)
    /// The file's SHA-256 differs from its `sha256` pin in plugins.yaml.
    case checksumMismatch(path: String, expected: String, found: String)
    case unreadable(path: String, message: String)
    /// `isolation: process`: the runner could not be started, or died or hung in create.
    case runnerFailed(path: String, message: String)

    /// Refused by the integrity checks before dlopen (PluginIntegrity): these are audited.
    public var isIntegrityFailure: Bool {
        switch self {
        case .writableByOthers, .ownedByAnotherUser, .checksumMismatch: true
        default: false
        }
    }

    public var description: String {
        let host = "host ABI \(hostABIMajor).\(hostABIMinor)"
        switch self {
        case let .missingLibrary(path): return "\(path): no such file"
        case let .dlopenFailed(path, message): return "\(path): dlopen failed: \(message)"
        case let .noEntrySymbol(path): return "\(path): no \(OCCUR_PLUGIN_ENTRY_SYMBOL) symbol (not an Occur plugin?)"
        case let .entryRefused(path): return "\(path): occur_plugin_entry returned NULL for \(host) (the plugin refuses this host)"
        case let .structTooSmall(path, size, required):
            return "\(path): descriptor struct_size \(size) is smaller than the \(required) bytes ABI \(hostABIMajor).0 requires"
        case let .versionMismatch(path, major, minor):
            let why = major != hostABIMajor ? "major versions differ" : "plugin needs a newer host"
            return "\(path): plugin ABI \(major).\(minor), \(host): \(why)"
        case let .idMismatch(path, expected, found):
            return "\(path): descriptor id '\(found)' differs from its key '\(expected)' in plugins.yaml"
        case let .createFailed(path, status): return "\(path): create failed with status \(status) (\(statusName(status)))"
        case let .writableByOthers(path, checked, mode):
            let who = [(S_IWGRP, "its group"), (S_IWOTH, "every user")].filter { mode & $0.0 != 0 }.map(\.1)
            return "\(path): \(checked == path ? "the file" : checked) is writable by \(who.joined(separator: " and ")) "
                + "(mode \(octalMode(mode))), so another user could replace the library; fix: chmod go-w \(checked)"
        case let .ownedByAnotherUser(path, checked, owner):
            let me = geteuid()
            let allowed = me == 0 ? "root (the user the host runs as)" : "root or \(userName(me)), the user the host runs as"
            return "\(path): \(checked == path ? "the file" : checked) is owned by \(userName(owner)), not by \(allowed), "
                + "so that user could replace the library; fix: chown \(me == 0 ? "root" : "\(me)") \(checked)"
        case let .checksumMismatch(path, expected, found):
            return "\(path): sha256 mismatch: expected \(expected), file has \(found) "
                + "(rebuilt or replaced? check the file, then update its sha256 in plugins.yaml)"
        case let .unreadable(path, message): return "\(path): cannot read the file: \(message)"
        case let .runnerFailed(path, message): return "\(path): plugin runner (isolation: process): \(message)"
        }
    }
}

func statusName(_ status: Int32) -> String {
    switch status {
    case OCCUR_OK: "OCCUR_OK"
    case OCCUR_ERR_FAILED: "OCCUR_ERR_FAILED"
    case OCCUR_ERR_INVALID_CONFIG: "OCCUR_ERR_INVALID_CONFIG"
    case OCCUR_ERR_INVALID_ARGUMENT: "OCCUR_ERR_INVALID_ARGUMENT"
    case OCCUR_ERR_UNSUPPORTED: "OCCUR_ERR_UNSUPPORTED"
    case OCCUR_ERR_NO_MEMORY: "OCCUR_ERR_NO_MEMORY"
    case OCCUR_ERR_INTERNAL: "OCCUR_ERR_INTERNAL"
    default: "unknown status"
    }
}

/// A loaded plugin library: its descriptor has passed every ABI check.
/// The library is never dlclose'd, so the descriptor pointer lives as long as the process.
public struct PluginLibrary: @unchecked Sendable {
    public let path: String
    public let id: String
    public let version: String
    public let summary: String
    public let abiMajor: UInt32
    public let abiMinor: UInt32
    /// Event kinds the plugin asks for.
    public let wantedEvents: Set<EventKind>
    // The descriptor's functions, copied once at load: code stays mapped (never dlclose'd).
    let create: @convention(c) (UnsafePointer<occur_host_api>?, UnsafePointer<CChar>?,
                                UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    let onEvent: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<occur_event>?) -> Int32
    let destroy: @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// The smallest descriptor this host accepts: everything up to `destroy` (ABI 1.0).
    static let requiredDescriptorSize =
        MemoryLayout<occur_plugin_descriptor>.offset(of: \occur_plugin_descriptor.destroy)!
        + MemoryLayout<UnsafeRawPointer>.size

    /// dlopen (RTLD_NOW | RTLD_LOCAL), find the entry, check the descriptor.
    /// `expectedID` is the plugin's key in plugins.yaml, or nil to accept any id.
    public static func load(path: String, expectedID: String?) throws(PluginLoadError) -> PluginLibrary {
        guard FileManager.default.fileExists(atPath: path) else { throw .missingLibrary(path: path) }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw .dlopenFailed(path: path, message: dlerror().map { String(cString: $0) } ?? "unknown error")
        }
        // Never dlclose: code and static descriptors of a plugin stay valid for the process.
        guard let symbol = dlsym(handle, OCCUR_PLUGIN_ENTRY_SYMBOL) else { throw .noEntrySymbol(path: path) }
        let entry = unsafeBitCast(symbol, to: occur_plugin_entry_fn.self)
        guard let d = entry(hostABIMajor, hostABIMinor) else { throw .entryRefused(path: path) }
        // Read struct_size and the version through raw loads first: never past struct_size.
        let raw = UnsafeRawPointer(d)
        let size = raw.load(as: UInt32.self)
        let versionEnd = MemoryLayout<occur_plugin_descriptor>.offset(of: \occur_plugin_descriptor.abi_minor)!
            + MemoryLayout<UInt32>.size
        guard Int(size) >= versionEnd else {
            throw .structTooSmall(path: path, size: size, required: requiredDescriptorSize)
        }
        let major = raw.load(fromByteOffset: 4, as: UInt32.self)
        let minor = raw.load(fromByteOffset: 8, as: UInt32.self)
        guard major == hostABIMajor, minor <= hostABIMinor else {
            throw .versionMismatch(path: path, pluginMajor: major, pluginMinor: minor)
        }
        guard Int(size) >= requiredDescriptorSize else {
            throw .structTooSmall(path: path, size: size, required: requiredDescriptorSize)
        }
        // Every ABI 1.0 field lies within struct_size now; fields of later minors are read
        // only after checking struct_size covers them.
        let descriptor = d.pointee
        guard let create = descriptor.create, let onEvent = descriptor.on_event, let destroy = descriptor.destroy,
              let idPointer = descriptor.id else {
            throw .dlopenFailed(path: path, message: "descriptor has a NULL id or function")
        }
        let id = String(cString: idPointer)
        if let expectedID, id != expectedID { throw .idMismatch(path: path, expected: expectedID, found: id) }
        return PluginLibrary(
            path: path, id: id,
            version: descriptor.version.map { String(cString: $0) } ?? "",
            summary: descriptor.description.map { String(cString: $0) } ?? "",
            abiMajor: major, abiMinor: minor,
            wantedEvents: EventKind.kinds(inMask: descriptor.events, abiMinor: minor),
            create: create, onEvent: onEvent, destroy: destroy)
    }
}

/// A result a plugin sent through host->emit, copied out of C memory.
public struct PluginResult: Sendable {
    public var kind: String
    public var payloadJSON: String
    public var trackID: Int64?
    public var box: Box?
    public var confidence: Double?
}

/// What the host knows about one plugin instance while C code holds its context pointer.
/// Retained (via Unmanaged) from create until destroy returns.
final class PluginHostContext: @unchecked Sendable {
    let pluginID: String
    let logger: Logger
    /// Called by emit with the copied result and the event being handled, if any.
    let onEmit: @Sendable (PluginResult, Event?) -> Void
    /// The event being delivered on the worker thread. Written and read only by that
    /// thread (emit compares the calling thread), hence no lock.
    nonisolated(unsafe) var current: Event?
    nonisolated(unsafe) var workerThread: pthread_t?

    init(pluginID: String, logger: Logger, onEmit: @escaping @Sendable (PluginResult, Event?) -> Void) {
        self.pluginID = pluginID
        self.logger = logger
        self.onEmit = onEmit
    }

    var eventOnThisThread: Event? {
        guard let workerThread, pthread_equal(workerThread, pthread_self()) != 0 else { return nil }
        return current
    }
}

/// The C callbacks of the host API table. `context` is an Unmanaged PluginHostContext.
private func hostContext(_ context: OpaquePointer?) -> PluginHostContext? {
    guard let context else { return nil }
    return Unmanaged<PluginHostContext>.fromOpaque(UnsafeRawPointer(context)).takeUnretainedValue()
}

private let hostLog: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?) -> Void = { context, level, message in
    guard let host = hostContext(context), let message else { return }
    let text = String(cString: message)
    let logLevel: Logger.Level = switch level {
    case OCCUR_LOG_DEBUG: .debug
    case OCCUR_LOG_INFO: .info
    case OCCUR_LOG_WARN: .warning
    default: .error
    }
    host.logger.log(level: logLevel, "\(text)", metadata: ["plugin.id": "\(host.pluginID)"])
}

private let hostEmit: @convention(c) (OpaquePointer?, UnsafePointer<occur_result>?) -> Int32 = { context, result in
    emitResult(context: context, result: result)
}

/// True when a struct of `size` bytes (its struct_size) contains the field at `path`.
private func contains<T>(_ size: UInt32, _ path: KeyPath<occur_result, T>) -> Bool {
    MemoryLayout<occur_result>.offset(of: path)! + MemoryLayout<T>.size <= Int(size)
}

private func emitResult(context: OpaquePointer?, result: UnsafePointer<occur_result>?) -> Int32 {
    guard let host = hostContext(context), let result else { return OCCUR_ERR_INVALID_ARGUMENT }
    let r = result.pointee
    let has = { (path: PartialKeyPath<occur_result>) -> Bool in
        switch path {
        case \occur_result.kind: contains(r.struct_size, \occur_result.kind)
        case \occur_result.payload_json: contains(r.struct_size, \occur_result.payload_json)
        case \occur_result.track_id: contains(r.struct_size, \occur_result.track_id)
        case \occur_result.box: contains(r.struct_size, \occur_result.box)
        default: contains(r.struct_size, \occur_result.confidence)
        }
    }
    guard has(\.kind), let kindPointer = r.kind else {
        host.logger.warning("emit without a kind: ignored", metadata: ["plugin.id": "\(host.pluginID)"])
        return OCCUR_ERR_INVALID_ARGUMENT
    }
    let kind = String(cString: kindPointer)
    let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_.")
    guard !kind.isEmpty, kind.count <= 64, kind.allSatisfy({ allowed.contains($0) }) else {
        host.logger.warning("emit with an invalid kind '\(kind)': use [a-z0-9_.]", metadata: ["plugin.id": "\(host.pluginID)"])
        return OCCUR_ERR_INVALID_ARGUMENT
    }
    let payload = has(\.payload_json) ? r.payload_json.map { String(cString: $0) } ?? "{}" : "{}"
    guard let data = payload.data(using: .utf8),
          (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
        host.logger.warning("emit '\(kind)' with a payload that is not a JSON object: ignored",
                            metadata: ["plugin.id": "\(host.pluginID)"])
        return OCCUR_ERR_INVALID_ARGUMENT
    }
    let track = has(\.track_id) && r.track_id >= 0 ? r.track_id : nil
    let box = has(\.box) && r.has_box != 0
        ? Box(x: Double(r.box.x), y: Double(r.box.y), width: Double(r.box.width), height: Double(r.box.height)) : nil
    let confidence = has(\.confidence) && r.confidence >= 0 ? Double(r.confidence) : nil
    host.onEmit(PluginResult(kind: kind, payloadJSON: payload, trackID: track, box: box, confidence: confidence),
                host.eventOnThisThread)
    return OCCUR_OK
}

private let hostMonotonic: @convention(c) (OpaquePointer?) -> Int64 = { _ in monotonicNanos() }

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// One created plugin instance. Not thread-safe by design: its owner (a PluginWorker)
/// calls it from one thread at a time, as the ABI's thread rule says.
final class PluginInstance: @unchecked Sendable {
    let library: PluginLibrary
    let context: PluginHostContext
    /// The host API table handed to create; allocated here, freed after destroy returns.
    private let hostAPI: UnsafeMutablePointer<occur_host_api>
    /// The plugin's own state; owned by the plugin, freed by its destroy.
    private var instance: UnsafeMutableRawPointer?
    private var destroyed = false

    init(library: PluginLibrary, context: PluginHostContext) {
        self.library = library
        self.context = context
        hostAPI = .allocate(capacity: 1)
        hostAPI.initialize(to: occur_host_api(
            struct_size: UInt32(MemoryLayout<occur_host_api>.size),
            abi_major: hostABIMajor, abi_minor: hostABIMinor,
            context: OpaquePointer(Unmanaged.passRetained(context).toOpaque()),
            log: hostLog, emit: hostEmit, monotonic_ns: hostMonotonic))
    }

    /// Calls the plugin's create, once, on the worker thread. On failure nothing else
    /// of the plugin is ever called and the host API table is freed.
    func create(configJSON: String) throws(PluginLoadError) {
        var out: UnsafeMutableRawPointer?
        let status = configJSON.withCString { library.create(hostAPI, $0, &out) }
        guard status == OCCUR_OK else {
            destroyed = true
            releaseHostAPI()
            throw .createFailed(path: library.path, status: status)
        }
        instance = out
    }

    /// Calls on_event with one event; returns the plugin's status. Called on the worker thread only.
    func callOnEvent(_ event: Event) -> Int32 {
        context.current = event
        defer { context.current = nil }
        return event.cForm.withCEvent(of: event) { library.onEvent(instance, $0) }
    }

    /// Calls the plugin's destroy once; no call follows.
    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        library.destroy(instance)
        releaseHostAPI()
    }

    private func releaseHostAPI() {
        Unmanaged<PluginHostContext>.fromOpaque(UnsafeRawPointer(hostAPI.pointee.context!)).release()
        hostAPI.deinitialize(count: 1)
        hostAPI.deallocate()
    }

    func bindWorkerThread() { context.workerThread = pthread_self() }
}

/// The C form of one Event, built on its first delivery and shared by every plugin that
/// receives it. Everything it points to (strings, faces, embeddings, the frame struct) is
/// malloc'd here and freed with the Event; pixels belong to the Event's Frame.
final class CEventStorage: @unchecked Sendable {
    private struct Built {
        var event: UnsafeMutablePointer<occur_event>?
        var allocations: [UnsafeMutableRawPointer] = []

        mutating func keep<T>(_ count: Int, _ type: T.Type) -> UnsafeMutablePointer<T> {
            let raw = malloc(MemoryLayout<T>.stride * max(count, 1))!
            allocations.append(raw)
            return raw.bindMemory(to: T.self, capacity: max(count, 1))
        }

        mutating func cString(_ s: String) -> UnsafePointer<CChar> {
            let p = strdup(s)!
            allocations.append(UnsafeMutableRawPointer(p))
            return UnsafePointer(p)
        }
    }

    private let built = Mutex(Built())

    func withCEvent<R>(of event: Event, _ body: (UnsafePointer<occur_event>) -> R) -> R {
        let pointer = built.withLock { state in
            if let existing = state.event { return existing }
            let made = Self.build(event, into: &state)
            state.event = made
            return made
        }
        // The pointer stays valid while `event` (which owns this storage) is alive.
        return withExtendedLifetime(event) { body(UnsafePointer(pointer)) }
    }

    private static func build(_ event: Event, into s: inout Built) -> UnsafeMutablePointer<occur_event> {
        var cFrame: UnsafeMutablePointer<occur_frame>?
        if let frame = event.frame {
            let f = s.keep(1, occur_frame.self)
            f.initialize(to: occur_frame(
                struct_size: UInt32(MemoryLayout<occur_frame>.size),
                width: UInt32(frame.width), height: UInt32(frame.height), stride: UInt32(frame.stride),
                pixel_format: UInt32(frame.channels == 1 ? OCCUR_PIXEL_GRAY8 : OCCUR_PIXEL_BGR8),
                pixels: frame.pixels, frame_index: UInt64(max(0, event.frameIndex ?? 0))))
            cFrame = f
        }
        let faces = s.keep(event.faces.count, occur_face.self)
        for (i, face) in event.faces.enumerated() {
            var c = occur_face()
            c.struct_size = UInt32(MemoryLayout<occur_face>.size)
            c.track_id = face.trackID
            c.box = occur_box(x: Float(face.box.x), y: Float(face.box.y),
                              width: Float(face.box.width), height: Float(face.box.height))
            c.score = Float(face.score)
            c.landmark_count = UInt32(min(face.landmarks.count, 5))
            withUnsafeMutableBytes(of: &c.landmarks) { raw in
                let points = raw.bindMemory(to: occur_point.self)
                for (j, point) in face.landmarks.prefix(5).enumerated() {
                    points[j] = occur_point(x: Float(point.x), y: Float(point.y))
                }
            }
            c.identity = face.identity.map { s.cString($0) }
            c.distance = Float(face.distance ?? -1)
            if let embedding = face.embedding {
                let e = s.keep(embedding.count, Float.self)
                e.initialize(from: embedding, count: embedding.count)
                c.embedding = UnsafePointer(e)
                c.embedding_dim = UInt32(embedding.count)
            }
            (faces + i).initialize(to: c)
        }
        let e = s.keep(1, occur_event.self)
        e.initialize(to: occur_event(
            struct_size: UInt32(MemoryLayout<occur_event>.size),
            kind: event.kind.rawValue, sequence: event.sequence,
            camera_id: s.cString(event.cameraID),
            timestamp_ns: event.timestampNanos,
            wall_time_ms: Int64(event.wallTime.timeIntervalSince1970 * 1000),
            frame: cFrame.map { UnsafePointer($0) },
            face_count: UInt32(event.faces.count),
            face_size: UInt32(MemoryLayout<occur_face>.stride),
            faces: UnsafePointer(faces),
            payload_json: s.cString(event.payloadJSON),
            source_plugin: event.sourcePlugin.map { s.cString($0) },
            result_kind: event.resultKind.map { s.cString($0) }))
        return e
    }

    deinit {
        // Plain C data only (no Swift objects inside), so free is enough.
        built.withLock { $0.allocations.forEach { free($0) } }
    }
}
