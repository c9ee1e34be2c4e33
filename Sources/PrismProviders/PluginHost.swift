// The plugin host: the plugin folders, what is loaded from them (or failed, and why), the
// capability matrix of live models, and starting calls on the worker pool. Rescans on folder
// changes load new files, drain removed or replaced ones, and keep serving through failures.
// Threads: load/init/describe on the rescanning thread; calls on the blocking pool (1.x and
// PRISM_CALLS_BLOCKING), the compute pool (PRISM_CALLS_COMPUTE) or a host I/O loop
// (PRISM_CALLS_NONBLOCKING); shutdown and dlclose on LoadedPlugin.unloadQueue.
import CPrismPlugin
import Foundation
import Logging

/// Owns every loaded plugin. One per gateway; thread-safe.
public final class PluginHost: @unchecked Sendable {
    /// How the host runs; defaults are ``ProviderLimits``.
    public struct Options: Sendable {
        /// Folders searched for `libprism-plugin-*.so`, in order (PRISM_PLUGIN_PATH).
        public var directories: [String]
        /// Each plugin's init config, a JSON object, keyed by the NAME of libprism-plugin-NAME.so.
        public var pluginConfig: [String: String] = [:]
        /// Watch the folders with inotify and reload on change.
        public var watch = true
        public var workerThreads = ProviderLimits.workerThreads
        public var queuedCalls = ProviderLimits.queuedCalls
        public var bufferedEventsPerCall = ProviderLimits.bufferedEventsPerCall
        public var bufferedBytesPerCall = ProviderLimits.bufferedBytesPerCall
        public var cancelGraceSeconds = ProviderLimits.cancelGraceSeconds

        public init(directories: [String]) {
            self.directories = directories
        }
    }

    /// A plugin's life-cycle state, as ListProviders shows it.
    public enum State: Sendable, Equatable {
        case loaded
        case draining(String)
        case failed(String)
    }

    /// One plugin file and what became of it.
    public struct PluginStatus: Sendable {
        public var fileName: String
        public var path: String
        public var state: State
        /// Empty for a plugin that failed before describing itself.
        public var provider: ProviderDescription?
        public var callsInFlight: Int
    }

    /// Counters for tests and metrics.
    public struct Statistics: Sendable {
        /// Calls whose plugin ignored cancellation past the grace period.
        public var abandonedCalls = 0
        /// Most events ever buffered for one call (never above the per-call limit).
        public var peakBufferedEvents = 0
        /// Folder rescans done.
        public var rescans = 0
    }

    /// The worker pool's use at one moment (/metrics).
    public struct WorkerPoolUse: Sendable, Equatable {
        /// Threads running a plugin call.
        public var busy: Int
        /// Calls waiting for a thread.
        public var queued: Int
        /// The bounds: `Options.workerThreads` and `Options.queuedCalls`.
        public var threads: Int
        public var queueLimit: Int
    }

    private enum Entry {
        case loaded(LoadedPlugin)
        case failed(identity: PluginFileIdentity?, reason: String)
    }

    public let options: Options
    private let logger: Logger
    /// Blocking calls (every 1.x plugin's) and host->run_blocking work.
    private let pool: WorkerPool
    /// CPU-bound calls (PRISM_CALLS_COMPUTE): one thread per core, since more would only queue
    /// on the cores.
    private let computePool: WorkerPool
    private let shadowFolder: String
    private var watcher: FolderWatcher?

    private let lock = NSLock()
    private var entries: [String: Entry] = [:] {
        didSet { matrix = nil }
    }
    /// The capability matrix as last built, until `entries` changes (a plugin drains only after
    /// leaving `entries`): planning reads it twice per request, and building it hashes every
    /// model's name (~40 k instructions with one vendor plugin).
    private var matrix: [ModelCapability]?
    private var drainingPlugins: [ObjectIdentifier: LoadedPlugin] = [:]
    private var stats = Statistics()
    private var loads = 0
    private var stopped = false
    /// Serializes rescans; loading runs plugin code, so it is not done under `lock`.
    private let rescanLock = NSLock()

    public init(options: Options, logger: Logger) throws {
        self.options = options
        self.logger = logger
        self.pool = WorkerPool(threads: options.workerThreads, queueLimit: options.queuedCalls)
        self.computePool = WorkerPool(threads: ProcessInfo.processInfo.activeProcessorCount, queueLimit: options.queuedCalls, name: "prism-compute")
        self.shadowFolder = try PluginFile.makeShadowFolder()
    }

    /// Loads what the folders hold now and, if asked, starts watching them.
    public func start() {
        rescan()
        if options.watch {
            watcher = FolderWatcher(directories: options.directories, logger: logger) { [weak self] in self?.rescan() }
            watcher?.start()
        }
    }

