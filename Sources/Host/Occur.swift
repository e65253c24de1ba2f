import ArgumentParser
import Foundation
import Logging
import OccurCore

@main
struct Occur: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "occur",
        abstract: "A headless AI camera host: finds faces in cameras and videos, logs events to SQLite, and hands them to analysis plugins (.so) loaded through a C ABI.",
        discussion: """
            Configuration: occur.yaml (cameras, detection, recognition, tracking, storage, api, retention) and plugins.yaml \
            (which plugins run, their cooldowns, queues and filters). The plugin contract is \
            Sources/PluginAPI/include/occur_plugin.h. While `occur run` runs, an HTTP API listens on \
            127.0.0.1:8970 (README "HTTP API").
            """,
        subcommands: [Run.self, Eval.self, Plugins.self, Events.self, Faces.self, Recognize.self, Keys.self, Tokens.self, Audit.self, CheckConfig.self, Bench.self,
                      PluginRunnerCommand.self])
}

/// --config and --plugins, shared by the commands that read them.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Host settings file.")
    var config = "occur.yaml"

    @Option(name: .long, help: "Plugin registry file.")
    var plugins = "plugins.yaml"

    func loadHost() throws -> HostConfiguration { try loadHostConfiguration(config) }

    func loadRegistry() throws -> PluginRegistry {
        do { return try PluginRegistry.load(contentsOf: plugins) } catch let error as ConfigError {
            throw CleanExit.message("error: \(error)", code: 2)
        }
    }
}

/// occur.yaml at `path`, or the defaults without one; a bad file exits 2 with its file:line error.
func loadHostConfiguration(_ path: String?) throws -> HostConfiguration {
    guard let path else { return HostConfiguration() }
    do { return try HostConfiguration.load(contentsOf: path) } catch let error as ConfigError {
        throw CleanExit.message("error: \(error)", code: 2)
    }
}

/// An error message and exit code, without a usage dump.
enum CleanExit {
    static func message(_ text: String, code: Int32) -> Error {
        FileHandle.standardError.write(Data((text + "\n").utf8))
        return ExitCode(code)
    }
}

func bootstrapLogging(level: String) -> Logger {
    let logLevel = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        return handler
    }
    return Logger(label: "occur")
}
