import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// A library another user could have replaced, or whose sha256 differs from its pin in
/// plugins.yaml, is refused before dlopen — on copies of a real fixture .so.
@Suite struct PluginIntegrityTests {
    /// A plugins dir (0755) holding a copy of libFixtureOK.so (0755), enabled as fixture_ok.
    struct Site {
        let dir = Fixtures.temporaryDirectory("integrity") + "/plugins"
        var library: String { dir + "/libFixtureOK.so" }

        init() throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Fixtures.plugin("FixtureOK"), toPath: library)
            try chmod(dir, 0o755)
            try chmod(library, 0o755)
        }

        func chmod(_ path: String, _ mode: Int) throws {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }

        func status(library: String = "libFixtureOK.so", sha256: String? = nil) -> PluginStatus {
            var settings = PluginSettings.fixture("fixture_ok", library: library)
            settings.sha256 = sha256
            return PluginLoader(registry: PluginRegistry(pluginsDir: dir, plugins: [settings])).scan()[0]
        }

        /// What `sha256sum` says, to check our hash against.
        func sha256sum(_ path: String) throws -> String {
            let result = try runProcess("/usr/bin/sha256sum", [path])
            return String(result.stdout.prefix(64))
        }
    }

    @Test func aLibraryOnlyRootOrTheHostUserCanChangeLoads() throws {
        let site = try Site()
        #expect(site.status().state == .loaded)
    }

    @Test func aWorldWritableDirectoryIsRefused() throws {
        let site = try Site()
        try site.chmod(site.dir, 0o777)
        let status = site.status()
        #expect(status.state == .refused(.writableByOthers(path: site.library, checked: site.dir, mode: 0o777)))
        #expect(status.stateText == "refused: \(site.library): \(site.dir) is writable by its group and every user "
                + "(mode 0777), so another user could replace the library; fix: chmod go-w \(site.dir)")
        // A sticky bit (as on /tmp) does not help: another user could still put the library there.
        try site.chmod(site.dir, 0o1777)
        #expect(site.status().state == .refused(.writableByOthers(path: site.library, checked: site.dir, mode: 0o1777)))
        // The fix the message names works.
        #expect(try runProcess("/bin/chmod", ["go-w", site.dir]).status == 0)
        #expect(site.status().state == .loaded)
    }

    @Test func aGroupWritableLibraryIsRefused() throws {
        let site = try Site()
        #expect(try runProcess("/bin/chmod", ["g+w", site.library]).status == 0)
        let status = site.status()
        #expect(status.state == .refused(.writableByOthers(path: site.library, checked: site.library, mode: 0o775)))
        #expect(status.stateText == "refused: \(site.library): the file is writable by its group (mode 0775), "
                + "so another user could replace the library; fix: chmod go-w \(site.library)")
        #expect(status.library == nil)
    }

    /// chown needs root: the tests run as root here, so "another user" is any uid but 0.
    @Test(.enabled(if: geteuid() == 0)) func aLibraryOrDirectoryOfAnotherUserIsRefused() throws {
        let site = try Site()
        #expect(chown(site.library, 4242, 0) == 0)
        let status = site.status()
        #expect(status.state == .refused(.ownedByAnotherUser(path: site.library, checked: site.library, owner: 4242)))
        #expect(status.stateText.hasSuffix("the file is owned by uid 4242, not by root (the user the host runs as), "
                                           + "so that user could replace the library; fix: chown root \(site.library)"))
        #expect(chown(site.library, 0, 0) == 0)
        #expect(chown(site.dir, 4242, 0) == 0)
        #expect(site.status().state == .refused(.ownedByAnotherUser(path: site.library, checked: site.dir, owner: 4242)))
    }

    @Test func symlinksAreFollowedAndTheTargetChecked() throws {
        let site = try Site()
        let elsewhere = Fixtures.temporaryDirectory("integrity-target")
        try site.chmod(elsewhere, 0o755)
        let target = elsewhere + "/libReal.so"
        try FileManager.default.copyItem(atPath: Fixtures.plugin("FixtureOK"), toPath: target)
        try site.chmod(target, 0o755)
        try FileManager.default.createSymbolicLink(atPath: site.dir + "/libLinked.so", withDestinationPath: target)
        // The link itself is lrwxrwxrwx on Linux; that means nothing and is not refused.
        #expect(site.status(library: "libLinked.so").state == .loaded)
        try site.chmod(elsewhere, 0o777)
        #expect(site.status(library: "libLinked.so").state
                == .refused(.writableByOthers(path: site.dir + "/libLinked.so", checked: elsewhere, mode: 0o777)))
        try site.chmod(elsewhere, 0o755)
        try site.chmod(target, 0o666)
        #expect(site.status(library: "libLinked.so").state
                == .refused(.writableByOthers(path: site.dir + "/libLinked.so", checked: target, mode: 0o666)))
    }

    @Test func aMatchingSha256PinLoads() throws {
        let site = try Site()
        let hash = try site.sha256sum(site.library)
        #expect(hash.count == 64)
        #expect(try PluginIntegrity.sha256(ofFile: site.library) == hash)
        #expect(site.status(sha256: hash).state == .loaded)
    }

    @Test func aDifferentSha256IsRefusedAndAudited() throws {
        let site = try Site()
        let actual = try site.sha256sum(site.library)
        let pinned = String(repeating: "ab", count: 32)
        let status = site.status(sha256: pinned)
        #expect(status.state == .refused(.checksumMismatch(path: site.library, expected: pinned, found: actual)))
        #expect(status.stateText.contains("sha256 mismatch: expected \(pinned), file has \(actual)"))
        // A library replaced after it was pinned: same size, one byte changed.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: site.library))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: site.library))
        let replaced = site.status(sha256: actual)
        guard case let .refused(error) = replaced.state, case .checksumMismatch = error else {
            Issue.record("not refused: \(replaced.stateText)")
            return
        }

        // start() hands each refusal to onRefused (the host records it in the audit log)
        // and runs the rest.
        var pinnedOK = PluginSettings.fixture("fixture_ok", library: Fixtures.plugin("FixtureOK"))
        pinnedOK.sha256 = try site.sha256sum(Fixtures.plugin("FixtureOK"))
        var wrong = PluginSettings.fixture("fixture_ok_copy", library: site.library)
        wrong.sha256 = actual
        let registry = PluginRegistry(pluginsDir: site.dir, plugins: [pinnedOK, wrong])
        var refused: [PluginStatus] = []
        let (workers, statuses) = PluginLoader(registry: registry)
            .start(logger: Fixtures.logger, onRefused: { refused.append($0) }) { _, _, _ in }
        Dispatcher(workers: workers).drainBlocking()
        #expect(workers.count == 1 && statuses[0].state == .loaded)
        #expect(refused.map(\.id) == ["fixture_ok_copy"])
        guard case let .refused(audited)? = refused.first?.state else { return }
        #expect(audited.isIntegrityFailure)
        #expect(!PluginLoadError.versionMismatch(path: "", pluginMajor: 2, pluginMinor: 0).isIntegrityFailure)
    }

    @Test func aSha256PinIsReadFromPluginsYAML() throws {
        let hash = String(repeating: "0123456789ABCDEF", count: 4)
        let registry = try PluginRegistry(ConfigNode.parse("""
            plugins:
              mask: { enabled: true, sha256: \(hash) }
              pose: { enabled: true }
            """, file: "/etc/occur/plugins.yaml"))
        #expect(registry.plugins[0].sha256 == hash.lowercased())
        #expect(registry.plugins[1].sha256 == nil)
    }

    @Test(arguments: [
        ("abc", "got 'abc' (3 characters)"),
        (String(repeating: "a", count: 63) + "g", "got '\(String(repeating: "a", count: 63))g' (64 characters)"),
        (String(repeating: "a", count: 65), "(65 characters)"),
    ])
    func aBadSha256IsAConfigErrorWithItsLine(value: String, detail: String) {
        let error = #expect(throws: ConfigError.self) {
            try PluginRegistry(ConfigNode.parse("""
                plugins:
                  mask:
                    enabled: true
                    sha256: \(value)
                """, file: "/etc/occur/plugins.yaml"))
        }
        #expect(error?.description.hasPrefix("/etc/occur/plugins.yaml:4:") == true)
        #expect(error?.keyPath == "plugins.mask.sha256")
        #expect(error?.message.hasPrefix("expected the library's SHA-256 as 64 hexadecimal digits") == true)
        #expect(error?.message.contains(detail) == true)
    }
}

extension PluginIntegrityTests {
    /// The running host audits what it refused: a sha256 mismatch lands in the audit log as
    /// plugins.load / refused, and the host starts without the plugin.
    @Test func aMismatchAtStartIsAudited() throws {
        let site = try Site()
        let dataDir = (site.dir as NSString).deletingLastPathComponent + "/data"
        var configuration = HostConfiguration()
        configuration.dataDir = dataDir
        configuration.api.enabled = false
        var settings = PluginSettings.fixture("fixture_ok", library: "libFixtureOK.so")
        settings.sha256 = String(repeating: "0", count: 64)
        let runtime = try HostRuntime(configuration: configuration,
                                      registry: PluginRegistry(pluginsDir: site.dir, plugins: [settings]), logger: Fixtures.logger)
        #expect(runtime.dispatcher.workers.isEmpty)
        let entries = try AuditLog(store: runtime.store).entries()
        #expect(entries.count == 1)
        #expect(entries.first?.action == "plugins.load" && entries.first?.target == "fixture_ok" && entries.first?.result == "refused")
        #expect(entries.first?.detail?.contains("sha256 mismatch") == true)
    }
}
