import Foundation
import Logging

/// What became of one library: the rows of `occur plugins`.
public struct PluginStatus: Sendable {
    public enum State: Sendable, Equatable {
        case loaded
        case disabled
        /// In plugins_dir but not named in plugins.yaml: listed, never loaded.
        case notConfigured
        case refused(PluginLoadError)
    }

    public var id: String?
    public var path: String
    public var state: State
    public var library: PluginLibrary?

    public var stateText: String {
        switch state {
        case .loaded: "loaded"
        case .disabled: "disabled"
        case .notConfigured: "disabled (not in plugins.yaml)"
        case let .refused(error): "refused: \(error)"
        }
    }
}

/// Finds plugin libraries and loads the enabled ones.
public struct PluginLoader: Sendable {
    public let registry: PluginRegistry

    public init(registry: PluginRegistry) {
        self.registry = registry
    }

    public func path(for settings: PluginSettings) -> String {
        settings.library.hasPrefix("/")
            ? settings.library : (registry.pluginsDir as NSString).appendingPathComponent(settings.library)
    }

    /// Every configured plugin and every lib*.so in plugins_dir, with its state.
    /// Enabled plugins are checked (PluginIntegrity: permissions, owner, `sha256` pin) and
    /// loaded (dlopen + ABI checks), not created.
    public func scan() -> [PluginStatus] {
        var statuses: [PluginStatus] = []
        var configuredPaths = Set<String>()
        for settings in registry.plugins {
            let path = path(for: settings)
            configuredPaths.insert(URL(fileURLWithPath: path).standardizedFileURL.path)
            guard settings.enabled else {
                statuses.append(PluginStatus(id: settings.id, path: path, state: .disabled))
                continue
            }
            do {
                try PluginIntegrity.check(path: path, sha256: settings.sha256)
                let library = try PluginLibrary.load(path: path, expectedID: settings.id)
                statuses.append(PluginStatus(id: settings.id, path: path, state: .loaded, library: library))
            } catch {
                statuses.append(PluginStatus(id: settings.id, path: path, state: .refused(error)))
            }
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: registry.pluginsDir)) ?? []
        for file in files.sorted() where file.hasSuffix(".so") {
            let path = (registry.pluginsDir as NSString).appendingPathComponent(file)
            if !configuredPaths.contains(URL(fileURLWithPath: path).standardizedFileURL.path) {
                statuses.append(PluginStatus(id: nil, path: path, state: .notConfigured))
            }
        }
        return statuses
    }

    /// Loads and creates every enabled plugin. Refusals are logged (one line each), handed to
    /// `onRefused` (before start returns; `error.isIntegrityFailure` tells the integrity
    /// refusals apart) and returned; the host runs on without them.
    public func start(logger: Logger, onRefused: (PluginStatus) -> Void = { _ in },
                      onEmit: @escaping @Sendable (String, PluginResult, Event?) -> Void)
        -> (workers: [PluginWorker], statuses: [PluginStatus])
    {
        var workers: [PluginWorker] = []
        var statuses = scan()
        for index in statuses.indices {
            guard statuses[index].state == .loaded, let library = statuses[index].library,
                  let settings = registry.plugins.first(where: { $0.id == statuses[index].id }) else {
                if case let .refused(error) = statuses[index].state {
                    logger.error("plugin refused: \(error)", metadata: ["plugin.id": "\(statuses[index].id ?? "?")"])
                    onRefused(statuses[index])
                }
                continue
            }
            do {
                let id = settings.id
                let worker = try PluginWorker(library: library, settings: settings, logger: logger) { result, event in
                    onEmit(id, result, event)
                }
                workers.append(worker)
                logger.info("plugin loaded: \(library.path) \(library.version) (ABI \(library.abiMajor).\(library.abiMinor))",
                            metadata: ["plugin.id": "\(id)"])
            } catch {
                statuses[index].state = .refused(error)
                logger.error("plugin refused: \(error)", metadata: ["plugin.id": "\(settings.id)"])
                onRefused(statuses[index])
            }
        }
        return (workers, statuses)
    }
}
