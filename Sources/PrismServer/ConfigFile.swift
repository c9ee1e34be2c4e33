// The config file's shape (`--config`, JSON): every section and field the daemon reads, all
// optional, plus JSONValue for plugin configs written inline. ServerSettings applies it.
import Foundation

/// The config file's shape. Every field is optional; absent means "keep the default".
public struct ConfigFile: Codable, Sendable {
    public struct TLS: Codable, Sendable {
        public var cert: String?
        public var key: String?
        /// PEM CA bundle: when set, clients must present a certificate it signed.
        public var client_ca: String?
    }

    public struct Auth: Codable, Sendable {
        /// "auto" (default: on unless listening on loopback), "on" or "off".
        public var mode: String?
        public var api_keys: [String]?
        /// Named keys with quotas and model allow-lists (README "API keys and quotas").
        public var keys: [APIKeyConfig]?
    }

    public struct Limits: Codable, Sendable {
        public var max_receive_message_bytes: Int?
        public var max_concurrent_streams: Int?
        public var max_connections: Int?
        public var max_header_list_bytes: Int?
        public var per_stream_buffer_bytes: Int?
        public var idle_timeout_seconds: Int?
        public var keepalive_interval_seconds: Int?
        public var keepalive_timeout_seconds: Int?
        public var shutdown_grace_seconds: Int?
    }

    /// Provider plugins: where to find them, their init configs, and routing preference.
    public struct Plugins: Codable, Sendable {
        /// Folders searched for libprism-plugin-*.so (PRISM_PLUGIN_PATH overrides).
        public var path: [String]?
        /// Each plugin's init config (a JSON object), keyed by NAME of libprism-plugin-NAME.so.
        public var config: [String: JSONValue]?
        /// Providers or provider/models the planner prefers, best first.
        public var preference: [String]?
        /// Plugin calls running at once; each streamed answer holds one for its whole life
        /// (default `ProviderLimits.workerThreads`).
        public var worker_threads: Int?
        /// Calls waiting for a worker before more are refused UNAVAILABLE (default
        /// `ProviderLimits.queuedCalls`).
        public var queued_calls: Int?
    }

    /// The HTTP/1.1 and browser surfaces of the gRPC port.
    public struct HTTP: Codable, Sendable {
        /// Origins browsers may call from (CORS); PRISM_CORS_ORIGINS overrides.
        public var cors_origins: [String]?
    }

    /// Converse streams' bounds; each absent value keeps its default (ConverseLimits).
    public struct Converse: Codable, Sendable {
        public var max_turns: Int?
        public var max_history_bytes: Int?
        public var tool_result_timeout_seconds: Double?
        /// Most recent tool-result images sent each turn; older ones become a placeholder.
        public var kept_tool_images: Int?
    }

    /// Media the server fetches itself (Media.uri): `media.fetch`.
    public struct Media: Codable, Sendable {
        public struct Fetch: Codable, Sendable {
            /// Host names, addresses or CIDR ranges that may be fetched although they are
            /// loopback, private or link-local (the SSRF guard refuses those otherwise).
            public var allow_hosts: [String]?
            /// Bytes of one fetched medium (default `MediaFetchLimits.maxBytes`).
            public var max_bytes: Int?
            /// Seconds for one fetch, redirects included (default `MediaFetchLimits.timeoutSeconds`).
            public var timeout_seconds: Int?
        }

        public var fetch: Fetch?
    }

    /// Extract: repair rounds after an answer that fails the schema (default 1, at most 3).
    public struct Extract: Codable, Sendable {
        public var repairs: Int?
    }

    /// Model names: `aliases` maps a name clients may use in Route.model and Route.fallbacks to
    /// a real "provider/model" ({"smart": "anthropic/claude-sonnet-4-5"}).
    public struct Models: Codable, Sendable {
        public var aliases: [String: String]?
    }

    /// The response cache (README "Response cache").
    public struct Cache: Codable, Sendable {
        public var enabled: Bool?
        /// How long an answer is served (default 3600).
        public var ttl_seconds: Int?
        /// Bytes of answers kept in memory in front of the store.
        public var max_bytes: Int?
        /// Bytes of answers kept in the store; the oldest go first.
        public var max_disk_bytes: Int?
        /// Redis cache: an answer larger than this is not stored (default 1 MiB).
        public var max_entry_bytes: Int?
    }

