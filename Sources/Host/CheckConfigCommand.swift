import ArgumentParser
import Foundation
import OccurCore

extension Occur {
    struct CheckConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config",
            abstract: "Validate occur.yaml and plugins.yaml; exit 2 with file, line and key path on the first error.")

        @OptionGroup var options: ConfigOptions

        func run() throws {
            let host = try options.loadHost()
            let registry = try options.loadRegistry()
            var problems: [String] = []
            for camera in host.cameras {
                let kind = SourceKind.of(camera.source)
                if !kind.isLive, !FileManager.default.fileExists(atPath: camera.source) {
                    problems.append("camera \(camera.id): source \(camera.source) does not exist")
                }
            }
            if !FileManager.default.fileExists(atPath: host.detection.cascade) {
                problems.append("detection.cascade: \(host.detection.cascade) does not exist (install opencv-data)")
            }
            for status in PluginLoader(registry: registry).scan() {
                if case .refused = status.state { problems.append("plugin \(status.id ?? "?"): \(status.stateText)") }
            }
            print("\(options.config): \(host.cameras.count) cameras; \(options.plugins): \(registry.plugins.filter(\.enabled).count) of \(registry.plugins.count) plugins enabled")
            if problems.isEmpty {
                print("ok")
            } else {
                problems.forEach { print("problem: \($0)") }
                throw ExitCode(1)
            }
        }
    }
}
