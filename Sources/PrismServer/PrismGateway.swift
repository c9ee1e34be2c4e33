// Assembles the gateway: the method table (prism.v1.Prism, health, reflection, and the
// interop service when asked), the interceptors (auth, metrics, logging) and the RPC server.
import Foundation
import Logging
import PrismProto
import PrismProviders
import PrismRPC
import PrismStore
import PrismStorePostgres

public final class PrismGateway: Sendable {
    public let server: RPCServer
    public let health: HealthStatusStore
    /// Every metric family, on one Prometheus registry (rendered by /metrics).
    public let metrics: ProviderMetrics
    /// The plain HTTP listener of `metrics.listen` (operator pages only); nil when not configured.
    public let adminServer: RPCServer?
    /// What /readyz reports: plugins loaded, not draining.
    public let readiness = Readiness()
    /// The provider plugins (PRISM_PLUGIN_PATH) behind Generate and ListProviders.
    public let plugins: PluginHost
    /// The config's model aliases, whose providers are checked once the plugins have loaded.
    private let aliases: [String: String]
    private let logger: Logger
    private let signals: BatchSignals
    /// The embedded store in the data folder (PRISM_DATA_DIR): the response cache's entries.
    public let store: EmbeddedStore
    private let sweeper: CacheSweeper?
    /// Redis (PRISM_REDIS_URL): the response cache and quota counters; nil when not configured.
    public let redis: RedisPool?
    /// Usage per key, model and UTC day (`prism usage`): PostgreSQL's when shared, else the embedded store's.
    public let usageStore: any UsageStore
    /// Runs batch items (nil when another process owns this data folder's batches).
    private let batchScheduler: BatchScheduler?
    /// PostgreSQL for batches, the document index and usage when `store.database_url` is set.
    public let shared: PostgresStore?

