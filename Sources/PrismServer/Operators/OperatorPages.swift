// The operator pages, for load balancers and Prometheus: /healthz (the process serves), /readyz
// (plugins loaded and not draining) and /metrics (the gateway's registry in Prometheus text).
// Registered as GET pages on the gRPC port's router and on the admin listener's, if configured.
import Foundation
import PrismProviders
import PrismRPC

/// Whether the gateway should get traffic: not before its plugins have loaded, not while it
/// drains for shutdown. Thread-safe (`lock` guards both flags); read by /readyz on the event loops.
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var pluginsLoaded = false
    private var draining = false
    /// Engines the gateway needs, each asked for why it is down (nil: up), e.g. PostgreSQL.
    private var dependencies: [@Sendable () -> String?] = []

    public init() {}

    /// Makes readiness also depend on an engine: `reason` says why it cannot be used now, or nil.
    public func depend(on reason: @escaping @Sendable () -> String?) { lock.withLock { dependencies.append(reason) } }

    public func markPluginsLoaded() { lock.withLock { pluginsLoaded = true } }
    public func markDraining() { lock.withLock { draining = true } }

    /// Nil when ready, else why not.
    public var notReadyReason: String? {
        lock.withLock {
            if draining { return "draining for shutdown" }
            if !pluginsLoaded { return "provider plugins are loading" }
            return dependencies.lazy.compactMap { $0() }.first
        }
    }
}

enum OperatorPages {
    /// Prometheus's text exposition format 0.0.4, which swift-prometheus writes.
    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Adds the three pages. `metrics` holds every family; `plugins`, when given, sets the plugin
    /// and worker-pool gauges just before each rendering.
    static func register(on router: inout Router, readiness: Readiness, metrics: ProviderMetrics, plugins: PluginHost? = nil) {
        router.page("/healthz") { HTTPPage(body: "ok\n") }
        router.page("/readyz") {
            guard let reason = readiness.notReadyReason else { return HTTPPage(body: "ready\n") }
            return HTTPPage(status: 503, body: "not ready: \(reason)\n")
        }
        router.page("/metrics") {
            if let plugins { metrics.observe(plugins) }
            return HTTPPage(contentType: metricsContentType, body: metrics.registry.emitToString())
        }
    }
}
