import Foundation
import Logging
import OccurCore
import Synchronization

/// Results a plugin emitted, in order (its worker thread appends, the test reads).
public final class EmittedResults: Sendable {
    private let results = Mutex<[PluginResult]>([])

    public init() {}

    public func append(_ r: PluginResult) { results.withLock { $0.append(r) } }

    public var all: [PluginResult] { results.withLock { $0 } }

    /// The JSON payloads of the results of one kind.
    public func payloads(_ kind: String) -> [[String: Any]] {
        all.filter { $0.kind == kind }.map {
            (try? JSONSerialization.jsonObject(with: Data($0.payloadJSON.utf8))) as? [String: Any] ?? [:]
        }
    }
}

/// Log lines a plugin wrote through host->log (for create-time error messages).
public final class LogLines: Sendable {
    public let lines = Mutex<[String]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "occur.test.plugin") { _ in LineHandler(sink: self) }
    }

    struct LineHandler: LogHandler {
        let sink: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            sink.lines.withLock { $0.append("\(message)") }
        }
    }
}
