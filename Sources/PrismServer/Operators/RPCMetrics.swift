// The RPC metrics as go-grpc-prometheus names them (started, handled by code, a handling-time
// histogram with client_golang's default buckets), so existing gRPC dashboards work, plus the
// calls in flight; an interceptor on every call, recording into the gateway's registry.
import Foundation
import NIOCore
import PrismRPC
import Prometheus

/// Counts every call of the method table. Cheap: the series of a method are made once and kept;
/// a call start or end takes one short lock to find them, then updates atomics or a histogram.
final class RPCMetrics: ServerInterceptor, @unchecked Sendable {
    /// client_golang's `prometheus.DefBuckets`, which go-grpc-prometheus's handling-time histogram
    /// uses unless told otherwise: dashboards built on it query these `le` values.
    static let handlingBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct MethodSeries {
        let labels: [(String, String)]
        let started: Counter
        let handling: ValueHistogram
        var handled: [StatusCode: Counter] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let inFlight: Gauge
    private let lock = NSLock()
    /// By method path; guarded by `lock`. Only registered methods reach an interceptor, so this is
    /// bounded by the method table.
    private var series: [String: MethodSeries] = [:]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        inFlight = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "prism", metricName: "rpcs_in_flight", unitName: "",
                                                                       helpText: "RPCs started and not yet finished, on every protocol."))
    }

    func accept(_ call: CallHead) throws {
        let started = lock.withLock { methodSeries(call).started }
        started.increment()
        inFlight.increment()
    }

    func finished(_ call: CallHead, status: Status, elapsed: TimeAmount) {
        let (handled, handling) = lock.withLock { () -> (Counter, ValueHistogram) in
            var entry = methodSeries(call)
            if let counter = entry.handled[status.code] { return (counter, entry.handling) }
            let counter = registry.makeCounter(descriptor: Self.handled, labels: entry.labels + [("grpc_code", Self.goName(status.code))])
            entry.handled[status.code] = counter
            series[call.path] = entry
            return (counter, entry.handling)
        }
        handled.increment()
        handling.record(Double(elapsed.nanoseconds) / 1e9)
        inFlight.decrement()
    }

    /// The series of `call`'s method, made on its first call. Called with `lock` held.
    private func methodSeries(_ call: CallHead) -> MethodSeries {
        if let entry = series[call.path] { return entry }
        let labels = [("grpc_type", call.callType), ("grpc_service", call.service), ("grpc_method", call.method)]
        let entry = MethodSeries(
            labels: labels,
            started: registry.makeCounter(descriptor: Self.started, labels: labels),
            handling: registry.makeValueHistogram(descriptor: Self.handling, labels: labels, buckets: Self.handlingBuckets))
        series[call.path] = entry
        return entry
    }

    // go-grpc-prometheus's families, with its help texts.
    private static var started: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "grpc", subsystem: "server", metricName: "started", unitName: "total",
                             helpText: "Total number of RPCs started on the server.")
    }
    private static var handled: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "grpc", subsystem: "server", metricName: "handled", unitName: "total",
                             helpText: "Total number of RPCs completed on the server, regardless of success or failure.")
    }
    private static var handling: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "grpc", subsystem: "server", metricName: "handling", unitName: "seconds",
                             helpText: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.")
    }

    /// Go's names for the codes (`codes.Code.String()`), which go-grpc-prometheus puts in `grpc_code`.
    static func goName(_ code: StatusCode) -> String {
        switch code {
        case .ok: return "OK"
        case .cancelled: return "Canceled"
        case .unknown: return "Unknown"
        case .invalidArgument: return "InvalidArgument"
        case .deadlineExceeded: return "DeadlineExceeded"
        case .notFound: return "NotFound"
        case .alreadyExists: return "AlreadyExists"
        case .permissionDenied: return "PermissionDenied"
        case .resourceExhausted: return "ResourceExhausted"
        case .failedPrecondition: return "FailedPrecondition"
        case .aborted: return "Aborted"
        case .outOfRange: return "OutOfRange"
        case .unimplemented: return "Unimplemented"
        case .internal: return "Internal"
        case .unavailable: return "Unavailable"
        case .dataLoss: return "DataLoss"
        case .unauthenticated: return "Unauthenticated"
        }
    }
}
