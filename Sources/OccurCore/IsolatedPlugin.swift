import CIsolation
import Foundation
import Glibc
import Logging
import PluginAPI
import Synchronization

/// The host's side of a plugin that runs in a child process (`isolation: process`): the same
/// library, loaded by `occur plugin-runner` (PluginRunner.swift), which the worker talks to
/// over a socket (RunnerProtocol.swift), frames passed in shared memory (RunnerIPC.swift).
///
/// A runner that crashes (any signal or exit), stalls past `timeout` or grows past
/// `memory_limit_mb` is counted, logged and restarted after 0.5 s, doubling per crash in
/// `crash_window` up to `restart_backoff_max`; after `max_crashes` in the window the plugin
/// is failed until `reenable()`. Events that meet a runner that is down are not delivered.
///
/// Threads: the worker thread creates, delivers and destroys; each runner has a reader
/// thread (its log channel: logs and results emitted outside on_event, then reaping);
/// a supervisor thread restarts runners. The supervisor outlives every runner it starts,
/// which matters: a runner dies with the thread that spawned it (PR_SET_PDEATHSIG).
final class IsolatedPlugin: PluginEndpoint, @unchecked Sendable {
    let library: PluginLibrary
    let id: String
    private let logger: Logger
    private let onEmit: @Sendable (PluginResult, Event?) -> Void
    private let frames: SharedFrameStore

    /// The executable runners are started from: this one (`occur`), unless set — the tests
    /// run inside another binary and point it at the `occur` the package built.
    static var runnerExecutable: String {
        get { executablePath.withLock { $0 } }
        set { executablePath.withLock { $0 = newValue } }
    }

    private static let executablePath = Mutex("/proc/self/exe")
    /// How long create may take in a runner (models load there).
    static let createTimeout = 60.0
    /// The first restart's delay; it doubles per crash in the window up to restart_backoff_max.
    static let firstBackoff = 0.5

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private enum Phase { case starting, up, restarting, down, failed, stopped }
    private var phase = Phase.starting
    /// The runner of the `starting`, `up` or `restarting` phase.
    private var runner: RunnerProcess?
    /// A crash was counted: the supervisor restarts the runner after this many seconds.
    private var restartDelay: Double?
    private var reenableRequested = false
    private var stopping = false
    private var crashTimes: [Int64] = []
    private var state = RunnerHealth()
    private var configJSON = "{}"
    /// The plugin's settings; `apply` replaces them (plugins.yaml reloaded).
    private var current: PluginSettings
    private let supervisorDone = Completion()
    /// Bytes of event messages written to runners: the proof that no pixels go that way.
    let eventBytesSent = Atomic<UInt64>(0)

    init(library: PluginLibrary, settings: PluginSettings, logger: Logger, frames: SharedFrameStore = .shared,
         onEmit: @escaping @Sendable (PluginResult, Event?) -> Void) {
        self.library = library
        id = settings.id
        current = settings
        self.logger = logger
        self.frames = frames
        self.onEmit = onEmit
    }

    func bindWorkerThread() {}

    /// Timeout, memory limit and restart policy apply from the next call or crash on.
    func apply(_ settings: PluginSettings) { locked { current = settings } }

    var settings: PluginSettings { locked { current } }

