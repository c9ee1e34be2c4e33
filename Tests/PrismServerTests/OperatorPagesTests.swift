// The operator pages as the router serves them: /readyz follows the gateway's readiness (plugins
// loading, ready, draining), and /metrics renders the RPC families with go-grpc-prometheus's names,
// Go's code names and client_golang's default buckets, in swift-prometheus's text.
import NIOCore
@testable import PrismProviders
@testable import PrismRPC
@testable import PrismServer
import XCTest

final class OperatorPagesTests: XCTestCase {
    private func pages() -> (Router, Readiness, ProviderMetrics) {
        var router = Router()
        let readiness = Readiness()
        let metrics = ProviderMetrics()
        OperatorPages.register(on: &router, readiness: readiness, metrics: metrics)
        return (router, readiness, metrics)
    }

    func testReadinessFollowsPluginsAndDrain() throws {
        let (router, readiness, _) = pages()
        let readyz = try XCTUnwrap(router.page("/readyz"))
        XCTAssertEqual(readyz().status, 503)
        XCTAssertEqual(readyz().body, "not ready: provider plugins are loading\n")
        readiness.markPluginsLoaded()
        XCTAssertEqual(readyz().status, 200)
        readiness.markDraining()
        XCTAssertEqual(readyz().status, 503)
        XCTAssertEqual(readyz().body, "not ready: draining for shutdown\n")
        XCTAssertEqual(try XCTUnwrap(router.page("/healthz"))().status, 200, "alive whatever the readiness")
    }

    func testRPCMetricsExposition() throws {
        let (router, _, metrics) = pages()
        let rpc = RPCMetrics(registry: metrics.registry)
        var head = CallHead(path: "/pkg.Svc/Do", service: "pkg.Svc", method: "Do", metadata: Metadata(), peer: "test", deadline: nil)
        head.callType = "server_stream"
        try rpc.accept(head)
        rpc.finished(head, status: Status(.ok, ""), elapsed: .milliseconds(3))
        try rpc.accept(head)
        rpc.finished(head, status: Status(.unavailable, "busy"), elapsed: .seconds(2))
        try rpc.accept(head)  // still running

        let page = try XCTUnwrap(router.page("/metrics"))()
        XCTAssertEqual(page.contentType, "text/plain; version=0.0.4; charset=utf-8")
        let lines = Set(page.body.split(separator: "\n").map(String.init))
        let labels = #"grpc_type="server_stream",grpc_service="pkg.Svc",grpc_method="Do""#
        for expected in [
            "# TYPE grpc_server_started_total counter",
            "# HELP grpc_server_started_total Total number of RPCs started on the server.",
            "grpc_server_started_total{\(labels)} 3",
            "grpc_server_handled_total{\(labels),grpc_code=\"OK\"} 1",
            "grpc_server_handled_total{\(labels),grpc_code=\"Unavailable\"} 1",
            "# TYPE grpc_server_handling_seconds histogram",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"0.005\"} 1",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"1.0\"} 1",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"2.5\"} 2",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"10.0\"} 2",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"+Inf\"} 2",
            "grpc_server_handling_seconds_sum{\(labels)} 2.003",
            "grpc_server_handling_seconds_count{\(labels)} 2",
            "prism_rpcs_in_flight 1.0",
        ] {
            XCTAssertTrue(lines.contains(expected), "missing: \(expected)\n\(page.body)")
        }
        // client_golang's DefBuckets, no others (1 ms is not one of them).
        let bounds = lines.filter { $0.hasPrefix("grpc_server_handling_seconds_bucket") }
            .compactMap { $0.split(separator: "\"").dropLast().last.map(String.init) }
        XCTAssertEqual(bounds.filter { $0 != "+Inf" }.compactMap(Double.init).sorted(), RPCMetrics.handlingBuckets)
        XCTAssertEqual(bounds.count, RPCMetrics.handlingBuckets.count + 1, "and +Inf")
    }

    func testRequestLabelsBecomeMetricLabelsOnlyWhenAllowListed() {
        let metrics = ProviderMetrics(labelAllowList: ["team", "app"])
        var request = GenerationRequest(messages: [])
        request.labels = ["team": String(repeating: "t", count: 100), "user": "alice"]
        let dimensions = metrics.dimensions(for: request)
        XCTAssertEqual(dimensions.map(\.0), ["app", "team", "key"], "sorted, every allow-listed name, nothing else; then the key")
        XCTAssertEqual(dimensions.map(\.1), ["", String(repeating: "t", count: ProviderMetrics.maxLabelValueLength), ""])
        // The caller's API key name, when the call has one.
        let keyed = Caller.$current.withValue(Caller(keyName: "team-a")) { metrics.dimensions(for: request) }
        XCTAssertEqual(keyed.last?.0, "key")
        XCTAssertEqual(keyed.last?.1, "team-a")
        // One Character of a thousand scalars is cut too.
        request.labels = ["app": "e" + String(repeating: "\u{301}", count: 1000)]
        XCTAssertEqual(metrics.dimensions(for: request)[0].1.unicodeScalars.count, ProviderMetrics.maxLabelValueLength)
    }

    func testAllowListProblems() {
        XCTAssertNil(ProviderMetrics.allowListProblem(["team", "_app2"]))
        XCTAssertEqual(ProviderMetrics.allowListProblem(["model"]), "'model' is a label of Prism's own metrics")
        XCTAssertEqual(ProviderMetrics.allowListProblem(["key"]), "'key' is a label of Prism's own metrics")
        for bad in ["2team", "te-am", "__x", "", "é"] {
            XCTAssertNotNil(ProviderMetrics.allowListProblem([bad]), bad)
        }
        XCTAssertEqual(ProviderMetrics.allowListProblem(["a", "a"]), "names a label twice")
        XCTAssertNotNil(ProviderMetrics.allowListProblem((0...ProviderMetrics.maxAllowListedLabels).map { "l\($0)" }))
    }
}
