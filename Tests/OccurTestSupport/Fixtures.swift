import Foundation
import Logging
import OccurCore

/// Where the package's build products and the sample data are, for tests.
public enum Fixtures {
    /// The build directory holding `occur` and the fixture plugins (next to the test binary).
    public static let buildDirectory: String = {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = (exe as NSString).deletingLastPathComponent
            for _ in 0..<4 {
                candidates.append(dir)
                dir = (dir as NSString).deletingLastPathComponent
            }
        }
        let root = packageRoot
        candidates += [root + "/.build/debug", root + "/.build/release"]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/libFixtureOK.so") }
            ?? root + "/.build/debug"
    }()

    public static let packageRoot: String = {
        // Tests/OccurTestSupport/Fixtures.swift -> the package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// lib<name>.so built by the package.
    public static func plugin(_ name: String) -> String { "\(buildDirectory)/lib\(name).so" }

    public static var occurExecutable: String { "\(buildDirectory)/occur" }

    /// Face photos from the face_recognition sdist, put there by scripts/setup:
    /// `$OCCUR_SAMPLES/faces`, else `$OCCUR_CACHE/samples/faces`, else `~/.cache/occur/samples/faces`.
    public static var facesDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let samples = environment["OCCUR_SAMPLES"], !samples.isEmpty { return samples + "/faces" }
        let cache = environment["OCCUR_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/occur")
        return cache + "/samples/faces"
    }

    public static func faceImage(_ name: String) -> String { facesDirectory + "/" + name }

    /// Real labelled data shared by the developers and CI (`../shared/data` beside the clone,
    /// or `$OCCUR_SHARED_DATA`): masks-dev/{with_mask,without_mask}.
    public static var sharedData: String {
        ProcessInfo.processInfo.environment["OCCUR_SHARED_DATA"]
            ?? ((packageRoot as NSString).deletingLastPathComponent + "/shared/data")
    }

    /// dlib's example photos with hand-labelled face boxes (Debian libdlib19.1).
    public static let dlibFaces = "/usr/share/doc/libdlib19.1/examples/faces"

    /// Debian opencv-doc's sample data.
    public static let openCVData = "/usr/share/doc/opencv-doc/examples/data"

    public static let haarCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

    /// A fresh temporary directory.
    public static func temporaryDirectory(_ label: String = "test") -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("occur-\(label)-\(UUID().uuidString.prefix(8))").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static let logger: Logger = {
        var logger = Logger(label: "occur.test")
        logger.logLevel = .critical
        return logger
    }()
}

/// One line of fixture_ok's record file.
public struct RecordedEvent: Equatable, Sendable {
    public var kind: UInt32
    public var camera: String
    public var track: Int64
    public var timestampNanos: Int64
    public var sequence: UInt64
    public var faceCount: Int
    public var frameIndex: Int64
    public var pixels: String
    public var resultKind: String

    /// Reads every line fixture_ok wrote to `path`.
    public static func read(_ path: String) -> [RecordedEvent] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 9 else { return nil }
            return RecordedEvent(kind: UInt32(f[0])!, camera: f[1], track: Int64(f[2])!, timestampNanos: Int64(f[3])!,
                                 sequence: UInt64(f[4])!, faceCount: Int(f[5])!, frameIndex: Int64(f[6])!,
                                 pixels: f[7], resultKind: f[8])
        }
    }
}

extension PluginSettings {
    /// Settings for a fixture plugin: enabled, every event kind, the given config.
    public static func fixture(_ id: String, library: String, config: String = "{}",
                               events: Set<EventKind> = Set(EventKind.allCases)) -> PluginSettings {
        var s = PluginSettings(id: id)
        s.enabled = true
        s.library = library
        s.configJSON = config
        s.events = events
        return s
    }
}

/// Runs a command to completion; returns its exit status and output.
public func runProcess(_ executable: String, _ arguments: [String], currentDirectory: String? = nil)
    throws -> (status: Int32, stdout: String, stderr: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes concurrently so neither fills up and blocks the child.
    let errData = LockedData()
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.isSet { usleep(1000) }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.value, as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return data != nil }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data ?? Data() }
}