    var health: RunnerHealth { locked { state } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: create, deliver, destroy (the worker thread)

    func create(configJSON: String) throws(PluginLoadError) {
        locked { self.configJSON = configJSON }
        switch start() {
        case let .success(runner):
            locked { phase = .up }
            logger.info("plugin runner started (pid \(runner.pid))")
            let supervisor = Thread { [self] in supervise() }
            supervisor.name = "plugin.\(id).supervisor"
            supervisor.start()
        case let .failure(failure):
            locked {
                phase = .stopped
                stopping = true
            }
            supervisorDone.complete()
            switch failure {
            case let .status(status): throw .createFailed(path: library.path, status: status)
            case let .runner(message), let .spawn(message): throw .runnerFailed(path: library.path, message: message)
            }
        }
    }

    func deliver(_ event: Event) -> PluginCallOutcome {
        let (runner, settings) = locked { (phase == .up ? self.runner : nil, current) }
        guard let runner else { return .notDelivered }
        var lease: SharedFrameStore.Lease?
        var reference: SharedFrameReference?
        var descriptor: Int32?  // the slot's fd, when this runner has not mapped it yet
        if let frame = event.frame {
            let held: SharedFrameStore.Lease
            do { held = try frames.lease(frame) } catch {
                return .failed("no shared memory for the frame: \(error)")  // the runner is fine
            }
            lease = held
            let mapped = runner.mappedSlots[held.index] == held.generation
            descriptor = mapped ? nil : held.descriptor
            reference = SharedFrameReference(
                slot: UInt32(held.index), generation: held.generation, capacity: UInt64(held.capacity),
                carriesDescriptor: !mapped, width: UInt32(frame.width), height: UInt32(frame.height),
                stride: UInt32(frame.stride), channels: UInt32(frame.channels))
        }
        // The runner reads the slot until it answers (or dies): keep the lease until then.
        defer { lease.map(frames.release) }
        var message = WireWriter(.event, reserving: 512)
        message.event(event, frame: reference)
        let bytes = message.finished()
        eventBytesSent.add(UInt64(bytes.count), ordering: .relaxed)
        guard runner.channel.send(bytes, passing: descriptor) else { return lost(runner) }
        if let lease, descriptor != nil { runner.mappedSlots[lease.index] = lease.generation }

        let deadline = monotonicNanos() + Int64(settings.timeout * 1e9)
        while true {
            switch runner.channel.receive(timeout: max(0, Double(deadline - monotonicNanos()) / 1e9)) {
            case .message(.emitted, var body):
                guard let result = try? body.result() else { return killed(runner, because: "sent a malformed result") }
                onEmit(result, event)
            case .message(.done, var body):
                guard let status = try? body.i32() else { return killed(runner, because: "sent a malformed status") }
                checkMemory(of: runner, limit: settings.memoryLimitMB)
                return .returned(status)
            case .message(let type, _):
                return killed(runner, because: "sent \(type) during on_event")
            case let .malformed(why):
                return killed(runner, because: "sent a malformed message (\(why))")
            case .timeout:
                locked { state.stallKills += 1 }
                return killed(runner, because: "stalled: on_event ran past its \(seconds(settings.timeout)) timeout")
            case .closed:
                return lost(runner)
            }
        }
    }

    /// The runner died during a call: why, once its reader has reaped it.
    private func lost(_ runner: RunnerProcess) -> PluginCallOutcome {
        runner.ended.waitBlocking()
        return .failed("the runner \(runner.endDescription) during on_event")
    }

    private func killed(_ runner: RunnerProcess, because reason: String) -> PluginCallOutcome {
        runner.kill(because: reason)
        return lost(runner)
    }

    /// `memory_limit_mb`: a runner grown past it is killed (and restarted like any crash).
    private func checkMemory(of runner: RunnerProcess, limit: Int?) {
        guard let limit, let resident = runner.residentMegabytes, resident > Double(limit) else {
            return
        }
        runner.kill(because: String(format: "using %.0f MB, over its memory_limit_mb of %d", resident, limit))
        runner.ended.waitBlocking()
    }

    func destroy() {
        let running = locked { () -> RunnerProcess? in
            stopping = true
            condition.broadcast()
            // A runner being restarted is the supervisor's to shut down.
            return phase == .up ? runner : nil
        }
        if let running { shutDown(running) }
        supervisorDone.waitBlocking()
        locked { phase = .stopped }
    }

    /// Asks a runner to call destroy and exit; kills it when it does not within `timeout`.
    private func shutDown(_ runner: RunnerProcess) {
        let settings = self.settings
        if runner.channel.send(WireWriter(.destroy).finished()) {
            let deadline = monotonicNanos() + Int64(settings.timeout * 1e9)
            var answered = false
            while !answered {
                switch runner.channel.receive(timeout: max(0, Double(deadline - monotonicNanos()) / 1e9)) {
                case .message(.destroyed, _), .closed: answered = true
                case .message(.emitted, var body):
                    if let result = try? body.result() { onEmit(result, nil) }
                case .timeout:
                    runner.kill(because: "stalled: destroy ran past its \(seconds(settings.timeout)) timeout")
                    answered = true
                case .message, .malformed:
                    runner.kill(because: "answered destroy with something else")
                    answered = true
                }
            }
        }
        runner.ended.waitBlocking()
        if runner.endDescription != "exited (status 0)" {
            logger.warning("plugin runner \(runner.endDescription) at shutdown")
        }
    }

    func reenable() {
        locked {
            guard phase == .failed, !stopping else { return }
            reenableRequested = true
            condition.broadcast()
        }
    }

    // MARK: runners

    private enum StartFailure: Error {
        /// create returned this status.
        case status(Int32)
        /// The runner ended, or was killed, before create returned: its reader reports the end.
        case runner(String)
        /// No runner process was started.
        case spawn(String)
    }

    /// Spawns a runner, has it load the library and call create. The runner becomes
    /// `self.runner` at once (so that its death is noticed); the phase is the caller's.
    private func start() -> Result<RunnerProcess, StartFailure> {
        let runner: RunnerProcess
        do {
            runner = try RunnerProcess(executable: Self.runnerExecutable, library: library.path, id: id)
        } catch {
            return .failure(.spawn("cannot start \(Self.runnerExecutable) plugin-runner: \(error)"))
        }
        locked { self.runner = runner }
        let reader = Thread { [self] in readLogChannel(of: runner) }
        reader.name = "plugin.\(id).runner"
        reader.start()

        let settings = self.settings
        var create = WireWriter(.create)
        create.string(logger.logLevel.rawValue)
        create.string(locked { configJSON })
        create.optional(settings.sha256) { $0.string($1) }
        guard runner.channel.send(create.finished()) else {
            runner.ended.waitBlocking()
            return .failure(.runner("the runner \(runner.endDescription) before create"))
        }
        while true {
            switch runner.channel.receive(timeout: max(Self.createTimeout, settings.timeout)) {
            case .message(.created, var body):
                guard let status = try? body.i32(), let message = try? body.string() else {
                    runner.kill(because: "sent a malformed reply to create")
                    continue
                }
                if status == OCCUR_OK { return .success(runner) }
                runner.kill(because: "create returned \(status) (\(statusName(status)))")
                runner.ended.waitBlocking()
                return .failure(message.isEmpty ? .status(status) : .runner(message))
            case .message(.emitted, var body):
                if let result = try? body.result() { onEmit(result, nil) }
            case .message, .malformed:
                runner.kill(because: "answered create with something else")
            case .timeout:
                runner.kill(because: "stalled: create ran past \(seconds(max(Self.createTimeout, settings.timeout)))")
            case .closed:
                runner.ended.waitBlocking()
                return .failure(.runner("the runner \(runner.endDescription) during create"))
            }
        }
    }

    /// A runner's reader thread: logs and out-of-call results until the runner ends; then
    /// reaps it and reports the end to the supervisor.
    private func readLogChannel(of runner: RunnerProcess) {
        var draining = false
        while true {
            if !draining {
                let ready = occur_iso_wait_either(runner.logChannel.fd, runner.pidfd, -1)
                if ready & 1 == 0, ready & 2 != 0 { draining = true }  // ended: read what it left
            }
            switch runner.logChannel.receive(timeout: draining ? 0 : nil) {
            case .message(.log, var body):
                guard let level = try? body.string(), let text = try? body.string() else { continue }
                logger.log(level: Logger.Level(rawValue: level) ?? .info, "\(text)")
            case .message(.emitted, var body):
                if let result = try? body.result() { onEmit(result, nil) }
            case .message(let type, _):
                runner.kill(because: "sent \(type) on its log channel")
            case let .malformed(why):
                runner.kill(because: "sent a malformed log message (\(why))")
            case .timeout, .closed:
                runner.reap()
                runnerEnded(runner)
                runner.ended.complete()
                return
            }
        }
    }

    /// Called by a runner's reader once it has reaped it, before anyone waiting for the end
    /// is woken: by then the crash is counted and the phase is down (or failed).
    private func runnerEnded(_ ended: RunnerProcess) {
        locked {
            guard runner === ended else { return }
            runner = nil
            // At start-up and shutdown the end is expected, or reported by whoever waits for it.
            guard !stopping, phase == .up || phase == .restarting else { return }
            crashed(ended.endDescription)
        }
    }

    /// Counts a crash (lock held) and either schedules the restart or fails the plugin.
    private func crashed(_ reason: String) {
        state.crashes += 1
        state.lastCrash = reason
        let now = monotonicNanos()
        crashTimes.append(now)
        crashTimes.removeAll { now - $0 > Int64(current.crashWindow * 1e9) }
        let n = crashTimes.count
        let inWindow = "\(n) crash\(n == 1 ? "" : "es") in \(seconds(current.crashWindow))"
        if n >= current.maxCrashes {
            phase = .failed
            state.failed = true
            logger.error("plugin \(id): runner \(reason); \(inWindow): plugin failed, no more restarts until it is enabled again (POST /api/plugins/\(id)/enable, or a restart of the host)")
            return
        }
        let first = min(Self.firstBackoff, current.restartBackoffMax)
        let delay = min(current.restartBackoffMax, first * pow(2, Double(n - 1)))
        logger.warning("plugin \(id): runner \(reason); \(inWindow); restarting in \(String(format: "%.1f", delay)) s")
        phase = .down
        restartDelay = delay
        condition.broadcast()
    }

    /// The supervisor thread: waits out the backoff after a crash, or for `reenable`, and restarts.
    private func supervise() {
        condition.lock()
        defer {
            condition.unlock()
            supervisorDone.complete()
        }
        while true {
            while !stopping && restartDelay == nil && !reenableRequested { condition.wait() }
            if stopping { return }
            var delay = 0.0
            if let backoff = restartDelay {
                restartDelay = nil
                delay = backoff
            } else {
                reenableRequested = false
                crashTimes = []
                state.failed = false
                logger.notice("plugin enabled again after failing: restarting its runner")
            }
            let until = Date(timeIntervalSinceNow: delay)
            while !stopping && Date() < until { _ = condition.wait(until: until) }
            if stopping { return }
            phase = .restarting
            condition.unlock()
            let started = start()
            condition.lock()
            switch started {
            case let .success(runner):
                if stopping {
                    condition.unlock()
                    shutDown(runner)
                    condition.lock()
                    return
                }
                if phase == .restarting, self.runner === runner {
                    phase = .up
                    state.restarts += 1
                    logger.notice("plugin runner restarted (pid \(runner.pid)); \(state.restarts) restarts so far")
                }
            case .failure(.spawn(let message)):
                crashed(message)
            case let .failure(.runner(message)):
                // The runner was started and has ended: its reader counts it (runnerEnded).
                logger.error("plugin runner could not create the plugin: \(message)")
            case .failure(.status):
                break  // create returned an error: the runner was killed, its reader counts it
            }
        }
    }
}

/// "5 s", "0.5 s", "60 s".
private func seconds(_ value: Double) -> String { String(format: "%g s", value) }

/// One runner process and the host's ends of its two channels.
final class RunnerProcess: @unchecked Sendable {
    let pid: pid_t
    /// A pidfd for the process (-1 on kernels without one): polled for its end, and the target
    /// of kill, which can then never hit a recycled pid.
    let pidfd: Int32
    let channel: RunnerChannel
    let logChannel: RunnerChannel
    /// Slot → the generation of it this runner has mapped. Used by the delivering thread only.
    var mappedSlots: [Int: UInt32] = [:]
    /// Completed once the process has been reaped and its end accounted for.
    let ended = Completion()
    private let lock = NSLock()
    private var killReason: String?
    private var end: String?
    private var reaped = false

