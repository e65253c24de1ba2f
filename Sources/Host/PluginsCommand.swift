import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    struct Plugins: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every plugin library: loaded, disabled, or refused (and why).",
            discussion: "Enabled plugins are dlopen'ed and their ABI checked; nothing is created. Libraries in plugins_dir that plugins.yaml does not name are listed, never loaded.")

        @Option(name: .long, help: "Plugin registry file.")
        var plugins = "plugins.yaml"

        @Flag(help: "Also print each library's SHA-256, as plugins.yaml's `sha256:` pins it.")
        var sha256 = false

        func run() throws {
            let registry: PluginRegistry
            do { registry = try PluginRegistry.load(contentsOf: plugins) } catch let error as ConfigError {
                throw CleanExit.message("error: \(error)", code: 2)
            }
            print("plugins_dir: \(registry.pluginsDir)  (host ABI \(hostABIMajor).\(hostABIMinor))")
            let statuses = PluginLoader(registry: registry).scan()
            if statuses.isEmpty { print("no plugins configured or found") }
            for status in statuses {
                let name = (status.path as NSString).lastPathComponent
                var line = "\(status.id ?? "-")  \(name)  \(status.stateText)"
                if let library = status.library {
                    line += "  v\(library.version) ABI \(library.abiMajor).\(library.abiMinor) — \(library.summary)"
                }
                print(line)
                if sha256, let sum = try? PluginIntegrity.sha256(ofFile: status.path) { print("    sha256: \(sum)") }
            }
        }
    }
}