    /// Stops watching, drains every plugin (each unloads once its calls end) and stops the pool.
    public func shutdown() {
        watcher?.stop()
        let plugins: [LoadedPlugin] = lock.withLock {
            stopped = true
            let all = entries.values.compactMap { entry -> LoadedPlugin? in
                if case .loaded(let plugin) = entry { return plugin }
                return nil
            }
            entries.removeAll()
            for plugin in all { drainingPlugins[ObjectIdentifier(plugin)] = plugin }
            return all
        }
        for plugin in plugins { plugin.drain("the server is shutting down") }
        pool.stop()
        computePool.stop()
        try? FileManager.default.removeItem(atPath: shadowFolder)
    }

    public var statistics: Statistics { lock.withLock { stats } }

    public var workerPoolUse: WorkerPoolUse { pool.use }

    /// The compute pool's use (PRISM_CALLS_COMPUTE plugins: one thread per core), as `workerPoolUse`.
    public var computePoolUse: WorkerPoolUse { computePool.use }

    /// The transfers running on each host I/O loop (PRISM_CALLS_NONBLOCKING calls' exchanges and
    /// media fetches), by loop index. Starts the loops if no call has yet (one idle thread each).
    public var ioLoopTransfers: [Int] { HostIOLoop.shared.map(\.running) }

    // MARK: - The folders

    /// Brings the loaded set in line with the folders: loads new files, reloads changed ones
    /// (the old version drains), drains removed ones. Safe to call at any time.
    public func rescan() {
        rescanLock.lock()
        defer { rescanLock.unlock() }
        guard !lock.withLock({ stopped }) else { return }

        var found: [(path: String, identity: PluginFileIdentity?, refusal: String?)] = []
        var seen = Set<String>()
        for directory in options.directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            let plugins = names.filter(PluginFile.isPluginName).sorted()
            guard !plugins.isEmpty else { continue }
            let folderRefusal = PluginFile.folderRefusal(directory)
            if let folderRefusal { logger.error("refusing plugins in \(directory): \(folderRefusal)") }
            for name in plugins {
                let path = (directory as NSString).appendingPathComponent(name)
                guard seen.insert(path).inserted else { continue }
                found.append((path, PluginFile.identity(path), folderRefusal))
            }
        }