    init(executable: String, library: String, id: String) throws {
        let (channel, childChannel) = try RunnerChannel.pair()
        defer { close(childChannel) }
        let (logChannel, childLog) = try RunnerChannel.pair()
        defer { close(childLog) }
        var pid: pid_t = 0
        let error = occur_iso_spawn_runner(executable, library, id, childChannel, childLog, &pid)
        guard error == 0 else { throw RunnerProtocolError(description: String(cString: strerror(error))) }
        self.pid = pid
        self.channel = channel
        self.logChannel = logChannel
        pidfd = occur_iso_pidfd_open(pid)
    }

    deinit { if pidfd >= 0 { close(pidfd) } }

    /// SIGKILL, remembering why (the first reason wins). Nothing once reaped.
    func kill(because reason: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !reaped else { return }
        if killReason == nil { killReason = reason }
        if pidfd >= 0 { _ = occur_iso_pidfd_kill(pidfd, SIGKILL) } else { Glibc.kill(pid, SIGKILL) }
    }

    /// Waits for the process to end and collects its status (its reader thread, once).
    func reap() {
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
        lock.lock()
        reaped = true
        var code: Int32 = 0, signal: Int32 = 0, core: Int32 = 0
        if result != pid {
            end = "ended (status unknown: \(String(cString: strerror(errno))))"
        } else if let killReason {
            end = "killed (\(killReason))"
        } else if occur_iso_wait_status(status, &code, &signal, &core) == 1 {
            let name = occur_iso_signal_abbrev(signal).map { "SIG" + String(cString: $0) } ?? "signal \(signal)"
            end = "crashed (\(name)\(core != 0 ? ", core dumped" : ""))"
        } else {
            end = "exited (status \(code))"
        }
        lock.unlock()
    }

    /// "crashed (SIGSEGV)", "exited (status 1)", "killed (stalled: ...)"; "running" before reap.
    var endDescription: String {
        lock.lock()
        defer { lock.unlock() }
        return end ?? "running"
    }

    /// Resident memory from /proc/<pid>/statm, in MB (nil once gone).
    var residentMegabytes: Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }
}
