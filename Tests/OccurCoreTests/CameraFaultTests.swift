import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import OccurTestSupport
@testable import OccurCore

/// Cameras that go wrong: a truncated video, a folder of damaged images, and a network stream
/// that goes away (served on loopback by Debian's ffmpeg) and comes back. Each is skipped or
/// reopened and reported, and the other cameras of the run carry on.
@Suite(.serialized) struct CameraFaultTests {
    static let megamind = Fixtures.openCVData + "/Megamind.avi"
    static let ffmpeg = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The first 40% of Megamind.avi: its header still announces all 270 frames.
    static func truncatedVideo(in dir: String) throws -> String {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: megamind))
        let path = dir + "/cut.avi"
        try bytes.prefix(bytes.count * 40 / 100).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Two good photos and five damaged files (named bad-*) in a fresh folder, plus one JPEG
    /// whose scan data is garbled but structurally complete.
    static func damagedImages(in dir: String) throws -> (path: String, good: Int, bad: [String]) {
        let folder = dir + "/images"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: Fixtures.faceImage(name))) }
        func write(_ data: Data, _ name: String) throws { try data.write(to: URL(fileURLWithPath: folder + "/" + name)) }
        var random = SeededRandom(seed: 7)
        try write(bytes("obama.jpg"), "a-good.jpg")
        try write(bytes("biden.jpg"), "b-good.jpg")
        let obama2 = try bytes("obama2.jpg")
        try write(obama2.prefix(obama2.count / 2), "bad-half.jpg")                       // cut in the scan data
        try write(obama2.prefix(300), "bad-headers.jpg")                                // cut in the headers
        try write(Data((0..<4096).map { _ in random.byte() }), "bad-noise.jpg")          // not an image at all
        var noSOI = obama2
        noSOI.replaceSubrange(0..<4, with: [0x00, 0x11, 0x22, 0x33])
        try write(noSOI, "bad-start.jpg")                                               // start of image overwritten
        let png = try bytes("32bit.png")
        try write(png.prefix(png.count / 2), "bad-half.png")
        // Garbage (no 0xFF, so no false markers) in the middle of the scan: libjpeg decodes
        // it with artefacts, as it does for any camera's damaged-but-complete file.
        var smeared = try bytes("obama3.jpg")
        let middle = smeared.count / 2
        smeared.replaceSubrange(middle..<middle + 2000, with: (0..<2000).map { _ in random.byte() % 0xFF })
        try write(smeared, "c-smeared.jpg")
        return (folder, 3, ["bad-half.jpg", "bad-headers.jpg", "bad-noise.jpg", "bad-start.jpg", "bad-half.png"])
    }

    // MARK: files

    @Test func aTruncatedVideoEndsWhereItsDataEndsWithAWarningNamingTheFile() throws {
        let dir = Fixtures.temporaryDirectory("cut")
        let path = try Self.truncatedVideo(in: dir)
        let log = LogLines()
        let source = try CameraSource(configuration: CameraConfiguration(id: "cut", source: path), logger: log.logger,
                                      shouldStop: { false })
        var frames = 0
        while source.next() != nil { frames += 1 }
        #expect(frames > 50 && frames < 270, "\(frames) frames decoded from 40% of the clip")
        let warning = log.lines.withLock { $0 }.first { $0.contains("ended after") }
        #expect(warning == "video file \(path) ended after \(frames) of the 270 frames its header announces: "
                + "truncated or damaged; the rest is skipped")
    }

    @Test func damagedImagesAreSkippedOneByOneEachNamed() throws {
        let dir = Fixtures.temporaryDirectory("damaged")
        let images = try Self.damagedImages(in: dir)
        let log = LogLines()
        let source = try CameraSource(configuration: CameraConfiguration(id: "stills", source: images.path),
                                      logger: log.logger, shouldStop: { false })
        var read: [String] = []
        while source.next() != nil { read.append((source.currentImagePath! as NSString).lastPathComponent) }
        #expect(read == ["a-good.jpg", "b-good.jpg", "c-smeared.jpg"])
        #expect(source.unreadableImages == images.bad.count)
        let warnings = log.lines.withLock { $0 }.filter { $0.hasPrefix("skipping an unreadable image: ") }
        for name in images.bad {
            #expect(warnings.filter { $0.hasSuffix(images.path + "/" + name) }.count == 1, "no single warning for \(name)")
        }
        #expect(warnings.contains("skipping an unreadable image: truncated JPEG (no end-of-image marker): \(images.path)/bad-half.jpg"))
    }

    /// A whole run: the truncated video, the damaged folder and a good video side by side.
    @Test func brokenFilesDoNotDisturbTheOtherCamerasOfARun() async throws {
        let dir = Fixtures.temporaryDirectory("faulty-run")
        let cut = try Self.truncatedVideo(in: dir)
        let images = try Self.damagedImages(in: dir)
        try """
            data_dir: ./data
            api: { enabled: false }
            detection: { detector: haar }
            recognition: { backend: none, snapshots: false }
            cameras:
              cut: { source: \(cut) }
              stills: { source: \(images.path) }
              good: { source: \(Self.megamind), every_n_frames: 5 }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let runtime = try HostRuntime(configuration: HostConfiguration.load(contentsOf: dir + "/occur.yaml"),
                                      registry: PluginRegistry(pluginsDir: dir, plugins: []), logger: Fixtures.logger)
        try await runtime.run()   // returns when every camera has ended

        let counters = Dictionary(uniqueKeysWithValues: runtime.cameras.map { ($0.configuration.id, $0.counters) })
        for (id, c) in counters {
            #expect(c.ended && c.error == nil, "camera \(id): \(c.error ?? "did not end")")
        }
        #expect(counters["good"]?.framesProcessed == 54)   // 270 frames, one in five: as if alone
        #expect(counters["good"]?.facesDetected ?? 0 > 0)
        #expect((50..<270).contains(counters["cut"]?.framesProcessed ?? 0))
        #expect(counters["stills"]?.framesProcessed == Int64(images.good))
        #expect(counters["stills"]?.unreadableImages == images.bad.count)
        var query = EventStore.Query()
        query.limit = 10_000
        let cameras = Set(try runtime.store.events(query).filter { $0.kind == "face_appeared" }.map(\.camera))
        #expect(cameras == ["cut", "stills", "good"])
    }

    // MARK: a network stream

    @Test(.enabled(if: ffmpeg != nil, "ffmpeg is not installed (scripts/setup installs it)"))
    func aStreamThatDropsOrStallsIsReportedAndReopenedWhileTheOthersRunOn() async throws {
        let dir = Fixtures.temporaryDirectory("stream")
        let port = try freeLoopbackPort()
        try """
            data_dir: ./data
            api: { enabled: false }
            detection: { detector: haar }
            recognition: { backend: none, snapshots: false }
            cameras:
              street: { source: "http://127.0.0.1:\(port)/", stall_seconds: 2 }
              lobby: { source: \(Self.megamind), loop: true, realtime: true }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let log = LogLines()
        let runtime = try HostRuntime(configuration: HostConfiguration.load(contentsOf: dir + "/occur.yaml"),
                                      registry: PluginRegistry(pluginsDir: dir, plugins: []), logger: log.logger)
        let street = try #require(runtime.cameras.first { $0.configuration.id == "street" })
        let lobby = try #require(runtime.cameras.first { $0.configuration.id == "lobby" })
        var server = try MJPEGServer(port: port)
        try await waitUntil("ffmpeg listening") { isListening(port: port) }   // so the first open succeeds
        let run = Task { try await runtime.run() }
        defer {
            runtime.cameras.forEach { $0.stop() }   // also when a wait below gives up
            server.kill()
        }

        try await waitUntil("frames from the stream") { street.counters.framesProcessed > 10 }

        // 1. The server goes away: the read fails at once.
        server.kill()
        try await waitUntil("the disconnect is noticed") { street.counters.disconnectReason != nil }
        #expect(street.counters.disconnectReason == "the source stopped delivering frames (closed, or a read failed)")
        #expect(street.counters.disconnects == 1 && !street.counters.open)
        let down = try await readyz(runtime)
        #expect(down.status == 503)
        #expect(down.problems.contains(
            "camera street: disconnected (the source stopped delivering frames (closed, or a read failed)); reopening with backoff"))
        let metrics = runtime.metrics.render(cameras: runtime.cameras, workers: [])
        #expect(metrics.contains(#"occur_camera_disconnects_total{camera="street"} 1"#))
        #expect(metrics.contains(#"occur_camera_up{camera="street"} 0"#))
        // Retried with backoff while the other camera runs on.
        let lobbyFrames = lobby.counters.framesProcessed
        try await waitUntil("a second failed reopening") { log.contains("still unavailable (attempt 2)") }
        #expect(lobby.counters.framesProcessed > lobbyFrames)

        // The server is back: frames flow again.
        let before = street.counters.framesProcessed
        server = try MJPEGServer(port: port)
        try await waitUntil("the reconnect") { street.counters.reconnects == 1 && street.counters.framesProcessed > before + 10 }
        #expect(street.counters.disconnectReason == nil && street.counters.open)
        let up = try await readyz(runtime)
        #expect(up.status == 200 && up.problems.isEmpty, "\(up.problems)")

        // 2. The server hangs (SIGSTOP): nothing arrives, and stall_seconds ends the wait.
        server.pause()
        try await waitUntil("the stall is noticed") { street.counters.disconnects == 2 }
        #expect(street.counters.disconnectReason?.hasPrefix("no frame for ") == true)
        #expect(street.counters.disconnectReason?.hasSuffix(" s (stall_seconds 2.0)") == true)
        // The blocked read was ended by stall_seconds, not by OpenCV's own default of 30 s.
        let waited = street.counters.disconnectReason.flatMap { Double($0.dropFirst("no frame for ".count).prefix { $0 != " " }) }
        #expect((waited ?? 99) < 30, "\(street.counters.disconnectReason ?? "")")
        server.kill()
        server = try MJPEGServer(port: port)
        try await waitUntil("the second reconnect") { street.counters.reconnects == 2 && street.counters.disconnectReason == nil }

        runtime.cameras.forEach { $0.stop() }
        try await run.value

        var query = EventStore.Query()
        query.kinds = ["camera_disconnected", "camera_reconnected"]
        let events = try runtime.store.events(query)
        try #require(events.map(\.kind) == ["camera_disconnected", "camera_reconnected", "camera_disconnected", "camera_reconnected"])
        #expect(events.allSatisfy { $0.camera == "street" && $0.plugin == nil })
        let first = try JSONSerialization.jsonObject(with: Data(events[0].payload.utf8)) as? [String: Any]
        #expect(first?["reason"] as? String == "the source stopped delivering frames (closed, or a read failed)")
        let back = try JSONSerialization.jsonObject(with: Data(events[1].payload.utf8)) as? [String: Any]
        #expect((back?["attempts"] as? Int ?? 0) >= 3)   // two failed reopenings before the server returned
        #expect(back?["down_seconds"] as? NSNumber != nil)
    }

    @Test func aStreamThatCannotBeOpenedAtStartIsRetriedNotFailed() throws {
        let port = try freeLoopbackPort()   // nothing listens there
        var camera = CameraConfiguration(id: "door", source: "http://user:secret@127.0.0.1:\(port)/")
        camera.stallSeconds = 1
        var changes: [SourceConnectionChange] = []
        var asked = 0
        let source = try CameraSource(configuration: camera, logger: Fixtures.logger, shouldStop: {
            asked += 1
            return !changes.isEmpty && asked > 40   // about two seconds of backoff
        }, onConnectionChange: { changes.append($0) })
        #expect(source.next() == nil)
        #expect(source.disconnects == 1)
        guard case let .lost(reason) = changes.first else { Issue.record("no loss reported"); return }
        #expect(reason.hasPrefix("cannot open: OpenCV could not open http://***@127.0.0.1:\(port)/"))
        #expect(!reason.contains("secret"))
    }

    @Test func credentialsAreRedactedFromReasons() {
        #expect(redactingCredentials("OpenCV could not open rtsp://admin:pw@10.0.0.5:554/live") ==
                "OpenCV could not open rtsp://***@10.0.0.5:554/live")
        #expect(redactingCredentials("http://10.0.0.5/a@b") == "http://10.0.0.5/a@b")
    }
}

