// The prism_* metric families on the gateway's Prometheus registry: provider calls and their
// outcome, time to first token, tokens, cost and cache decisions as they happen (the Generator
// records them, once per call), and plugin states and worker-pool use read when /metrics is scraped.
import Foundation
import CPrismPlugin
import Prometheus

/// Records what the providers do. Thread-safe: a recording takes one short lock to find its series
/// (see `Series`), then updates an atomic counter or a briefly locked histogram; no lock is held
/// across I/O.
public final class ProviderMetrics: Sendable {
    /// The registry every family lives on; /metrics renders it.
    public let registry: PrometheusCollectorRegistry
    /// Request `labels` that become metric labels, by name (`metrics.label_allow_list`); sorted.
    public let labelAllowList: [String]
    /// Plugin files /metrics has shown, so that one gone is reported `unloaded` rather than vanishing.
    private let seenPlugins = SeenPlugins()
    private let providerCalls: Series<Counter>
    private let firstTokens: Series<ValueHistogram>
    private let tokens: Series<Counter>
    private let costs: Series<Counter>
    private let cacheRequests: Series<Counter>

    /// Labels of the prism_* families themselves, which an allow-listed request label may not take.
    public static let reservedLabelNames: Set<String> = ["provider", "model", "direction", "outcome", "result", "plugin", "state", "le", "key"]
    /// Most request labels that may be allow-listed: each one multiplies every prism_* family's series.
    public static let maxAllowListedLabels = 8
    /// Unicode scalars kept of an allow-listed label's value; a longer value is cut (clients choose
    /// the values, and a label value is stored with every sample). Scalars, not Characters: one
    /// Character may carry any number of combining marks.
    public static let maxLabelValueLength = 64
    /// Upper bounds of the time-to-first-token histogram, in seconds: vendors answer from about
    /// 0.2 s (small models) to tens of seconds (reasoning models, long prompts).
    public static let firstTokenBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60]

    /// `labelAllowList` is checked by `allowListProblem` (the settings do so when they read it).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), labelAllowList: [String] = []) {
        self.registry = registry
        self.labelAllowList = labelAllowList.sorted()
        providerCalls = Series { registry.makeCounter(descriptor: Family.providerCalls, labels: $0) }
        firstTokens = Series { registry.makeValueHistogram(descriptor: Family.firstToken, labels: $0, buckets: Self.firstTokenBuckets) }
        tokens = Series { registry.makeCounter(descriptor: Family.tokens, labels: $0) }
        costs = Series { registry.makeCounter(descriptor: Family.cost, labels: $0) }
        cacheRequests = Series { registry.makeCounter(descriptor: Family.cacheRequests, labels: $0) }
    }

    /// Why `names` cannot be the allow-list; nil when it can.
    public static func allowListProblem(_ names: [String]) -> String? {
        if names.count > maxAllowListedLabels { return "has \(names.count) names, more than \(maxAllowListedLabels)" }
        for name in names {
            let valid = name.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
                && name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
            if !valid || name.hasPrefix("__") { return "'\(name)' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)" }
            if reservedLabelNames.contains(name) { return "'\(name)' is a label of Prism's own metrics" }
        }
        if Set(names).count != names.count { return "names a label twice" }
        return nil
    }

    // MARK: - Per request

    /// The labels a request adds to every prism_* family: each allow-listed name with the
    /// request's value, cut to `maxLabelValueLength`, or empty (Prometheus: absent) when it has
    /// none, so a family's label names never vary. Labels not allow-listed are dropped.
    ///
    /// The one place per-request labels are made. `key` is the caller's API key name (auth.keys;
    /// empty without auth or for an unnamed key): names come from the config, so it is bounded.
    public func dimensions(for request: GenerationRequest) -> [(String, String)] {
        labelAllowList.map { name in
            (name, String(String.UnicodeScalarView((request.labels[name] ?? "").unicodeScalars.prefix(Self.maxLabelValueLength))))
        } + [("key", Caller.current?.keyName ?? "")]
    }

    /// One provider call ended; `outcome` is `ok` or why not (`PluginCall.End.outcome`).
    func callEnded(_ model: ModelCapability, outcome: String, _ extra: [(String, String)]) {
        providerCalls[Self.model(model) + [("outcome", outcome)] + extra].increment()
    }

    /// A call's first content arrived `seconds` after it was started.
    func firstToken(_ model: ModelCapability, seconds: Double, _ extra: [(String, String)]) {
        firstTokens[Self.model(model) + extra].record(seconds)
    }

    /// A usage event of a call: its tokens and cost.
    func usage(_ usage: Usage, model: ModelCapability, _ extra: [(String, String)]) {
        let labels = Self.model(model)
        for (direction, tokens) in [("input", usage.inputTokens), ("output", usage.outputTokens)] where tokens > 0 {
            self.tokens[labels + [("direction", direction)] + extra].increment(by: Int64(clamping: tokens))
        }
        if usage.costUSDMicros > 0 {
            costs[labels + extra].increment(by: Double(usage.costUSDMicros) / 1e6)
        }
    }

    /// What the response cache did for one model tried.
    func cache(_ result: CacheResult, _ extra: [(String, String)]) {
        cacheRequests[[("result", result.rawValue)] + extra].increment()
    }

    private static func model(_ model: ModelCapability) -> [(String, String)] {
        [("provider", model.provider), ("model", model.name)]
    }

    // MARK: - Read at scrape time

    /// Sets the gauges of the plugins' states, their calls in flight and the worker pool from
    /// `host` as it is now; /metrics calls it before rendering.
    public func observe(_ host: PluginHost) {
        let plugins = host.plugins()
        var states: [String: String] = [:]
        var inFlight: [String: Int] = [:]
        for plugin in plugins {
            // A draining plugin and its loaded successor share a file name: loaded wins.
            let state: String
            switch plugin.state {
            case .loaded: state = "loaded"
            case .draining: state = "draining"
            case .failed: state = "failed"
            }
            if states[plugin.fileName] != "loaded" { states[plugin.fileName] = state }
            inFlight[plugin.fileName, default: 0] += plugin.callsInFlight
        }
        for gone in seenPlugins.update(Set(states.keys)) { states[gone] = "unloaded" }
        for (plugin, current) in states {
            for state in ["loaded", "draining", "failed", "unloaded"] {
                registry.makeGauge(descriptor: Family.pluginState, labels: [("plugin", plugin), ("state", state)]).set(Int64(state == current ? 1 : 0))
            }
            registry.makeGauge(descriptor: Family.pluginCallsInFlight, labels: [("plugin", plugin)]).set(Int64(inFlight[plugin] ?? 0))
        }
        let pool = host.workerPoolUse
        registry.makeGauge(descriptor: Family.poolBusy).set(Int64(pool.busy))
        registry.makeGauge(descriptor: Family.poolQueued).set(Int64(pool.queued))
        registry.makeGauge(descriptor: Family.poolCapacity).set(Int64(pool.threads))
        registry.makeGauge(descriptor: Family.poolQueueCapacity).set(Int64(pool.queueLimit))
        let compute = host.computePoolUse
        registry.makeGauge(descriptor: Family.computeBusy).set(Int64(compute.busy))
        registry.makeGauge(descriptor: Family.computeQueued).set(Int64(compute.queued))
        registry.makeGauge(descriptor: Family.computeCapacity).set(Int64(compute.threads))
        for (index, running) in host.ioLoopTransfers.enumerated() {
            registry.makeGauge(descriptor: Family.ioLoopTransfers, labels: [("loop", String(index))]).set(Int64(running))
        }
    }

    /// The families: name and help text in one place each (the registry refuses one name with two helps).
    private enum Family {
        static var providerCalls: MetricNameDescriptor {
            prism("provider_calls", "total", "Provider calls by model and how they ended (ok, or the failure).")
        }
        static var firstToken: MetricNameDescriptor {
            prism("time_to_first_token", "seconds", "Seconds from starting a provider call to its first content (text, tool call or media).")
        }
        static var tokens: MetricNameDescriptor { prism("tokens", "total", "Tokens the providers reported, by model and direction.") }
        static var cost: MetricNameDescriptor { prism("cost_usd", "total", "Cost of the provider calls in US dollars, by model.") }
        static var cacheRequests: MetricNameDescriptor {
            prism("cache_requests", "total", "Response cache decisions, one per model tried: hit, coalesced (an identical request in progress answered), miss, refresh, bypass, uncacheable.")
        }
        static var pluginState: MetricNameDescriptor {
            prism("plugin_state", "", "1 for each plugin file's state (loaded, draining, failed, unloaded), 0 for the others.")
        }
        static var pluginCallsInFlight: MetricNameDescriptor {
            prism("plugin_calls_in_flight", "", "Provider calls running in each plugin file, draining versions included.")
        }
        static var poolBusy: MetricNameDescriptor { prism("worker_pool_busy", "", "Plugin worker threads running a call.") }
        static var poolQueued: MetricNameDescriptor { prism("worker_pool_queued", "", "Plugin calls waiting for a worker thread.") }
        static var poolCapacity: MetricNameDescriptor { prism("worker_pool_capacity", "", "Plugin worker threads at most (plugins.worker_threads).") }
        static var poolQueueCapacity: MetricNameDescriptor {
            prism("worker_pool_queue_capacity", "", "Plugin calls that may wait for a worker before more are refused (plugins.queued_calls).")
        }

        static var computeBusy: MetricNameDescriptor { prism("compute_pool_busy", "", "Compute pool threads running a CPU-bound plugin call (OCR, speech).") }
        static var computeQueued: MetricNameDescriptor { prism("compute_pool_queued", "", "CPU-bound plugin calls waiting for a compute thread.") }
        static var computeCapacity: MetricNameDescriptor { prism("compute_pool_capacity", "", "Compute pool threads at most (one per core).") }
        static var ioLoopTransfers: MetricNameDescriptor {
            prism("io_loop_transfers", "", "HTTP exchanges of non-blocking plugin calls and media fetches running on each host I/O loop (one loop per core).")
        }

        private static func prism(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "prism", metricName: name, unitName: unit, helpText: help)
        }
    }
}

