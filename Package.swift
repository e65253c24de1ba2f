// swift-tools-version:6.0
import PackageDescription

// OpenCV 4.6 from Debian's libopencv-dev. We link only the modules we use: the lean link
// starts faster and smaller than pkg-config's sixty libraries (see DESIGN.md).
let openCVInclude: [CXXSetting] = [.unsafeFlags(["-I/usr/include/opencv4"])]
let openCVLink: [LinkerSetting] = ["core", "imgproc", "imgcodecs", "videoio", "objdetect", "dnn", "face", "calib3d"]
    .map { .linkedLibrary("opencv_\($0)") }

// Plugins export exactly one symbol, occur_plugin_entry: hidden visibility for the
// compiler and a version script for the weak C++ symbols it leaves behind.
let pluginExports = Context.packageDirectory + "/Sources/PluginAPI/occur_plugin.exports"
let pluginC: [CSetting] = [.unsafeFlags(["-fvisibility=hidden"])]
let pluginCXX: [CXXSetting] = [.unsafeFlags(["-fvisibility=hidden", "-fvisibility-inlines-hidden"])]
let pluginLink: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--version-script=\(pluginExports)"])]

/// A C plugin built as lib<name>.so from `path`.
func cPlugin(_ name: String, path: String, dependencies: [Target.Dependency] = []) -> Target {
    .target(name: name, dependencies: ["PluginAPI"] + dependencies, path: path, publicHeadersPath: ".",
            cSettings: pluginC, linkerSettings: pluginLink)
}

let fixturePlugins = ["FixtureOK", "FixtureNoop", "FixtureWrongMajor", "FixtureNewerMinor", "FixtureEntryRefuses",
                      "FixtureNoEntry", "FixtureSmallStruct",
                      // Misbehaving plugins, only ever run isolated (isolation: process).
                      "FixtureSegfault", "FixtureAbort", "FixtureHang", "FixtureLeak"]

let package = Package(
    name: "Occur",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "occur", targets: ["Host"]),
        .library(name: "Sample", type: .dynamic, targets: ["Sample"]),
        .library(name: "Mask", type: .dynamic, targets: ["Mask"]),
        .library(name: "Pose", type: .dynamic, targets: ["Pose"]),
        .library(name: "Movement", type: .dynamic, targets: ["Movement"]),
        .library(name: "Clothes", type: .dynamic, targets: ["Clothes"]),
    ] + (fixturePlugins + ["FixtureThrower"]).map {
        .library(name: $0, type: .dynamic, targets: [$0])
    },
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The stable plugin contract: one C99 header.
        .target(name: "PluginAPI", path: "Sources/PluginAPI", exclude: ["occur_plugin.exports"]),
        // OpenCV behind a small extern "C" API.
        .target(name: "Vision", path: "Sources/Vision",
                cxxSettings: openCVInclude, linkerSettings: openCVLink),
        // dlib's face detectors and descriptor (Debian libdlib-dev) behind a small extern "C" API.
        // -O2 even in debug: dlib's descriptor takes about 44 ms a face at -O0 and 14 ms at -O2 here.
        .target(name: "FaceDlib", path: "Sources/FaceDlib",
                cxxSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("dlib"), .linkedLibrary("blas"), .linkedLibrary("lapack")]),
        // The system calls behind `isolation: process` that Swift cannot make (SCM_RIGHTS,
        // memfd, pidfd, posix_spawn attributes).
        .target(name: "CIsolation", path: "Sources/CIsolation"),
        // Host internals: config, plugin loading, dispatch, capture, event log.
        .target(name: "OccurCore", dependencies: [
            "PluginAPI", "Vision", "FaceDlib", "CIsolation",
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The `occur` executable: only wiring.
        .executableTarget(name: "Host", dependencies: [
            "OccurCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The sample plugin an author copies.
        cPlugin("Sample", path: "Plugins/Sample"),
        // The analysis plugins (C++ on OpenCV), and their shared C boundary (header-only).
        .target(name: "PluginSupport", dependencies: ["PluginAPI"], path: "Plugins/Support"),
        .target(name: "Mask", dependencies: ["PluginAPI", "PluginSupport"], path: "Plugins/Mask", publicHeadersPath: ".",
                cxxSettings: openCVInclude + pluginCXX,
                linkerSettings: ["core", "imgproc", "dnn"].map { .linkedLibrary("opencv_\($0)") } + pluginLink),
        .target(name: "Pose", dependencies: ["PluginAPI", "PluginSupport"], path: "Plugins/Pose", publicHeadersPath: ".",
                cxxSettings: openCVInclude + pluginCXX,
                linkerSettings: ["core", "imgproc", "dnn", "objdetect", "calib3d"].map { .linkedLibrary("opencv_\($0)") } + pluginLink),
        .target(name: "Movement", dependencies: ["PluginAPI", "PluginSupport"], path: "Plugins/Movement", publicHeadersPath: ".",
                cxxSettings: openCVInclude + pluginCXX,
                linkerSettings: ["core", "imgproc", "video"].map { .linkedLibrary("opencv_\($0)") } + pluginLink),
        .target(name: "Clothes", dependencies: ["PluginAPI", "PluginSupport"], path: "Plugins/Clothes", publicHeadersPath: ".",
                cxxSettings: openCVInclude + pluginCXX,
                linkerSettings: ["core", "imgproc"].map { .linkedLibrary("opencv_\($0)") } + pluginLink),

        // Fixture plugins for the tests and benchmarks.
        .target(name: "FixtureThrower", dependencies: ["PluginAPI"], path: "Tests/Fixtures/FixtureThrower",
                publicHeadersPath: ".",
                cxxSettings: pluginCXX, linkerSettings: pluginLink),
        .target(name: "FixtureSupport", dependencies: ["PluginAPI"], path: "Tests/Fixtures/FixtureSupport"),
    ] + fixturePlugins.map { cPlugin($0, path: "Tests/Fixtures/\($0)", dependencies: ["FixtureSupport"]) } + [
        .target(name: "OccurTestSupport", dependencies: ["OccurCore"], path: "Tests/OccurTestSupport"),
        .testTarget(name: "OccurCoreTests", dependencies: [
            "OccurCore", "OccurTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    cxxLanguageStandard: .cxx17
)
