import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import OccurTestSupport
@testable import OccurCore

/// `GET /metrics` after a real run (Megamind.avi, YuNet + SFace, the fixture plugin): the
/// figures are there, and Debian's promtool accepts the exposition.
@Suite struct MetricsTests {
    /// scripts/setup unpacks promtool into ~/.cache/occur/bin (or $OCCUR_CACHE/bin).
    static let promtool: String? = {
        let cache = ProcessInfo.processInfo.environment["OCCUR_CACHE"] ?? (NSHomeDirectory() + "/.cache/occur")
        return [cache + "/bin/promtool", "/usr/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Runs the host over the video to its end, then scrapes /metrics.
    func scrapeAfterARun() async throws -> (text: String, processed: Int64, runtime: HostRuntime) {
        let dir = Fixtures.temporaryDirectory("metrics")
        try """
            data_dir: ./data
            log_level: warning
            api: { enabled: false }
            cameras:
              video: { source: \(Fixtures.openCVData)/Megamind.avi, every_n_frames: 5 }
            """.write(toFile: dir + "/occur.yaml", atomically: true, encoding: .utf8)
        let registry = PluginRegistry(pluginsDir: dir, plugins: [.fixture("fixture_ok", library: Fixtures.plugin("FixtureOK"))])
        let runtime = try HostRuntime(configuration: HostConfiguration.load(contentsOf: dir + "/occur.yaml"), registry: registry,
                                      logger: Fixtures.logger)
        try await runtime.run()   // until the video ends
        let processed = try #require(runtime.cameras.first?.counters.framesProcessed)
        #expect(processed > 40)

        let text = try await runtime.controlAPI.application().test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                return String(buffer: response.body)
            }
        }
        return (text, processed, runtime)
    }

    @Test func aRunsFiguresAreExposed() async throws {
        let (text, processed, runtime) = try await scrapeAfterARun()
        func value(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value(#"occur_camera_frames_processed_total{camera="video"}"#) == Double(processed))
        #expect((value(#"occur_camera_frames_decoded_total{camera="video"}"#) ?? 0) >= Double(processed) * 5 - 5)
        #expect((value(#"occur_camera_faces_detected_total{camera="video"}"#) ?? 0) > 0)
        #expect(value(#"occur_stage_duration_seconds_count{stage="detect",camera="video"}"#) == Double(processed))
        #expect((value(#"occur_plugin_deliveries_total{plugin="fixture_ok"}"#) ?? 0) > 0)
        #expect((value(#"occur_plugin_call_duration_seconds_count{plugin="fixture_ok"}"#) ?? 0) > 0)
        #expect((value(#"occur_events_logged_total{camera="video",kind="face_appeared"}"#) ?? 0) > 0)
        #expect((value("occur_db_write_duration_seconds_count") ?? 0) > 0)
        #expect((value("process_resident_memory_bytes") ?? 0) > 10_000_000)

        // A second scrape does not count anything twice.
        let again = runtime.metrics.render(cameras: runtime.cameras, workers: runtime.dispatcher.workers)
        #expect(again.contains(#"occur_camera_frames_processed_total{camera="video"} \#(processed)"#))
    }

    @Test(.enabled(if: promtool != nil, "promtool is not installed (Debian package prometheus; scripts/setup installs it)"))
    func theExpositionPassesPromtool() async throws {
        let (text, _, _) = try await scrapeAfterARun()
        let promtool = try #require(Self.promtool)
        let dir = Fixtures.temporaryDirectory("promtool")
        let file = dir + "/metrics.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let lint = try runProcess("/bin/sh", ["-c", "\(promtool) check metrics < \(file)"])
        #expect(lint.status == 0, "promtool: \(lint.stdout)\(lint.stderr)")
    }
}
