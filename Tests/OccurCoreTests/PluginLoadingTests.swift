import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// ABI negotiation against real .so fixtures built by the package.
@Suite struct PluginLoadingTests {
    @Test func acceptsAWellFormedPlugin() throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        #expect(library.id == "fixture_ok")
        #expect(library.abiMajor == hostABIMajor)
        #expect(library.wantedEvents == Set(EventKind.allCases))
    }

    @Test func refusesAWrongMajorVersion() {
        #expect(throws: PluginLoadError.versionMismatch(path: Fixtures.plugin("FixtureWrongMajor"),
                                                        pluginMajor: hostABIMajor + 1, pluginMinor: 0)) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureWrongMajor"), expectedID: "wrong_major")
        }
    }

    @Test func refusesANewerMinorVersion() {
        #expect(throws: PluginLoadError.versionMismatch(path: Fixtures.plugin("FixtureNewerMinor"),
                                                        pluginMajor: hostABIMajor, pluginMinor: hostABIMinor + 1)) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureNewerMinor"), expectedID: "newer_minor")
        }
    }

    @Test func refusesALibraryWithoutTheEntrySymbol() {
        #expect(throws: PluginLoadError.noEntrySymbol(path: Fixtures.plugin("FixtureNoEntry"))) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureNoEntry"), expectedID: "no_entry")
        }
    }

    @Test func refusesWhenTheEntryDeclinesTheHost() {
        #expect(throws: PluginLoadError.entryRefused(path: Fixtures.plugin("FixtureEntryRefuses"))) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureEntryRefuses"), expectedID: "entry_refuses")
        }
        let message = "\(PluginLoadError.entryRefused(path: "/p/libx.so"))"
        #expect(message == "/p/libx.so: occur_plugin_entry returned NULL for host ABI \(hostABIMajor).\(hostABIMinor) (the plugin refuses this host)")
    }

    @Test func refusesATooSmallDescriptor() throws {
        let error = #expect(throws: PluginLoadError.self) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureSmallStruct"), expectedID: "small_struct")
        }
        guard case let .structTooSmall(_, size, required)? = error else {
            Issue.record("wrong error: \(String(describing: error))")
            return
        }
        #expect(Int(size) < required)
        #expect("\(error!)".contains("struct_size"))
    }

    @Test func refusesAnIdThatDiffersFromItsKey() {
        #expect(throws: PluginLoadError.idMismatch(path: Fixtures.plugin("FixtureOK"), expected: "other",
                                                   found: "fixture_ok")) {
            try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "other")
        }
    }

    @Test func refusesAMissingFile() {
        #expect(throws: PluginLoadError.missingLibrary(path: "/nonexistent/libNothing.so")) {
            try PluginLibrary.load(path: "/nonexistent/libNothing.so", expectedID: "nothing")
        }
    }

    @Test func refusesAPluginWhoseCreateFails() throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        let settings = PluginSettings.fixture("fixture_ok", library: library.path, config: #"{"fail_create": true}"#)
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -2)) {
            try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }
        }
    }

    @Test func aCppExceptionInCreateBecomesAStatus() throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureThrower"), expectedID: "thrower")
        let settings = PluginSettings.fixture("thrower", library: library.path, config: #"{"throw_in_create": true}"#)
        #expect(throws: PluginLoadError.createFailed(path: library.path, status: -6)) {
            try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }
        }
    }

    @Test func errorsFromOnEventAreCountedAndDeliveryGoesOn() throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        let settings = PluginSettings.fixture("fixture_ok", library: library.path, config: #"{"fail_every": 3}"#)
        let worker = try PluginWorker(library: library, settings: settings, logger: Fixtures.logger) { _, _ in }
        let dispatcher = Dispatcher(workers: [worker])
        for i in 1...30 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: Int64(i))) }
        dispatcher.drainBlocking()
        #expect(worker.counters.delivered == 30)
        #expect(worker.counters.errors == 10)
    }

    @Test func aThrowingCppPluginIsCountedAndTheHostRunsOn() throws {
        let library = try PluginLibrary.load(path: Fixtures.plugin("FixtureThrower"), expectedID: "thrower")
        let thrower = try PluginWorker(library: library, settings: .fixture("thrower", library: library.path,
                                                                            config: #"{"throw_every": 2}"#),
                                       logger: Fixtures.logger) { _, _ in }
        let okLibrary = try PluginLibrary.load(path: Fixtures.plugin("FixtureOK"), expectedID: "fixture_ok")
        let ok = try PluginWorker(library: okLibrary, settings: .fixture("fixture_ok", library: okLibrary.path),
                                  logger: Fixtures.logger) { _, _ in }
        let dispatcher = Dispatcher(workers: [thrower, ok])
        for i in 1...20 { dispatcher.publish(TestEvents.faceAppeared(sequence: UInt64(i), track: Int64(i))) }
        dispatcher.drainBlocking()
        #expect(thrower.counters.delivered == 20)
        #expect(thrower.counters.errors == 10)
        #expect(ok.counters.delivered == 20)
        #expect(ok.counters.errors == 0)
    }

    @Test func scanListsLoadedDisabledRefusedAndUnconfiguredLibraries() throws {
        let dir = Fixtures.temporaryDirectory("scan")
        for name in ["FixtureOK", "FixtureWrongMajor", "FixtureNoop", "FixtureNoEntry"] {
            try FileManager.default.copyItem(atPath: Fixtures.plugin(name), toPath: "\(dir)/lib\(name).so")
        }
        var disabled = PluginSettings.fixture("noop", library: "libFixtureNoop.so")
        disabled.enabled = false
        let registry = PluginRegistry(pluginsDir: dir, plugins: [
            .fixture("fixture_ok", library: "libFixtureOK.so"),
            .fixture("wrong_major", library: "libFixtureWrongMajor.so"),
            disabled,
            .fixture("mislabelled", library: "libFixtureOK.so"),
        ])
        let statuses = PluginLoader(registry: registry).scan()
        let byID = Dictionary(uniqueKeysWithValues: statuses.compactMap { s in s.id.map { ($0, s) } })
        #expect(byID["fixture_ok"]?.state == .loaded)
        #expect(byID["noop"]?.state == .disabled)
        #expect(byID["wrong_major"]?.stateText.contains("plugin ABI 2.0, host ABI 1.\(hostABIMinor)") == true)
        #expect(byID["mislabelled"]?.stateText.contains("differs from its key 'mislabelled'") == true)
        let unconfigured = statuses.filter { $0.state == .notConfigured }.map { ($0.path as NSString).lastPathComponent }
        #expect(unconfigured == ["libFixtureNoEntry.so"])
    }

    @Test(arguments: ["Sample", "FixtureOK", "FixtureThrower", "Mask", "Pose", "Clothes", "Movement"])
    func pluginsExportOnlyTheEntrySymbol(name: String) throws {
        let nm = try runProcess("/usr/bin/nm", ["-D", "--defined-only", Fixtures.plugin(name)])
        #expect(nm.status == 0, "nm: \(nm.stderr)")
        let symbols = nm.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(symbols == ["occur_plugin_entry"])
    }
}
