// The daemon's settings: embedded defaults, then the config file (`--config`, JSON), then
// environment (`PRISM_LISTEN`, `PRISM_API_KEYS`, `PRISM_PLUGIN_PATH`, `PRISM_DATA_DIR`), then command-line flags,
// each overriding the one before. Produces the RPC layer's ServerConfiguration, the auth
// decision, and the plugin host's folders and worker pool size.
import Foundation
import PrismProviders
import PrismRPC
import PrismStore

public struct SettingsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the daemon needs to start.
public struct ServerSettings: Sendable {
    public var rpc = ServerConfiguration()
    public var apiKeys: [String] = []
    /// `auth.keys`: named keys with limits (see KeyRing).
    public var namedKeys: [APIKeyConfig] = []
    /// Redis for the response cache and quota counters (`store.redis_url`, PRISM_REDIS_URL).
    public var redisURL: String?
    public private(set) var quotaFailOpen = false
    public private(set) var cacheMaxEntryBytes = StoreLimits.redisCacheMaxEntryBytes
    public var authMode = "auto"
    public var interop = false
    /// How log lines are written (`log.format`, PRISM_LOG_FORMAT, --log-format).
    public var logFormat = LogFormat.text
    /// Plugin folders; the default is the folder of the running executable, where `swift build`
    /// puts the plugin products next to prism-server.
    public var pluginPath: [String] = ServerSettings.defaultPluginPath
    public var pluginConfig: [String: String] = [:]
    public var providerPreference: [String] = []
    /// `models.aliases`: alias → "provider/model"; no target is itself an alias (checked here),
    /// and each target's provider must be loaded (checked by the gateway once plugins are).
    public private(set) var modelAliases: [String: String] = [:]
    /// The plugin host's worker pool: calls running at once, and calls queued when all run.
    public private(set) var pluginWorkerThreads = ProviderLimits.workerThreads
    public private(set) var pluginQueuedCalls = ProviderLimits.queuedCalls
    /// Bounds of each Converse stream (config file `converse`).
    public private(set) var converse = ConverseLimits()
    /// How Media.uri is fetched: `media.fetch` in the config file.
    public var mediaFetch = MediaFetchPolicy()
    /// Extract's repair rounds (`extract.repairs`).
    public private(set) var extractRepairs = Extractor.defaultRepairs
    /// The data folder (`data_dir`, PRISM_DATA_DIR); nil: `DataDirectory.resolve` of the environment.
    public var dataDirectory: String?
    /// The response cache: on, TTL, bytes in memory and on disk.
    public var cacheEnabled = true
    public private(set) var cacheTTLSeconds = 3600
    public private(set) var cacheMemoryBytes = 64 << 20
    public private(set) var cacheDiskBytes = 1 << 30
    /// Batch items on the normal call path at once: small, so a batch never starves interactive
    /// calls of the plugin host's workers.
    public private(set) var batchConcurrency = 4
    /// Finished batches are removed this long after they finish.
    public private(set) var batchRetentionSeconds = 7 * 24 * 3600
    /// A replica's lease on batch work (`batches.lease_seconds`).
    public private(set) var batchLeaseSeconds = 60
    /// PostgreSQL for the shared state (`store.database_url`, PRISM_DATABASE_URL); nil: embedded.
    public private(set) var databaseURL: String?
    /// The document index: the upload bound, and the model describing pages (nil: none).
    public private(set) var indexMaxUploadBytes = IndexLimits.defaultMaxUploadBytes
    public var indexDescribeModel: String?
    /// The model embedding chunks and questions (nil: keyword search alone).
    public var indexEmbedModel: String?
    /// `metrics.label_allow_list`: request labels that become metric labels (checked, sorted by ProviderMetrics).
    public private(set) var metricsLabelAllowList: [String] = []
    /// `metrics.listen`: the admin listener's address (plain HTTP, operator pages only); nil: none.
    public private(set) var metricsListen: (host: String, port: Int)?

    public init() {}

    /// The data folder to use: the one set, else PRISM_DATA_DIR's XDG default for this user.
    public func resolvedDataDirectory(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let dataDirectory { return dataDirectory }
        guard let directory = DataDirectory.resolve(environment) else {
            throw SettingsError("no data folder: set PRISM_DATA_DIR (or data_dir in the config file); HOME is not set either")
        }
        return directory
    }

    /// The folder holding the running executable (SwiftPM's .build/<configuration>).
    public static var defaultPluginPath: [String] {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return [(executable as NSString).deletingLastPathComponent]
    }