/// The series of one family, made on first use of a label set and kept: the registry checks a
/// family's name and help text on every lookup, which costs more than the update itself (tens of
/// microseconds in a debug build, against about one here). Thread-safe: `lock` guards `byLabels`;
/// bounded by the label values in use (models, outcomes, allow-listed labels).
private final class Series<Metric: AnyObject & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var byLabels: [[String]: Metric] = [:]
    private let make: @Sendable ([(String, String)]) -> Metric

    init(_ make: @escaping @Sendable ([(String, String)]) -> Metric) {
        self.make = make
    }

    subscript(labels: [(String, String)]) -> Metric {
        let key = labels.flatMap { [$0.0, $0.1] }
        return lock.withLock {
            if let metric = byLabels[key] { return metric }
            let metric = make(labels)
            byLabels[key] = metric
            return metric
        }
    }
}

/// The plugin files seen so far; thread-safe (`lock` guards `names`).
private final class SeenPlugins: @unchecked Sendable {
    private let lock = NSLock()
    private var names: Set<String> = []

    /// Records `current` and returns the files seen before that are not in it.
    func update(_ current: Set<String>) -> Set<String> {
        lock.withLock {
            names.formUnion(current)
            return names.subtracting(current)
        }
    }
}

extension PluginCall.End {
    /// The call's end as `prism_provider_calls_total` labels it: `ok`, or the plugin's status.
    var outcome: String {
        if abandoned { return "abandoned" }
        switch prism_status(rawValue: UInt32(bitPattern: status)) {
        case PRISM_STATUS_OK: return "ok"
        case PRISM_STATUS_CANCELLED: return "cancelled"
        case PRISM_STATUS_DEADLINE_EXCEEDED: return "deadline_exceeded"
        case PRISM_STATUS_RATE_LIMITED: return "rate_limited"
        case PRISM_STATUS_UNAVAILABLE: return "unavailable"
        case PRISM_STATUS_INVALID_ARGUMENT: return "invalid_argument"
        case PRISM_STATUS_RESOURCE_EXHAUSTED: return "resource_exhausted"
        case PRISM_STATUS_UNAUTHENTICATED: return "unauthenticated"
        case PRISM_STATUS_FAILED_PRECONDITION: return "failed_precondition"
        case PRISM_STATUS_UNIMPLEMENTED: return "unimplemented"
        default: return "error"
        }
    }
}
