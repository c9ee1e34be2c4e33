// Settings from the config file: the plugin worker pool (overridden by the flags' setters), the
// connection limits and timers, the data folder and the cache, each refused naming the setting;
// model aliases, refused when chained or not provider/model; the metrics section.
import Foundation
import PrismServer
import XCTest

final class ServerSettingsTests: XCTestCase {
    private func configFile(_ json: String) throws -> ConfigFile {
        let path = NSTemporaryDirectory() + "prism-settings-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ConfigFile.load(path)
    }

    func testWorkerPoolFromConfigFileThenFlags() throws {
        var settings = ServerSettings()
        // Each streamed answer holds a worker: the default serves hundreds of streams at once.
        XCTAssertGreaterThanOrEqual(settings.pluginWorkerThreads, 512)
        try settings.apply(try configFile(#"{"plugins": {"worker_threads": 8, "queued_calls": 0}}"#))
        XCTAssertEqual(settings.pluginWorkerThreads, 8)
        XCTAssertEqual(settings.pluginQueuedCalls, 0)
        try settings.setPluginWorkerThreads(300)
        XCTAssertEqual(settings.pluginWorkerThreads, 300)
        // A config file without the keys keeps what was set.
        try settings.apply(try configFile(#"{"plugins": {"path": ["/tmp"]}}"#))
        XCTAssertEqual(settings.pluginWorkerThreads, 300)
    }

    func testOutOfRangeWorkerPoolIsRefusedNamingTheSetting() throws {
        var settings = ServerSettings()
        let cases: [(String, String)] = [
            (#"{"plugins": {"worker_threads": 0}}"#, "plugins.worker_threads must be between 1 and"),
            (#"{"plugins": {"queued_calls": -1}}"#, "plugins.queued_calls must be 0 or more, not -1"),
        ]
        for (json, message) in cases {
            XCTAssertThrowsError(try settings.apply(try configFile(json)), json) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertThrowsError(try settings.setPluginWorkerThreads(ServerSettings.maxPluginWorkerThreads + 1)) { error in
            XCTAssertTrue("\(error)".contains("--plugin-worker-threads"), "\(error)")
        }
        XCTAssertThrowsError(try settings.setPluginQueuedCalls(-5)) { error in
            XCTAssertTrue("\(error)".contains("--plugin-queued-calls must be 0 or more"), "\(error)")
        }
    }

    func testLimitsAndTimersMustBePositive() throws {
        var settings = ServerSettings()
        try settings.apply(try configFile(#"{"limits": {"keepalive_interval_seconds": 7, "keepalive_timeout_seconds": 3, "max_concurrent_streams": 64, "shutdown_grace_seconds": 0}}"#))
        XCTAssertEqual(settings.rpc.keepaliveInterval, .seconds(7))
        XCTAssertEqual(settings.rpc.keepaliveTimeout, .seconds(3))
        XCTAssertEqual(settings.rpc.maxConcurrentStreams, 64)
        XCTAssertEqual(settings.rpc.shutdownGracePeriod, .seconds(0))
        let cases: [(String, String)] = [
            (#"{"limits": {"keepalive_timeout_seconds": 0}}"#, "limits.keepalive_timeout_seconds must be between 1 and"),
            (#"{"limits": {"keepalive_interval_seconds": -5}}"#, "limits.keepalive_interval_seconds must be between 1 and"),
            (#"{"limits": {"idle_timeout_seconds": 0}}"#, "limits.idle_timeout_seconds must be between 1 and"),
            // Used to trap converting to UInt32 at startup.
            (#"{"limits": {"max_concurrent_streams": -1}}"#, "limits.max_concurrent_streams must be between 1 and 2147483647, not -1"),
            (#"{"limits": {"max_receive_message_bytes": 0}}"#, "limits.max_receive_message_bytes must be between 1 and"),
            (#"{"limits": {"shutdown_grace_seconds": -1}}"#, "limits.shutdown_grace_seconds must be 0 or more, not -1"),
        ]
        for (json, message) in cases {
            XCTAssertThrowsError(try settings.apply(try configFile(json)), json) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }

    func testModelAliasesFromTheConfigAndTheirRefusals() throws {
        var settings = ServerSettings()
        try settings.apply(try configFile(#"{"models": {"aliases": {"smart": "anthropic/claude-sonnet-4-5", "cheap": "openai/gpt-4o-mini"}}}"#))
        XCTAssertEqual(settings.modelAliases, ["smart": "anthropic/claude-sonnet-4-5", "cheap": "openai/gpt-4o-mini"])
        for (json, message) in [
            (#"{"models": {"aliases": {"smart": "fast", "fast": "openai/gpt-4o"}}}"#, "models.aliases.smart names 'fast', which is itself an alias"),
            (#"{"models": {"aliases": {"smart": "claude"}}}"#, "models.aliases.smart must name a model as provider/model, not 'claude'"),
            (#"{"models": {"aliases": {"smart": "anthropic/"}}}"#, "must name a model as provider/model"),
        ] {
            var fresh = ServerSettings()
            XCTAssertThrowsError(try fresh.apply(try configFile(json))) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }

    func testDataFolderAndCacheSettings() throws {
        var settings = ServerSettings()
        XCTAssertEqual(try settings.resolvedDataDirectory(["HOME": "/home/u"]), "/home/u/.local/share/prism")
        try settings.apply(try configFile(#"{"data_dir": "/srv/prism", "cache": {"ttl_seconds": 60, "max_bytes": 1000, "max_disk_bytes": 5000, "enabled": false}}"#))
        XCTAssertEqual(try settings.resolvedDataDirectory([:]), "/srv/prism")
        XCTAssertEqual([settings.cacheTTLSeconds, settings.cacheMemoryBytes, settings.cacheDiskBytes], [60, 1000, 5000])
        XCTAssertFalse(settings.cacheEnabled)
        // The environment overrides the file.
        try settings.applyEnvironment(["PRISM_DATA_DIR": "/var/lib/prism"])
        XCTAssertEqual(try settings.resolvedDataDirectory([:]), "/var/lib/prism")
        XCTAssertThrowsError(try settings.apply(try configFile(#"{"cache": {"ttl_seconds": 0}}"#))) { error in
            XCTAssertTrue("\(error)".contains("cache.ttl_seconds must be between 1 and"), "\(error)")
        }
        XCTAssertThrowsError(try ServerSettings().resolvedDataDirectory([:])) { error in
            XCTAssertTrue("\(error)".contains("set PRISM_DATA_DIR"), "\(error)")
        }
    }

    func testBatchSettings() throws {
        var settings = ServerSettings()
        XCTAssertEqual([settings.batchConcurrency, settings.batchRetentionSeconds], [4, 7 * 24 * 3600])
        try settings.apply(try configFile(#"{"batches": {"concurrency": 2, "retention_seconds": 60}}"#))
        XCTAssertEqual([settings.batchConcurrency, settings.batchRetentionSeconds], [2, 60])
        XCTAssertThrowsError(try settings.apply(try configFile(#"{"batches": {"concurrency": 0}}"#))) { error in
            XCTAssertTrue("\(error)".contains("batches.concurrency must be between 1 and 1024"), "\(error)")
        }
    }

    func testCORSOriginsFromConfigFileThenEnvironment() throws {
        var settings = ServerSettings()
        XCTAssertEqual(settings.rpc.cors.allowedOrigins, [], "no origin is allowed unless configured")
        try settings.apply(try configFile(#"{"http": {"cors_origins": ["https://a.example"]}}"#))
        XCTAssertEqual(settings.rpc.cors.allowedOrigins, ["https://a.example"])
        try settings.applyEnvironment(["PRISM_CORS_ORIGINS": " https://b.example, ,http://localhost:3000 "])
        XCTAssertEqual(settings.rpc.cors.allowedOrigins, ["https://b.example", "http://localhost:3000"])
    }

    func testIndexSettings() throws {
        var settings = ServerSettings()
        XCTAssertEqual(settings.indexMaxUploadBytes, 256 << 20)
        XCTAssertNil(settings.indexDescribeModel)
        try settings.apply(try configFile(#"{"index": {"max_upload_bytes": 1000, "describe_model": "openai/gpt-4o"}}"#))
        XCTAssertEqual(settings.indexMaxUploadBytes, 1000)
        XCTAssertEqual(settings.indexDescribeModel, "openai/gpt-4o")
        XCTAssertThrowsError(try settings.apply(try configFile(#"{"index": {"max_upload_bytes": 0}}"#))) { error in
            XCTAssertTrue("\(error)".contains("index.max_upload_bytes must be between 1 and"), "\(error)")
        }
    }

    func testMetricsAllowListAndAdminListener() throws {
        var settings = ServerSettings()
        XCTAssertEqual(settings.metricsLabelAllowList, [])
        XCTAssertNil(settings.metricsListen)
        try settings.apply(try configFile(#"{"metrics": {"label_allow_list": ["team"], "listen": "127.0.0.1:9464"}}"#))
        XCTAssertEqual(settings.metricsLabelAllowList, ["team"])
        XCTAssertEqual(settings.metricsListen?.host, "127.0.0.1")
        XCTAssertEqual(settings.metricsListen?.port, 9464)
        for (json, message) in [
            (#"{"metrics": {"label_allow_list": ["provider"]}}"#, "metrics.label_allow_list 'provider' is a label of Prism's own metrics"),
            (#"{"metrics": {"label_allow_list": ["a-b"]}}"#, "metrics.label_allow_list 'a-b' is not a Prometheus label name"),
            (#"{"metrics": {"listen": "9464"}}"#, "metrics.listen '9464' must be HOST:PORT"),
        ] {
            XCTAssertThrowsError(try settings.apply(try configFile(json)), json) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }
}
