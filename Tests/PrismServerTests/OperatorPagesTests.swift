// The operator pages as the router serves them: /readyz follows the gateway's readiness (plugins
// loading, ready, draining), and /metrics renders MetricsInterceptor's counters in Prometheus text
// with go-grpc-prometheus's names, Go's code names and cumulative histogram buckets.
import NIOCore
@testable import PrismRPC
@testable import PrismServer
import XCTest

final class OperatorPagesTests: XCTestCase {
    private func pages() -> (Router, Readiness, MetricsInterceptor) {
        var router = Router()
        let readiness = Readiness()
        let metrics = MetricsInterceptor()
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

    func testMetricsExposition() throws {
        let (router, _, metrics) = pages()
        var head = CallHead(path: "/pkg.Svc/Do", service: "pkg.Svc", method: "Do", metadata: Metadata(), peer: "test", deadline: nil)
        head.callType = "server_stream"
        try metrics.accept(head)
        metrics.finished(head, status: Status(.ok, ""), elapsed: .milliseconds(3))
        try metrics.accept(head)
        metrics.finished(head, status: Status(.unavailable, "busy"), elapsed: .seconds(2))
        try metrics.accept(head)  // still running

        let page = try XCTUnwrap(router.page("/metrics"))()
        XCTAssertEqual(page.contentType, "text/plain; version=0.0.4; charset=utf-8")
        let lines = Set(page.body.split(separator: "\n").map(String.init))
        let labels = #"grpc_type="server_stream",grpc_service="pkg.Svc",grpc_method="Do""#
        for expected in [
            "# TYPE grpc_server_started_total counter",
            "grpc_server_started_total{\(labels)} 3",
            "grpc_server_handled_total{\(labels),grpc_code=\"OK\"} 1",
            "grpc_server_handled_total{\(labels),grpc_code=\"Unavailable\"} 1",
            "# TYPE grpc_server_handling_seconds histogram",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"0.001\"} 0",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"0.005\"} 1",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"1\"} 1",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"5\"} 2",
            "grpc_server_handling_seconds_bucket{\(labels),le=\"+Inf\"} 2",
            "grpc_server_handling_seconds_sum{\(labels)} 2.003",
            "grpc_server_handling_seconds_count{\(labels)} 2",
        ] {
            XCTAssertTrue(lines.contains(expected), "missing: \(expected)\n\(page.body)")
        }
    }
}