    /// Applies a config file over the current settings.
    public mutating func apply(_ file: ConfigFile) throws {
        if let listen = file.listen { try setListen(listen) }
        if let tls = file.tls {
            rpc.tls = TLSConfiguration(certificateChainFile: tls.cert, privateKeyFile: tls.key, trustRootsFile: tls.client_ca)
        }
        if let auth = file.auth {
            if let mode = auth.mode { authMode = mode }
            if let keys = auth.api_keys { apiKeys += keys }
            if let keys = auth.keys { namedKeys += keys }
        }
        if let l = file.limits {
            if let v = l.max_receive_message_bytes { rpc.maxReceiveMessageBytes = try Self.positive(v, "max_receive_message_bytes") }
            if let v = l.max_concurrent_streams {
                rpc.maxConcurrentStreams = UInt32(try Self.positive(v, "max_concurrent_streams", upTo: Int(Int32.max)))
            }
            if let v = l.max_connections { rpc.maxConnections = try Self.positive(v, "max_connections") }
            if let v = l.max_header_list_bytes { rpc.maxHeaderListBytes = try Self.positive(v, "max_header_list_bytes") }
            if let v = l.per_stream_buffer_bytes { rpc.perStreamBufferBytes = try Self.positive(v, "per_stream_buffer_bytes") }
            if let v = l.idle_timeout_seconds { rpc.idleTimeout = .seconds(Int64(try Self.positive(v, "idle_timeout_seconds"))) }
            if let v = l.keepalive_interval_seconds {
                rpc.keepaliveInterval = .seconds(Int64(try Self.positive(v, "keepalive_interval_seconds")))
            }
            if let v = l.keepalive_timeout_seconds {
                rpc.keepaliveTimeout = .seconds(Int64(try Self.positive(v, "keepalive_timeout_seconds")))
            }
            if let v = l.shutdown_grace_seconds {
                guard v >= 0 else { throw SettingsError("limits.shutdown_grace_seconds must be 0 or more, not \(v)") }
                rpc.shutdownGracePeriod = .seconds(Int64(v))
            }
        }
        if let plugins = file.plugins {
            if let path = plugins.path { pluginPath = path }
            if let config = plugins.config {
                for (name, value) in config { pluginConfig[name] = try value.jsonText() }
            }
            if let preference = plugins.preference { providerPreference = preference }
            if let v = plugins.worker_threads { try setPluginWorkerThreads(v, source: "plugins.worker_threads") }
            if let v = plugins.queued_calls { try setPluginQueuedCalls(v, source: "plugins.queued_calls") }
        }
        if let c = file.converse { try converse.apply(c) }
        if let fetch = file.media?.fetch {
            do {
                if let hosts = fetch.allow_hosts { mediaFetch.allowList = try FetchAllowList(hosts) }
                if let v = fetch.max_bytes { try mediaFetch.setMaxBytes(v) }
                if let v = fetch.timeout_seconds { try mediaFetch.setTimeoutSeconds(v) }
            } catch {
                throw SettingsError("\(error)")
            }
        }
        if let v = file.extract?.repairs {
            guard (0...Extractor.maxRepairs).contains(v) else {
                throw SettingsError("extract.repairs must be between 0 and \(Extractor.maxRepairs), not \(v)")
            }
            extractRepairs = v
        }
        if let aliases = file.models?.aliases { try setModelAliases(aliases) }
        if let dir = file.data_dir { dataDirectory = dir }
        if let cache = file.cache {
            if let v = cache.enabled { cacheEnabled = v }
            if let v = cache.ttl_seconds { cacheTTLSeconds = try Self.positive(v, "ttl_seconds", section: "cache") }
            if let v = cache.max_bytes { cacheMemoryBytes = try Self.positive(v, "max_bytes", section: "cache") }
            if let v = cache.max_disk_bytes { cacheDiskBytes = try Self.positive(v, "max_disk_bytes", section: "cache") }
            if let v = cache.max_entry_bytes { cacheMaxEntryBytes = try Self.positive(v, "max_entry_bytes", section: "cache") }
        }
        if let store = file.store {
            if let url = store.redis_url, !url.isEmpty { redisURL = url }
            if let v = store.quota_fail_open { quotaFailOpen = v }
        }
        if let batches = file.batches {
            if let v = batches.concurrency { batchConcurrency = try Self.positive(v, "concurrency", upTo: 1024, section: "batches") }
            if let v = batches.retention_seconds { batchRetentionSeconds = try Self.positive(v, "retention_seconds", section: "batches") }
            if let v = batches.lease_seconds { batchLeaseSeconds = try Self.positive(v, "lease_seconds", upTo: 3600, section: "batches") }
        }
        if let url = file.store?.database_url, !url.isEmpty { try setDatabaseURL(url, "store.database_url") }
        if let origins = file.http?.cors_origins { rpc.cors.allowedOrigins = origins }
        if let index = file.index {
            if let v = index.max_upload_bytes { indexMaxUploadBytes = try Self.positive(v, "max_upload_bytes", section: "index") }
            if let v = index.describe_model, !v.isEmpty { indexDescribeModel = v }
            if let v = index.embed_model, !v.isEmpty { indexEmbedModel = v }
        }
        if let metrics = file.metrics {
            if let names = metrics.label_allow_list {
                if let problem = ProviderMetrics.allowListProblem(names) { throw SettingsError("metrics.label_allow_list \(problem)") }
                metricsLabelAllowList = names
            }
            if let listen = metrics.listen {
                guard let address = Self.address(listen) else { throw SettingsError("metrics.listen '\(listen)' must be HOST:PORT") }
                metricsListen = address
            }
        }
        if let v = file.compress_responses { rpc.compressResponses = v }
        if let v = file.interop { interop = v }
        if let v = file.log?.format { logFormat = try LogFormat(parsing: v, source: "log.format") }
    }

