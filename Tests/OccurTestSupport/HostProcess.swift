import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `occur` running in the background, its output in files, for tests that signal it.
public final class HostProcess {
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String

    /// Starts `occur <arguments>` in `directory`.
    public init(_ arguments: [String], in directory: String) throws {
        stdoutPath = directory + "/occur-\(UUID().uuidString.prefix(8)).out"
        stderrPath = stdoutPath.replacingOccurrences(of: ".out", with: ".err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Fixtures.occurExecutable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    public func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits at most `seconds` for the process to end; SIGKILLs it and returns false if it did not.
    @discardableResult
    public func waitForExit(within seconds: Double) -> Bool {
        let end = Date(timeIntervalSinceNow: seconds)
        while process.isRunning, Date() < end { usleep(10_000) }
        if process.isRunning {
            send(SIGKILL)
            process.waitUntilExit()
            return false
        }
        process.waitUntilExit()
        return true
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Lines in a file that grows while it is read (a fixture plugin's record file).
public func lineCount(_ path: String) -> Int {
    guard let data = FileManager.default.contents(atPath: path) else { return 0 }
    return data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
}
