// Assembles the gateway: the method table (prism.v1.Prism, health, reflection, and the
// interop service when asked), the interceptors (auth, metrics, logging) and the RPC server.
import Foundation
import Logging
import PrismProto
import PrismProviders
import PrismRPC
import PrismStore

public final class PrismGateway: Sendable {
    public let server: RPCServer
    public let health: HealthStatusStore
    public let metrics: MetricsInterceptor
    /// The provider plugins (PRISM_PLUGIN_PATH) behind Generate and ListProviders.
    public let plugins: PluginHost
    /// The embedded store in the data folder (PRISM_DATA_DIR): the response cache's entries.
    public let store: EmbeddedStore
    private let sweeper: CacheSweeper?
    /// Runs batch items (nil when another process owns this data folder's batches).
    private let batchScheduler: BatchScheduler?

    public init(settings: ServerSettings, logger: Logger) throws {
        // The data folder first: a folder that cannot be made or written stops the start here.
        let directory = try settings.resolvedDataDirectory()
        try DataDirectory.prepare(directory)
        let store = try EmbeddedStore(directory: directory)
        var cache: GenerationCache?
        if settings.cacheEnabled {
            let disk = SQLiteResponseCache(store: store, maxDiskBytes: settings.cacheDiskBytes)
            cache = GenerationCache(store: MemoryCacheFront(backing: disk, maxBytes: settings.cacheMemoryBytes),
                                    ttl: TimeInterval(settings.cacheTTLSeconds), logger: logger)
        }
        sweeper = cache.map { CacheSweeper($0.store, every: min(StoreLimits.cacheSweepSeconds, TimeInterval(settings.cacheTTLSeconds))) }
        self.store = store

        var pluginOptions = PluginHost.Options(directories: settings.pluginPath)
        pluginOptions.pluginConfig = settings.pluginConfig
        pluginOptions.workerThreads = settings.pluginWorkerThreads
        pluginOptions.queuedCalls = settings.pluginQueuedCalls
        let plugins = try PluginHost(options: pluginOptions, logger: logger)
        let generator = Generator(host: plugins, planner: Planner(preference: settings.providerPreference), cache: cache, logger: logger)
        let health = HealthStatusStore()
        let metrics = MetricsInterceptor()
        let index = try DescriptorIndex.embedded()

        // Batches: one scheduler per process, on the data folder's batch store, which one process
        // owns at a time; a second process on the folder serves everything else.
        let batches: Result<BatchService, RPCError>
        let signals = BatchSignals()
        do {
            let batchStore = try SQLiteBatchStore(store: store)
            batchScheduler = BatchScheduler(store: batchStore, generator: generator, signals: signals, concurrency: settings.batchConcurrency,
                                            retention: TimeInterval(settings.batchRetentionSeconds), logger: logger)
            batches = .success(BatchService(store: batchStore, generator: generator, signals: signals))
        } catch let error as StoreError {
            logger.warning("batches are off in this process: \(error.description)")
            batchScheduler = nil
            batches = .failure(RPCError(.failedPrecondition, "batches are not served by this process: \(error.description)"))
        }

        var router = Router()
        router.register(PrismService.definition(generator: generator, batches: batches))
        router.register(HealthService.definition(store: health))
        if settings.interop { router.register(InteropService.definition()) }
        let names = RouterNames()
        for definition in ReflectionService.definitions(index: index, services: { names.value }) {
            router.register(definition)
        }
        names.value = router.serviceNames

        if try settings.authEnabled() { router.intercept(with: APIKeyAuthInterceptor(keys: settings.apiKeys)) }
        router.intercept(with: metrics)
        router.intercept(with: LoggingInterceptor(logger: logger))

        health.set("", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        for name in router.serviceNames {
            health.set(name, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        }
        self.server = try RPCServer(configuration: settings.rpc, router: router, logger: logger)
        self.health = health
        self.metrics = metrics
        self.plugins = plugins
    }

    public func start() async throws {
        plugins.start()
        batchScheduler?.start()
        try await server.start()
    }

    /// Reports NOT_SERVING first, then drains and stops the server.
    public func shutdown() async {
        health.setAllNotServing()
        await server.shutdown()
        await batchScheduler?.stop()
        plugins.shutdown()
        sweeper?.stop()
        store.close()
    }
}

/// The registered service names, filled in once the router is complete (reflection lists them).
private final class RouterNames: @unchecked Sendable {
    // Written once before the server starts, read only afterwards.
    var value: [String] = []
}