        let current = lock.withLock { entries }
        // Removed files drain.
        for (path, entry) in current where !seen.contains(path) {
            lock.withLock { _ = entries.removeValue(forKey: path) }
            if case .loaded(let plugin) = entry { retire(plugin, "its file was removed") }
        }
        // New and changed files load; a replaced plugin drains once its successor is in place.
        for file in found {
            let previous = current[file.path]
            switch previous {
            case .loaded(let plugin) where plugin.identity == file.identity: continue
            case .failed(let identity, _) where identity == file.identity: continue
            default: break
            }
            let entry = load(file.path, identity: file.identity, refusal: file.refusal)
            lock.withLock { entries[file.path] = entry }
            if case .loaded(let old) = previous { retire(old, "replaced by a new version of its file") }
        }
        lock.withLock { stats.rescans += 1 }
    }

    private func load(_ path: String, identity: PluginFileIdentity?, refusal: String?) -> Entry {
        let name = (path as NSString).lastPathComponent
        if let refusal {
            return .failed(identity: identity, reason: "refused: \(refusal)")
        }
        let tag = lock.withLock { () -> Int in
            loads += 1
            return loads
        }
        let config = options.pluginConfig[PluginFile.stem(name)] ?? "{}"
        do {
            let plugin = try PluginLoader.load(path: path, shadowFolder: shadowFolder, tag: tag, config: config, logger: logger)
            plugin.onUnload = { [weak self] plugin in
                self?.lock.withLock { _ = self?.drainingPlugins.removeValue(forKey: ObjectIdentifier(plugin)) }
            }
            let d = plugin.description
            logger.info("loaded \(name): provider \(d.name) \(d.version), models \(d.models.map(\.id).joined(separator: ", "))")
            return .loaded(plugin)
        } catch {
            // A file changed while we read it has a new identity: record the one we saw.
            logger.error("plugin \(name) failed to load: \(error)")
            return .failed(identity: identity, reason: "\(error)")
        }
    }

    private func retire(_ plugin: LoadedPlugin, _ reason: String) {
        lock.withLock { drainingPlugins[ObjectIdentifier(plugin)] = plugin }
        plugin.drain(reason)
    }

    // MARK: - The matrix and calls

    /// Every plugin file found (loaded, draining or failed), in path order.
    public func plugins() -> [PluginStatus] {
        let (current, draining) = lock.withLock { (entries, Array(drainingPlugins.values)) }
        var result: [PluginStatus] = current.sorted { $0.key < $1.key }.map { path, entry in
            switch entry {
            case .loaded(let p):
                return PluginStatus(fileName: p.fileName, path: path, state: .loaded, provider: p.description, callsInFlight: p.callsInFlight)
            case .failed(_, let reason):
                return PluginStatus(fileName: (path as NSString).lastPathComponent, path: path, state: .failed(reason), provider: nil, callsInFlight: 0)
            }
        }
        for p in draining.sorted(by: { $0.path < $1.path }) {
            result.append(PluginStatus(fileName: p.fileName, path: p.path, state: .draining(p.draining ?? "draining"),
                                       provider: p.description, callsInFlight: p.callsInFlight))
        }
        return result
    }

    /// The capability matrix: every model of every loaded (not draining) plugin. When two
    /// plugins claim the same provider/model, the first in path order serves it.
    public func capabilityMatrix() -> [ModelCapability] {
        lock.withLock {
            if let matrix { return matrix }
            var seen = Set<String>()
            let built = livePluginsLocked().flatMap(\.description.models).filter { seen.insert($0.name).inserted }
            matrix = built
            return built
        }
    }

    /// The model families of every loaded (not draining) plugin, in path order, each plugin's
    /// most specific first (ABI 1.3): what makes ids beyond the matrix routable.
    public func families() -> [ModelFamily] {
        livePlugins().flatMap(\.description.families)
    }

    private func livePlugins() -> [LoadedPlugin] {
        lock.withLock { livePluginsLocked() }
    }

    /// The loaded, not draining plugins in path order. Caller holds `lock`.
    private func livePluginsLocked() -> [LoadedPlugin] {
        entries.sorted { $0.key < $1.key }.compactMap { _, entry in
            if case .loaded(let plugin) = entry, plugin.draining == nil { return plugin }
            return nil
        }
    }

    /// Starts `operation` on `model` (a row of the matrix) with an adapted request; read the
    /// returned call until it ends. Throws `ProviderFailure` when the model is gone or the pool is full.
    public func startCall(model: ModelCapability, operation: Operation, request: GenerationRequest) throws -> PluginCall {
        let bytes = RequestEncoder.encode(request, operation: operation, model: model.id)
        if let limit = model.limits.maxRequestBytes, bytes.count > limit {
            throw ProviderFailure(.resourceExhausted, "the request to \(model.name) is \(bytes.count) bytes after adaptation, over its max_request_bytes of \(limit)")
        }
        return try start(model: model, bytes: bytes, requestID: request.requestID, deadline: request.deadline, input: request.streamedAudio)
    }

    /// Hands serialized ProviderRequest `bytes` to the plugin that serves `model`, where its
    /// call model says (a pool's thread, or a host I/O loop).
    func start(model: ModelCapability, bytes: [UInt8], requestID: String, deadline: Date?, input: StreamedAudio?) throws -> PluginCall {
        // A plugin may start draining between the lookup and beginCall: look again (its successor).
        for _ in 0..<3 {
            // A known row, or an id one of the provider's families matches (called with that id).
            guard let plugin = livePlugins().first(where: { p in p.description.name == model.provider && p.description.model(model.id) != nil }) else { break }
            guard plugin.beginCall() else { continue }
            let loop = plugin.callModel == .nonblocking ? HostIOLoop.next() : nil
            let call = PluginCall(
                plugin: plugin, model: model, requestID: requestID,
                maxEvents: options.bufferedEventsPerCall, maxBytes: options.bufferedBytesPerCall, cancelGrace: options.cancelGraceSeconds,
                loop: loop, blockingPool: pool, deadline: deadline, input: input,
                onAbandon: { [weak self] in self?.lock.withLock { self?.stats.abandonedCalls += 1 } },
                onPeak: { [weak self] count in
                    self?.lock.withLock { if let s = self, count > s.stats.peakBufferedEvents { s.stats.peakBufferedEvents = count } }
                })
            // The closure keeps the call alive until start_call has returned.
            if let loop {
                loop.execute { plugin.run(call, request: bytes) }
                return call
            }
            guard (plugin.callModel == .compute ? computePool : pool).submit({ plugin.run(call, request: bytes) }) else {
                call.finish(status: PRISM_STATUS_UNAVAILABLE, message: "worker pool full")
                call.startCallReturned()
                throw ProviderFailure(.unavailable, "every plugin worker is busy and the queue is full; try again")
            }
            return call
        }
        throw ProviderFailure(.failedPrecondition, "model \(model.name) is no longer loaded")
    }
}