    public init(settings: ServerSettings, logger: Logger) throws {
        // The data folder first: a folder that cannot be made or written stops the start here.
        let directory = try settings.resolvedDataDirectory()
        try DataDirectory.prepare(directory)
        let store = try EmbeddedStore(directory: directory)
        let redis = try settings.redisURL.map { RedisPool(url: try RedisURL($0)) }
        var cache: GenerationCache?
        if settings.cacheEnabled, let redis {
            // Shared by every replica; no memory front, which would keep serving what another replica replaced.
            cache = GenerationCache(store: RedisResponseCache(pool: redis, maxEntryBytes: settings.cacheMaxEntryBytes),
                                    ttl: TimeInterval(settings.cacheTTLSeconds), logger: logger)
        } else if settings.cacheEnabled {
            let disk = SQLiteResponseCache(store: store, maxDiskBytes: settings.cacheDiskBytes)
            cache = GenerationCache(store: MemoryCacheFront(backing: disk, maxBytes: settings.cacheMemoryBytes),
                                    ttl: TimeInterval(settings.cacheTTLSeconds), logger: logger)
        }
        sweeper = redis != nil ? nil : cache.map { CacheSweeper($0.store, every: min(StoreLimits.cacheSweepSeconds, TimeInterval(settings.cacheTTLSeconds))) }
        self.store = store
        self.redis = redis
        if let redis { readiness.depend { redis.unavailableReason } }
        // Keys, their quotas (counted in Redis when there is one) and usage accounting.
        let keys = try KeyRing(named: settings.namedKeys, unnamed: settings.apiKeys)
        let gate = QuotaGate(counters: redis.map { RedisQuotaCounters(pool: $0) } ?? MemoryQuotaCounters(),
                             failOpen: settings.quotaFailOpen, logger: logger)
        let shared = settings.databaseURL.map { PostgresStore(url: $0, chunkLeaseSeconds: TimeInterval(settings.batchLeaseSeconds)) }
        self.shared = shared
        if let shared { readiness.depend { shared.unavailableReason } }
        let usageStore: any UsageStore = shared?.usage ?? SQLiteUsageStore(store: store)
        self.usageStore = usageStore
        let meter = UsageAccounting(keys: keys, gate: gate, store: usageStore, logger: logger)

        var pluginOptions = PluginHost.Options(directories: settings.pluginPath)
        pluginOptions.pluginConfig = settings.pluginConfig
        pluginOptions.workerThreads = settings.pluginWorkerThreads
        pluginOptions.queuedCalls = settings.pluginQueuedCalls
        let plugins = try PluginHost(options: pluginOptions, logger: logger)
        let planner = Planner(preference: settings.providerPreference, aliases: settings.modelAliases)
        let metrics = ProviderMetrics(labelAllowList: settings.metricsLabelAllowList)
        let generator = Generator(host: plugins, planner: planner, fetcher: MediaFetcher(policy: settings.mediaFetch), cache: cache,
                                  metrics: metrics, meter: meter, logger: logger)
        let health = HealthStatusStore()
        let index = try DescriptorIndex.embedded()

        // Batches: one scheduler per process, on PostgreSQL shared by the replicas, or on the data
        // folder's batch store, which one process owns at a time (a second process on the folder
        // serves everything else).
        let batches: Result<BatchService, RPCError>
        let signals = BatchSignals()
        do {
            let batchStore: any BatchStore = if let shared { shared.batches } else { try SQLiteBatchStore(store: store) }
            let extractor = Extractor(generator: generator, repairs: settings.extractRepairs)
            batchScheduler = BatchScheduler(store: batchStore, extractor: extractor, signals: signals, concurrency: settings.batchConcurrency,
                                            retention: TimeInterval(settings.batchRetentionSeconds),
                                            leaseSeconds: TimeInterval(settings.batchLeaseSeconds), logger: logger)
            batches = .success(BatchService(store: batchStore, generator: generator, signals: signals))
        } catch let error as StoreError {
            logger.warning("batches are off in this process: \(error.description)")
            batchScheduler = nil
            batches = .failure(RPCError(.failedPrecondition, "batches are not served by this process: \(error.description)"))
        }

        var router = Router()
        let documentIndex: any DocumentIndex = if let shared { shared.index } else { SQLiteDocumentIndex(store: store) }
        let documents = IndexService.Parts(index: documentIndex,
                                           ingester: DocumentIngester(generator: generator, describeModel: settings.indexDescribeModel,
                                                                      embedModel: settings.indexEmbedModel, logger: logger),
                                           maxUploadBytes: settings.indexMaxUploadBytes)
        // Calls of the API get a trace span each (when a tracer is bootstrapped), around the key's
        // quotas so a refusal is traced too; health and reflection do not.
        router.register(RPCSpans.traced(KeyPolicy(keys: keys, gate: gate).wrap(
            PrismService.definition(generator: generator, converse: settings.converse,
                                    extractRepairs: settings.extractRepairs, documents: documents, batches: batches))))
        router.register(HealthService.definition(store: health))
        if settings.interop { router.register(RPCSpans.traced(InteropService.definition())) }
        let names = RouterNames()
        for definition in ReflectionService.definitions(index: index, services: { names.value }) {
            router.register(definition)
        }
        names.value = router.serviceNames

        if try settings.authEnabled() { router.intercept(with: APIKeyAuthInterceptor(digests: keys.keys.map(\.digest))) }
        router.intercept(with: RPCMetrics(registry: metrics.registry))
        router.intercept(with: LoggingInterceptor(logger: logger))
        OperatorPages.register(on: &router, readiness: readiness, metrics: metrics, plugins: plugins)
        ConsolePages.register(on: &router)
        router.jsonCodec = ProtoJSONCodec(methods: .embedded)

        health.set("", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        for name in router.serviceNames {
            health.set(name, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        }
        self.server = try RPCServer(configuration: settings.rpc, router: router, logger: logger)
        if let address = settings.metricsListen {
            // The same HTTP/1.1 path as the gRPC port, with a router of the operator pages alone.
            var admin = Router()
            OperatorPages.register(on: &admin, readiness: readiness, metrics: metrics, plugins: plugins)
            var configuration = ServerConfiguration()
            (configuration.host, configuration.port) = address
            configuration.eventLoopThreads = 1
            configuration.shutdownGracePeriod = .seconds(0)  // nothing there to drain
            adminServer = try RPCServer(configuration: configuration, router: admin, logger: logger)
        } else {
            adminServer = nil
        }
        self.health = health
        self.metrics = metrics
        self.plugins = plugins
        self.aliases = settings.modelAliases
        self.logger = logger
        self.signals = signals
    }

    /// Loads the plugins (refusing an alias none of them serves), then listens; /readyz says
    /// ready from then until shutdown begins.
    public func start() async throws {
        plugins.start()
        do {
            try Self.checkAliases(aliases, providers: plugins.plugins())
        } catch {
            plugins.shutdown()
            throw error
        }
        if let shared {
            let (logger, signals) = (self.logger, self.signals)
            // Another replica's new batch or results wake this one's scheduler and streams.
            try await shared.start(log: { logger.warning("\($0)") }, wake: { signals.notify($0) })
        }
        batchScheduler?.start()
        redis?.startMonitor()
        readiness.markPluginsLoaded()
        try await server.start()
        try await adminServer?.start()
    }

    /// Refuses an alias whose model's provider no loaded plugin is: a typo there would otherwise
    /// surface only when a client first uses the alias.
    static func checkAliases(_ aliases: [String: String], providers: [PluginHost.PluginStatus]) throws {
        let loaded = Set(providers.compactMap { $0.state == .loaded ? $0.provider?.name : nil })
        for (alias, target) in aliases.sorted(by: { $0.key < $1.key }) {
            let provider = String(target.prefix { $0 != "/" })
            guard loaded.contains(provider) else {
                throw SettingsError("models.aliases.\(alias) names '\(target)', but no loaded plugin is provider '\(provider)' (loaded: \(loaded.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// Reports NOT_SERVING first, then drains and stops the server.
    public func shutdown() async {
        readiness.markDraining()
        health.setAllNotServing()
        await server.shutdown()
        await adminServer?.shutdown()
        await batchScheduler?.stop()
        plugins.shutdown()
        sweeper?.stop()
        shared?.stop()
        redis?.close()
        store.close()
    }
}

/// The registered service names, filled in once the router is complete (reflection lists them).
private final class RouterNames: @unchecked Sendable {
    // Written once before the server starts, read only afterwards.
    var value: [String] = []
}
