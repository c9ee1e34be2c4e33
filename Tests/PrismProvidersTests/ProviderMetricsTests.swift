// ProviderMetrics' scrape-time gauges from a real plugin host: each plugin file's state (loaded,
// failed, and unloaded once its file is gone) and the worker pool's bounds, as /metrics shows them.
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class ProviderMetricsTests: XCTestCase {
    /// `name{labels} value` lines (gauges are Doubles: `1.0`) of the registry's text whose name is `family`.
    private func lines(_ metrics: ProviderMetrics, _ family: String) -> Set<String> {
        Set(metrics.registry.emitToString().split(separator: "\n").map(String.init).filter { $0.hasPrefix(family + "{") || $0.hasPrefix(family + " ") })
    }

    private func state(_ plugin: String, _ current: String) -> Set<String> {
        Set(["loaded", "draining", "failed", "unloaded"].map { "prism_plugin_state{plugin=\"\(plugin)\",state=\"\($0)\"} \($0 == current ? "1.0" : "0.0")" })
    }

    func testPluginStatesAndWorkerPoolGauges() throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-example.so")
        let bad = try Plugins.install(Plugins.badABI, into: folder, as: "libprism-plugin-badabi.so")
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        options.workerThreads = 3
        options.queuedCalls = 7
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let host = try PluginHost(options: options, logger: logger)
        host.start()
        defer { host.shutdown() }
        let metrics = ProviderMetrics()

        metrics.observe(host)
        XCTAssertEqual(lines(metrics, "prism_plugin_state"),
                       state("libprism-plugin-example.so", "loaded").union(state("libprism-plugin-badabi.so", "failed")))
        XCTAssertEqual(lines(metrics, "prism_plugin_calls_in_flight"), [#"prism_plugin_calls_in_flight{plugin="libprism-plugin-example.so"} 0.0"#,
                                                                        #"prism_plugin_calls_in_flight{plugin="libprism-plugin-badabi.so"} 0.0"#])
        XCTAssertEqual(lines(metrics, "prism_worker_pool_capacity"), ["prism_worker_pool_capacity 3.0"])
        XCTAssertEqual(lines(metrics, "prism_worker_pool_queue_capacity"), ["prism_worker_pool_queue_capacity 7.0"])
        XCTAssertEqual(lines(metrics, "prism_worker_pool_busy"), ["prism_worker_pool_busy 0.0"])
        XCTAssertEqual(lines(metrics, "prism_worker_pool_queued"), ["prism_worker_pool_queued 0.0"])

        try FileManager.default.removeItem(atPath: bad)
        host.rescan()
        metrics.observe(host)
        XCTAssertEqual(lines(metrics, "prism_plugin_state"),
                       state("libprism-plugin-example.so", "loaded").union(state("libprism-plugin-badabi.so", "unloaded")))
    }
}