// MARK: helpers

/// GET /readyz through the router: the status code and the problems listed.
func readyz(_ runtime: HostRuntime) async throws -> (status: Int, problems: [String]) {
    try await runtime.controlAPI.application().test(.router) { client in
        try await client.execute(uri: "/readyz", method: .get) { response in
            let object = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
            return (response.status.code, object?["problems"] as? [String] ?? [])
        }
    }
}

/// True when something listens on 127.0.0.1:`port` (read from /proc/net/tcp, without
/// connecting: ffmpeg's `-listen 1` serves the first client only).
func isListening(port: Int) -> Bool {
    guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return false }
    let local = String(format: "0100007F:%04X", port)
    return table.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 3 && fields[1] == local && fields[3] == "0A"   // 0A: LISTEN
    }
}

/// Polls `condition` every 100 ms; fails the test if it has not held after `seconds`
/// (generous: this waits for outcomes, it does not time them).
func waitUntil(_ what: String, seconds: Double = 45, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else {
            Issue.record("gave up waiting for: \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Debian's ffmpeg serving Megamind.avi (looped, at its own pace) as an MJPEG stream over
/// HTTP on loopback, to one client.
struct MJPEGServer {
    let process = Process()

    init(port: Int) throws {
        process.executableURL = URL(fileURLWithPath: CameraFaultTests.ffmpeg ?? "/usr/bin/ffmpeg")
        process.arguments = ["-hide_banner", "-loglevel", "quiet", "-re", "-stream_loop", "-1",
                             "-i", CameraFaultTests.megamind, "-vf", "scale=360:-2", "-q:v", "5",
                             "-f", "mpjpeg", "-listen", "1", "http://127.0.0.1:\(port)/"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// SIGSTOP: the connection stays open and nothing more is sent.
    func pause() { Glibc.kill(process.processIdentifier, SIGSTOP) }

    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same cases.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}

extension LogLines {
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
}
