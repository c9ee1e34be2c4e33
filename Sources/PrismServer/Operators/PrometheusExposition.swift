// Prometheus text exposition (format 0.0.4) of what the RPC layer's MetricsInterceptor counts,
// named as go-grpc-prometheus names them so existing gRPC dashboards work, and of the plugins'
// usage (tokens, cost). Written by hand: five families do not warrant swift-prometheus and
// swift-metrics in every build.
import PrismProviders
import PrismRPC

enum PrometheusExposition {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The whole /metrics page for a snapshot of the interceptor's counters (keyed by method path).
    static func render(_ snapshot: [String: MetricsInterceptor.MethodStats]) -> String {
        let methods = snapshot.sorted { $0.key < $1.key }.map { (labels(path: $0.key, type: $0.value.callType), $0.value) }
        var out = ""
        family(&out, "grpc_server_started_total", "counter", "Total number of RPCs started on the server.")
        for (labels, stats) in methods {
            sample(&out, "grpc_server_started_total", labels, Double(stats.started))
        }
        family(&out, "grpc_server_handled_total", "counter",
               "Total number of RPCs completed on the server, regardless of success or failure.")
        for (labels, stats) in methods {
            for (code, count) in stats.finishedByCode.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                sample(&out, "grpc_server_handled_total", labels + [("grpc_code", goName(code))], Double(count))
            }
        }
        family(&out, "grpc_server_handling_seconds", "histogram",
               "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.")
        for (labels, stats) in methods {
            var cumulative = 0
            for (i, count) in stats.latencyBuckets.enumerated() {
                cumulative += count
                let le = i < MetricsInterceptor.bucketBoundsMs.count ? number(MetricsInterceptor.bucketBoundsMs[i] / 1000) : "+Inf"
                sample(&out, "grpc_server_handling_seconds_bucket", labels + [("le", le)], Double(cumulative))
            }
            sample(&out, "grpc_server_handling_seconds_sum", labels, stats.latencySumSeconds)
            sample(&out, "grpc_server_handling_seconds_count", labels, Double(cumulative))
        }
        return out
    }

    /// `prism_tokens_total{provider,model,direction}` and `prism_cost_usd_total{provider,model}`.
    static func render(_ usage: [UsageTotals.Key: UsageTotals.Totals]) -> String {
        let models = usage.sorted { ($0.key.provider, $0.key.model) < ($1.key.provider, $1.key.model) }
        var out = ""
        family(&out, "prism_tokens_total", "counter", "Tokens the providers reported, by model and direction.")
        for (key, totals) in models {
            let labels = [("provider", key.provider), ("model", key.model)]
            sample(&out, "prism_tokens_total", labels + [("direction", "input")], Double(totals.inputTokens))
            sample(&out, "prism_tokens_total", labels + [("direction", "output")], Double(totals.outputTokens))
        }
        family(&out, "prism_cost_usd_total", "counter", "Cost of the provider calls in US dollars, by model.")
        for (key, totals) in models {
            sample(&out, "prism_cost_usd_total", [("provider", key.provider), ("model", key.model)], Double(totals.costUSDMicros) / 1e6)
        }
        return out
    }

    /// `grpc_type`, and `grpc_service` and `grpc_method` from `/package.Service/Method`.
    private static func labels(path: String, type: String) -> [(String, String)] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 2 else { return [("grpc_type", type), ("grpc_service", path), ("grpc_method", "")] }
        return [("grpc_type", type), ("grpc_service", String(parts[0])), ("grpc_method", String(parts[1]))]
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

    private static func family(_ out: inout String, _ name: String, _ type: String, _ help: String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private static func sample(_ out: inout String, _ name: String, _ labels: [(String, String)], _ value: Double) {
        let rendered = labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
        out += labels.isEmpty ? "\(name) \(number(value))\n" : "\(name){\(rendered)} \(number(value))\n"
    }

    /// Label values escape backslash, double quote and newline; nothing else.
    private static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Whole numbers without a fraction (counters), others as Swift prints a Double (Go-parsable).
    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
