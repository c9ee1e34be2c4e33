// The operator pages on the gRPC port, for load balancers and Prometheus: /healthz (the
// process serves), /readyz (plugins loaded and not draining) and /metrics. Registered on the
// router as GET pages, so HTTP/1.1 and HTTP/2 clients reach them alike.
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
    static func register(on router: inout Router, readiness: Readiness, metrics: MetricsInterceptor,
                         usage: UsageTotals = UsageTotals()) {
        router.page("/healthz") { HTTPPage(body: "ok\n") }
        router.page("/readyz") {
            guard let reason = readiness.notReadyReason else { return HTTPPage(body: "ready\n") }
            return HTTPPage(status: 503, body: "not ready: \(reason)\n")
        }
        router.page("/metrics") {
            HTTPPage(contentType: PrometheusExposition.contentType,
                     body: PrometheusExposition.render(metrics.snapshot()) + PrometheusExposition.render(usage.snapshot()))
        }
    }
}