    /// Durable batches (README "Batches").
    public struct Batches: Codable, Sendable {
        /// Batch items running through the normal call path at once (default 4).
        public var concurrency: Int?
        /// How long a finished batch and its results are kept (default 7 days).
        public var retention_seconds: Int?
        /// A replica's lease on the work it runs, renewed every third of it; one that dies loses
        /// its work to another replica after this long (default 60).
        public var lease_seconds: Int?
    }

    /// Shared state for several replicas (README "Store"); unset: the embedded SQLite store.
    public struct Store: Codable, Sendable {
        /// postgres://user:password@host:port/database: batches, the document index and usage
        /// records in PostgreSQL (PRISM_DATABASE_URL overrides).
        public var database_url: String?
        /// redis://[:password@]host[:port][/db]: the response cache and quota counters.
        public var redis_url: String?
        /// With Redis unreachable, admit calls of keys with quotas uncounted (default false: UNAVAILABLE).
        public var quota_fail_open: Bool?
    }

    /// The document index (README "Document index").
    public struct Index: Codable, Sendable {
        /// Bytes one IndexDocument upload may hold (default 256 MB).
        public var max_upload_bytes: Int?
        /// provider/model that describes each page image for search; unset: no descriptions.
        public var describe_model: String?
        /// provider/model that embeds chunks and questions for hybrid search; unset: BM25 alone.
        public var embed_model: String?
    }

    /// Prometheus metrics (README "Metrics").
    public struct Metrics: Codable, Sendable {
        /// Request `labels` that become labels of the prism_* metrics; others are dropped.
        public var label_allow_list: [String]?
        /// HOST:PORT of a plain HTTP admin listener serving /metrics, /healthz and /readyz alone.
        public var listen: String?
    }

    /// Log output: `format` is "text" (default) or "json" (PRISM_LOG_FORMAT, --log-format override).
    public struct Log: Codable, Sendable {
        public var format: String?
    }

    public var listen: String?
    public var metrics: Metrics?
    public var log: Log?
    public var batches: Batches?
    public var store: Store?
    public var http: HTTP?
    /// The data folder (PRISM_DATA_DIR overrides).
    public var data_dir: String?
    public var cache: Cache?
    public var index: Index?
    public var plugins: Plugins?
    public var converse: Converse?
    public var media: Media?
    public var extract: Extract?
    public var models: Models?
    public var tls: TLS?
    public var auth: Auth?
    public var limits: Limits?
    public var compress_responses: Bool?
    public var interop: Bool?

    public init() {}

    public static func load(_ path: String) throws -> ConfigFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SettingsError("cannot read config file \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(ConfigFile.self, from: data)
        } catch {
            throw SettingsError("config file \(path) is not valid: \(error)")
        }
    }
}

/// Any JSON value, so that a plugin's config can be written inline in the config file.
public struct JSONValue: Codable, Sendable {
    private let text: String

    public init(from decoder: Decoder) throws {
        let value = try decoder.singleValueContainer()
        // Decode into Foundation's JSON model and keep it as text for the plugin.
        if let object = try? value.decode([String: JSONValue].self) {
            text = "{" + object.sorted { $0.key < $1.key }.map { "\(Self.quote($0.key)):\($0.value.text)" }.joined(separator: ",") + "}"
        } else if let array = try? value.decode([JSONValue].self) {
            text = "[" + array.map(\.text).joined(separator: ",") + "]"
        } else if let bool = try? value.decode(Bool.self) {
            text = bool ? "true" : "false"
        } else if let number = try? value.decode(Double.self) {
            text = number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        } else if let string = try? value.decode(String.self) {
            text = Self.quote(string)
        } else if value.decodeNil() {
            text = "null"
        } else {
            throw DecodingError.dataCorruptedError(in: value, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    /// The value as JSON text; a plugin's config must be an object.
    func jsonText() throws -> String {
        guard text.hasPrefix("{") else { throw SettingsError("plugins.config values must be JSON objects") }
        return text
    }

    private static func quote(_ string: String) -> String {
        let data = (try? JSONEncoder().encode(string)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
