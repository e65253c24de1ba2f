import CIsolation
import Foundation
import Logging
import PluginAPI

/// The child side of `isolation: process` (`occur plugin-runner`, started by IsolatedPlugin):
/// loads the library with the same code as the host (PluginLibrary, PluginInstance) and
/// calls create, on_event and destroy on one thread of its own, as the host would. Events
/// come over the channel (fd 3); their frames are read in place from the host's shared
/// memory. Logs and results emitted outside on_event go back over the log channel (fd 4).
public enum PluginRunner {
    /// Runs until the host says destroy or goes away; returns the process's exit code.
    public static func run(libraryPath: String, pluginID: String, parent: pid_t) -> Int32 {
        guard occur_iso_die_with_parent(parent) == 0 else { return 1 }  // the host is already gone
        // The plugin's own helper processes must not hold the host's sockets open.
        _ = fcntl(OCCUR_ISO_CHANNEL_FD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(OCCUR_ISO_LOG_FD, F_SETFD, FD_CLOEXEC)
        let session = RunnerSession(channel: RunnerChannel(fd: OCCUR_ISO_CHANNEL_FD),
                                    logChannel: RunnerChannel(fd: OCCUR_ISO_LOG_FD))
        // Plugin code runs on a thread of its own, never on the main thread's async context.
        let done = Completion()
        nonisolated(unsafe) var code: Int32 = 0
        let thread = Thread {
            code = session.run(libraryPath: libraryPath, pluginID: pluginID)
            done.complete()
        }
        thread.name = "plugin.\(pluginID)"
        thread.stackSize = 8 << 20
        thread.start()
        done.waitBlocking()
        return code
    }
}

/// One runner's conversation with its host, on the plugin thread.
private final class RunnerSession: @unchecked Sendable {
    let channel: RunnerChannel
    let logChannel: RunnerChannel
    let mappings = SharedFrameMappings()

    init(channel: RunnerChannel, logChannel: RunnerChannel) {
        self.channel = channel
        self.logChannel = logChannel
    }

    func run(libraryPath: String, pluginID: String) -> Int32 {
        guard case .message(.create, var body) = channel.receive() else { return fail("expected create from the host") }
        let levelName: String, configJSON: String, sha256: String?
        do {
            (levelName, configJSON, sha256) = (try body.string(), try body.string(), try body.optional { try $0.string() })
        } catch {
            return fail("malformed create message: \(error)")
        }
        var logger = Logger(label: "occur.plugin-runner") { [logChannel] _ in ChannelLogHandler(channel: logChannel) }
        logger.logLevel = Logger.Level(rawValue: levelName) ?? .info
        let library: PluginLibrary
        do {
            // The same checks as the host's, again: the file may have changed since (a restart
            // comes much later than the host's own check).
            try PluginIntegrity.check(path: libraryPath, sha256: sha256)
            library = try PluginLibrary.load(path: libraryPath, expectedID: pluginID)
        } catch {
            reply(created: OCCUR_ERR_INTERNAL, message: "\(error)")
            return 1
        }
        // Results emitted inside on_event belong to the event being handled: they go back on
        // the channel before its status. Any other thread's results go on the log channel.
        let context = PluginHostContext(pluginID: pluginID, logger: logger) { [channel, logChannel] result, event in
            var message = WireWriter(.emitted)
            message.result(result)
            (event != nil ? channel : logChannel).send(message.finished())
        }
        let instance = PluginInstance(library: library, context: context)
        instance.bindWorkerThread()
        do {
            try instance.create(configJSON: configJSON)
        } catch {
            if case let .createFailed(_, status) = error { reply(created: status, message: "") }
            else { reply(created: OCCUR_ERR_INTERNAL, message: "\(error)") }
            return 1
        }
        reply(created: OCCUR_OK, message: "")

        while true {
            switch channel.receive() {
            case .message(.event, var body):
                let status: Int32
                do {
                    let event = try body.event { [mappings, channel] reference in
                        try mappings.frame(reference, descriptor: reference.carriesDescriptor ? channel.takeDescriptor() : nil)
                    }
                    status = instance.callOnEvent(event)
                    // `event` (and the Frame over the shared slot) ends here, before the answer
                    // lets the host reuse the slot.
                } catch {
                    return fail("bad event message: \(error)")
                }
                var done = WireWriter(.done)
                done.i32(status)
                guard channel.send(done.finished()) else { return hostGone(instance) }
            case .message(.destroy, _):
                instance.destroy()
                channel.send(WireWriter(.destroyed).finished())
                return 0
            case .closed:
                return hostGone(instance)
            case let .message(type, _):
                return fail("unexpected \(type) from the host")
            case let .malformed(why):
                return fail("malformed message from the host: \(why)")
            case .timeout:
                continue
            }
        }
    }

    private func reply(created status: Int32, message: String) {
        var reply = WireWriter(.created)
        reply.i32(status)
        reply.string(message)
        channel.send(reply.finished())
    }

    /// The host closed the channel without saying destroy: destroy anyway, as at shutdown.
    private func hostGone(_ instance: PluginInstance) -> Int32 {
        instance.destroy()
        return 0
    }

    private func fail(_ message: String) -> Int32 {
        FileHandle.standardError.write(Data("occur plugin-runner: \(message)\n".utf8))
        return 2
    }
}

/// Sends a runner's log lines (the plugin's host->log, and the runner's own) to the host,
/// which logs them under the plugin's id.
private struct ChannelLogHandler: LogHandler {
    let channel: RunnerChannel
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var out = WireWriter(.log)
        out.string(event.level.rawValue)
        out.string("\(event.message)")
        channel.send(out.finished())
    }
}
