import Foundation
import Testing
import OccurTestSupport
@testable import OccurCore

/// plugins.yaml and occur.yaml: values, defaults, and errors that name file, line and key path.
@Suite struct ConfigTests {
    func registry(_ yaml: String) throws -> PluginRegistry {
        try PluginRegistry(ConfigNode.parse(yaml, file: "/etc/occur/plugins.yaml"))
    }

    func registryError(_ yaml: String) -> ConfigError? {
        #expect(throws: ConfigError.self) { try registry(yaml) }
    }

    @Test func readsEveryPluginSetting() throws {
        let r = try registry("""
            plugins_dir: ./so
            plugins:
              mask:
                enabled: true
                library: libMask.so
                cooldown: 2.5
                cooldown_scope: camera
                queue: { capacity: 8, overflow: block }
                events: [face_appeared, frame]
                cameras: [front]
                config: { threshold: 0.5, label: "m/n", sizes: [1, 2], strict: true, none: null }
              pose: {}
            """)
        #expect(r.pluginsDir == "/etc/occur/so")
        let mask = r.plugins[0]
        #expect(mask.id == "mask" && mask.enabled && mask.library == "libMask.so")
        #expect(mask.cooldown == 2.5 && mask.cooldownScope == .camera)
        #expect(mask.queueCapacity == 8 && mask.overflow == .block)
        #expect(mask.events == [.faceAppeared, .frame])
        #expect(mask.cameras == ["front"])
        #expect(mask.configJSON == #"{"label":"m/n","none":null,"sizes":[1,2],"strict":true,"threshold":0.5}"#)
        let pose = r.plugins[1]
        #expect(!pose.enabled && pose.library == "libpose.so" && pose.cooldown == 0)
        #expect(pose.cooldownScope == .track && pose.queueCapacity == 64 && pose.overflow == .dropOldest)
        #expect(pose.configJSON == "{}")
    }

    @Test func aWrongTypeNamesLineAndKeyPath() {
        let error = registryError("""
            plugins:
              mask:
                enabled: true
                cooldown: fast
            """)
        #expect(error?.line == 4)
        #expect(error?.keyPath == "plugins.mask.cooldown")
        #expect(error?.description.hasPrefix("/etc/occur/plugins.yaml:4:") == true)
        #expect(error?.message.contains("expected a number, got 'fast'") == true)
    }

    @Test func anUnknownKeyIsRejectedWhereItStands() {
        let error = registryError("""
            plugins:
              mask:
                enabled: true
                queue:
                  capacity: 8
                  overflw: drop_newest
            """)
        #expect(error?.line == 6)
        #expect(error?.keyPath == "plugins.mask.queue.overflw")
        #expect(error?.message.contains("unknown key") == true)
    }

    @Test func aBadChoiceListsTheAllowedValues() {
        let error = registryError("""
            plugins:
              mask:
                queue: { capacity: 8, overflow: sometimes }
            """)
        #expect(error?.keyPath == "plugins.mask.queue.overflow")
        #expect(error?.line == 3)
        #expect(error?.message.contains("drop_oldest, drop_newest, block") == true)
    }

    @Test func anOutOfRangeValueIsRejected() {
        let error = registryError("plugins:\n  mask:\n    queue:\n      capacity: 0\n")
        #expect(error?.keyPath == "plugins.mask.queue.capacity")
        #expect(error?.line == 4)
    }

    @Test func anUnknownEventKindIsRejected() {
        let error = registryError("plugins:\n  mask:\n    events: [face_appeared, face_smiled]\n")
        #expect(error?.keyPath == "plugins.mask.events[1]")
        #expect(error?.message.contains("face_smiled") == true)
    }

    @Test func brokenYAMLReportsItsLine() {
        let error = registryError("plugins:\n  mask:\n    enabled: true\n   cooldown: [1, 2\n")
        #expect(error?.line != nil)
        #expect(error?.message.contains("invalid YAML") == true)
    }

    @Test func hostConfigurationHasDefaultsAndResolvesPaths() throws {
        let c = try HostConfiguration(ConfigNode.parse("""
            cameras:
              front:
                source: videos/door.avi
                every_n_frames: 2
              usb: { source: /dev/video0 }
              street: { source: "rtsp://10.0.0.5/stream" }
            """, file: "/srv/occur/occur.yaml"))
        #expect(c.dataDir == "/srv/occur/data")
        #expect(c.databasePath == "/srv/occur/data/occur.db")
        #expect(c.cameras.map(\.id) == ["front", "usb", "street"])
        #expect(c.cameras[0].source == "/srv/occur/videos/door.avi")
        #expect(c.cameras[0].everyNFrames == 2)
        #expect(c.cameras[1].source == "/dev/video0")
        #expect(c.cameras[2].source == "rtsp://10.0.0.5/stream")
        #expect(c.detection.minFaceSize == 20 && c.storage.flushInterval == 1.0)
    }

    @Test func aCameraWithoutASourceIsRejected() {
        let error = #expect(throws: ConfigError.self) {
            try HostConfiguration(ConfigNode.parse("cameras:\n  front:\n    fps: 5\n", file: "occur.yaml"))
        }
        #expect(error?.keyPath == "cameras.front.source")
        #expect(error?.message == "this key is required")
    }

    @Test func pathsExpandEnvironmentVariablesWithFallbacks() {
        let env = ["OCCUR_CACHE": "/srv/cache", "EMPTY": ""]
        #expect(resolvePath("${OCCUR_CACHE:-~/.cache/occur}/samples", relativeTo: "/etc", environment: env) == "/srv/cache/samples")
        #expect(resolvePath("${UNSET:-/opt/x}/a", relativeTo: "/etc", environment: env) == "/opt/x/a")
        #expect(resolvePath("${EMPTY:-/opt/y}", relativeTo: "/etc", environment: env) == "/opt/y")
        #expect(resolvePath("${UNSET:-~/c}/d", relativeTo: "/etc", environment: env) == NSHomeDirectory() + "/c/d")
        #expect(resolvePath("${UNSET}data", relativeTo: "/etc", environment: env) == "/etc/data")
        #expect(resolvePath("${OCCUR_CACHE}${OCCUR_CACHE}", relativeTo: "/", environment: env) == "/srv/cache/srv/cache")
        #expect(resolvePath("/a/${LOOP}", relativeTo: "/", environment: ["LOOP": "${LOOP}"]) == "/a/${LOOP}")   // not again
    }

    @Test func theShippedConfigFilesAreValid() throws {
        let host = try HostConfiguration.load(contentsOf: Fixtures.packageRoot + "/occur.yaml")
        #expect(!host.cameras.isEmpty)
        let registry = try PluginRegistry.load(contentsOf: Fixtures.packageRoot + "/plugins.yaml")
        #expect(registry.plugins.contains { $0.id == "sample" && $0.enabled })
    }
}