    /// Takes a PostgreSQL URL; anything else is refused naming where it came from.
    private mutating func setDatabaseURL(_ url: String, _ source: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw SettingsError("\(source) must be a PostgreSQL URL: postgres://user:password@host:port/database (or postgresql://…)")
        }
        databaseURL = url
    }

    /// A limit from the config file, which must be at least 1 (a zero or negative timer or cap
    /// would stop the server from serving anyone, or trap when narrowed).
    private static func positive(_ value: Int, _ name: String, upTo maximum: Int = Int.max, section: String = "limits") throws -> Int {
        guard value >= 1, value <= maximum else {
            throw SettingsError("\(section).\(name) must be between 1 and \(maximum), not \(value)")
        }
        return value
    }

    /// Applies `PRISM_LISTEN`, `PRISM_DATA_DIR`, `PRISM_PLUGIN_PATH`, `PRISM_CORS_ORIGINS`, `PRISM_REDIS_URL`,
    /// `PRISM_LOG_FORMAT` and `PRISM_API_KEYS` (comma-separated).
    public mutating func applyEnvironment(_ environment: [String: String]) throws {
        if let listen = environment["PRISM_LISTEN"], !listen.isEmpty { try setListen(listen) }
        if let dir = environment["PRISM_DATA_DIR"], !dir.isEmpty { dataDirectory = dir }
        if let url = environment["PRISM_DATABASE_URL"], !url.isEmpty { try setDatabaseURL(url, "PRISM_DATABASE_URL") }
        if let path = environment["PRISM_PLUGIN_PATH"], !path.isEmpty {
            pluginPath = path.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let origins = environment["PRISM_CORS_ORIGINS"] {
            rpc.cors.allowedOrigins = origins.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let url = environment["PRISM_REDIS_URL"], !url.isEmpty { redisURL = url }
        if let format = environment["PRISM_LOG_FORMAT"], !format.isEmpty { logFormat = try LogFormat(parsing: format, source: "PRISM_LOG_FORMAT") }
        if let keys = environment["PRISM_API_KEYS"] {
            apiKeys += keys.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces).
    public mutating func setListen(_ text: String) throws {
        guard let address = Self.address(text) else { throw SettingsError("listen address '\(text)' must be HOST:PORT") }
        (rpc.host, rpc.port) = address
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces) as host and port; nil if it is none of these.
    static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// Sets the plugin calls that may run at once; `source` names the setting in the error.
    public mutating func setPluginWorkerThreads(_ value: Int, source: String = "--plugin-worker-threads") throws {
        guard (1...Self.maxPluginWorkerThreads).contains(value) else {
            throw SettingsError("\(source) must be between 1 and \(Self.maxPluginWorkerThreads), not \(value)")
        }
        pluginWorkerThreads = value
    }

    /// Sets the plugin calls that may wait for a worker; 0 refuses a call as soon as all are busy.
    public mutating func setPluginQueuedCalls(_ value: Int, source: String = "--plugin-queued-calls") throws {
        guard value >= 0 else { throw SettingsError("\(source) must be 0 or more, not \(value)") }
        pluginQueuedCalls = value
    }

    /// Sets `models.aliases`, refusing an empty name, a target that is not "provider/model", and
    /// an alias to an alias (one lookup must give the real model, and chains invite loops).
    public mutating func setModelAliases(_ aliases: [String: String]) throws {
        for (alias, target) in aliases.sorted(by: { $0.key < $1.key }) {
            guard !alias.isEmpty else { throw SettingsError("models.aliases has an empty alias (for '\(target)')") }
            if aliases[target] != nil {
                throw SettingsError("models.aliases.\(alias) names '\(target)', which is itself an alias; name the model it stands for")
            }
            let parts = target.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw SettingsError("models.aliases.\(alias) must name a model as provider/model, not '\(target)'")
            }
        }
        modelAliases = aliases
    }

    /// More threads than this would hit the kernel's per-user limit on an ordinary machine
    /// before they helped: past it, run more gateway replicas.
    public static let maxPluginWorkerThreads = 16384

    public var listensOnLoopbackOnly: Bool {
        ["127.0.0.1", "::1", "localhost"].contains(rpc.host) || rpc.host.hasPrefix("127.")
    }

    /// Whether API-key auth applies, after the mode and the address are known.
    public func authEnabled() throws -> Bool {
        switch authMode {
        case "on": break
        case "off": return false
        // Named keys (auth.keys) carry quotas and allow-lists: configuring them turns auth on even on loopback.
        case "auto": if listensOnLoopbackOnly && namedKeys.isEmpty { return false }
        default: throw SettingsError("auth mode '\(authMode)' must be auto, on or off")
        }
        guard !apiKeys.isEmpty || !namedKeys.isEmpty else {
            throw SettingsError("API-key auth is on (listening on \(rpc.host)) but no keys are configured: set auth.keys or auth.api_keys in the config file, PRISM_API_KEYS, or --api-key; or turn auth off explicitly with --auth off")
        }
        return true
    }
}
