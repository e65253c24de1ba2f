import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    /// The child a plugin with `isolation: process` runs in. Started by the host itself, with
    /// its channels on fds 3 and 4 (see Sources/OccurCore/PluginRunner.swift); not for people.
    struct PluginRunnerCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plugin-runner",
            abstract: "Runs one plugin for its host (isolation: process). Started by the host only.",
            shouldDisplay: false)

        @Option(help: "The plugin library.") var library: String
        @Option(help: "The plugin id (its key in plugins.yaml).") var id: String
        @Option(help: "The host's pid: the runner exits when that process is gone.") var parent: Int32

        func run() throws {
            let code = PluginRunner.run(libraryPath: library, pluginID: id, parent: parent)
            if code != 0 { throw ExitCode(code) }
        }
    }
}
