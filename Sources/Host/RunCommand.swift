import ArgumentParser
import Foundation
import Logging
import OccurCore

extension Occur {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the host headless: capture, detect, track, log events, feed plugins.",
            discussion: "Files end by themselves; live cameras run until SIGINT or SIGTERM, which give plugins up to shutdown_timeout to drain their queues and flush the event log before exiting 0.")

        @OptionGroup var options: ConfigOptions

        @Flag(name: .long, help: "Do not print events as they are stored.")
        var quiet = false

        func run() async throws {
            let host = try options.loadHost()
            let registry = try options.loadRegistry()
            let logger = bootstrapLogging(level: host.logLevel)
            let quiet = self.quiet
            let runtime: HostRuntime
            do {
                runtime = try HostRuntime(configuration: host, registry: registry, logger: logger) { batch in
                    guard !quiet else { return }
                    let text = batch.map { $0.line + "\n" }.joined()
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            } catch {
                throw CleanExit.message("error: \(error)", code: 1)
            }
            if host.cameras.isEmpty { logger.warning("no cameras in \(options.config): nothing to do") }
            let started = Date()
            try await runtime.run()
            printSummary(runtime, seconds: Date().timeIntervalSince(started))
        }

        private func printSummary(_ runtime: HostRuntime, seconds: Double) {
            var lines = ["", String(format: "Summary (%.1f s)", seconds)]
            for camera in runtime.cameras {
                let c = camera.counters
                var line = "  camera \(camera.configuration.id): \(c.framesRead) frames read, \(c.framesProcessed) processed, "
                    + "\(c.facesDetected) faces, \(c.tracksStarted) tracks"
                if c.reconnects > 0 { line += ", \(c.reconnects) reconnects" }
                if c.unreadableImages > 0 { line += ", \(c.unreadableImages) unreadable images skipped" }
                if let error = c.error { line += " — not started: \(error)" }
                lines.append(line)
            }
            let counts = runtime.bus.publishedCounts.sorted { $0.key < $1.key }
            lines.append("  events: " + (counts.isEmpty ? "none" : counts.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            for status in runtime.pluginStatuses where status.state != .loaded && status.state != .notConfigured {
                lines.append("  plugin \(status.id ?? status.path): \(status.stateText)")
            }
            for (id, c) in runtime.dispatcher.counters {
                lines.append(String(format: "  plugin %@: %llu delivered, %llu dropped by cooldown, %llu dropped by overflow, %llu dropped at shutdown, %llu errors, call mean %.1f µs max %.1f µs",
                                    id, c.delivered, c.droppedByCooldown, c.droppedByOverflow, c.droppedAtShutdown, c.errors,
                                    c.meanCallMicros, c.maxCallMicros))
                if runtime.dispatcher.workers.first(where: { $0.id == id })?.settings.isolation == .process {
                    let r = c.runner
                    lines.append("    runner: \(r.crashes) crashes (\(r.stallKills) stalled), \(r.restarts) restarts, "
                        + "\(c.droppedWhileDown) events dropped while it was down\(r.failed ? "; failed" : "")"
                        + (r.lastCrash.map { "; last: \($0)" } ?? ""))
                }
            }
            var log = "  event log: \(runtime.store.path) (\(runtime.writer.eventsWritten) events written"
            if runtime.writer.eventsLost > 0 { log += ", \(runtime.writer.eventsLost) lost" }
            if runtime.snapshots.snapshotsSkipped > 0 { log += "; \(runtime.snapshots.snapshotsSkipped) snapshots skipped: disk full" }
            lines.append(log + ")")
            print(lines.joined(separator: "\n"))
        }
    }
}
