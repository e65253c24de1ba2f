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
            let models = ModelFiles(directory: host.modelsDir)
            do { _ = try makeFaceDetector(host.detection, models: models) } catch {
                problems.append("detection.detector \(host.detection.detector): \(error)")
            }
            let needed: [ModelFiles.Model] = switch host.recognition.backend {
            case "sface": [.sface]
            case "dlib": [.dlibShapePredictor, .dlibResNet]
            default: []
            }
            for model in needed where !models.has(model) {
                do { _ = try models.require(model) } catch { problems.append("recognition.backend \(host.recognition.backend): \(error)") }
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
