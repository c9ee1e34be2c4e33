// Generate and ListProviders end to end: a real prism gateway with real plugin .so files, called
// by PrismRPC's client over h2c. Covers routing, adaptation reports, fallbacks, failures before
// and after content, cancellation, a hung plugin, and backpressure against a flooding plugin.
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class GenerateEndToEndTests: XCTestCase {
    private var gateway: TestGateway!

    override func setUp() async throws {
        let folder = try Plugins.folder()
        try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-example.so")
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        gateway = try await TestGateway(folder: folder)
    }

    override func tearDown() async throws {
        await gateway.stop()
    }

    func testListProvidersReturnsTheMatrix() async throws {
        let response = try await gateway.listProviders()
        withExtendedLifetime(response) {
            let providers = UnsafeBufferPointer(start: response.pointee.providers, count: response.pointee.n_providers).compactMap { $0 }
            XCTAssertEqual(providers.map { String(protoC: $0.pointee.plugin) }, ["libprism-plugin-example.so", "libprism-plugin-testkit.so"])
            let local = providers[0].pointee
            XCTAssertEqual(String(protoC: local.name), "local")
            XCTAssertEqual(local.state, PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED)
            let lite = local.models[1]!.pointee
            XCTAssertEqual(String(protoC: lite.id), "local/mediainfo-lite")
            XCTAssertEqual(lite.limits.pointee.max_image_long_edge, 768)
            XCTAssertEqual(lite.limits.pointee.max_images, 8)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: lite.inputs, count: lite.n_inputs)),
                           [PRISM__V1__MODALITY__MODALITY_TEXT, PRISM__V1__MODALITY__MODALITY_IMAGE])
        }
    }

    func testImageAndPDFThroughTheExamplePlugin() async throws {
        let request = GenerateRequestBuilder("what are these?")
            .with(TestMedia.png(width: 3000, height: 1000), mime: "image/png", name: "wide.png")
            .with(TestMedia.pdf(pages: 3), mime: "image/jpeg", name: "doc.pdf")  // a lie: the bytes win
            .routed(to: "local/mediainfo")
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        // Fitted under the model's 2048 px long edge (the fitter may round a pixel or two down).
        guard case let .routed(model, adaptations, attempt)? = events.first else { return XCTFail("first event is not routed: \(events)") }
        XCTAssertEqual(model, "local/mediainfo")
        XCTAssertEqual(attempt, 1)
        XCTAssertEqual(adaptations.count, 1)
        XCTAssertTrue(adaptations.first?.hasPrefix("image 'wide.png' 3000×1000 png→204") ?? false, "\(adaptations)")
        let text = events.compactMap(\.text).joined()
        XCTAssertNotNil(text.range(of: #"wide\.png image/png: 204[0-8]x68[0-3] pixels"#, options: .regularExpression), text)
        XCTAssertTrue(text.contains("doc.pdf application/pdf: 3 pages"), text)
        XCTAssertEqual(events.last, .finished(1))
    }

    func testPDFIsRasterizedForAModelWithoutPDFInput() async throws {
        let request = GenerateRequestBuilder("read this").with(TestMedia.pdf(pages: 2), name: "doc.pdf").routed(to: "local/mediainfo-lite")
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        guard case .routed(_, let adaptations, _)? = events.first else { return XCTFail("first event is not routed: \(events)") }
        XCTAssertEqual(adaptations.count, 1)
        XCTAssertTrue(adaptations[0].hasPrefix("pdf 'doc.pdf'→2 page images ("), adaptations[0])
        let text = events.compactMap(\.text).joined()
        XCTAssertTrue(text.contains("page-1.") && text.contains("page-2."), text)
        // 612×792 pt rendered to fill (not exceed) the model's 768 px long edge.
        XCTAssertNotNil(text.range(of: #"page-1\.(png|jpg) image/(png|jpeg): 5[89][0-9]x7[56][0-9] pixels"#, options: .regularExpression), text)
        // The text layer came along: "[page 1 text]\nPage 1" is one 20-character text part per page.
        XCTAssertEqual(text.components(separatedBy: "text: 20 characters").count - 1, 2, text)
    }

    func testAudioIsTranscribedByAnotherProvider() async throws {
        let request = GenerateRequestBuilder("summarize").with(TestMedia.wav(), name: "memo.wav").routed(to: "testkit/echo")
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events.first, .routed(model: "testkit/echo", adaptations: ["audio 'memo.wav'→transcript via testkit/transcriber"], attempt: 1))
        XCTAssertTrue(events.compactMap(\.text).joined().contains("transcript of 32044 bytes of audio/wav"))
    }

    func testNothingCapableIsFailedPreconditionNamingWhy() async throws {
        let request = GenerateRequestBuilder("hi").with(TestMedia.wav(), name: "memo.wav").routed(to: "local/mediainfo-lite", nativeOnly: true)
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .failedPrecondition)
        XCTAssertTrue(status.message.contains("local/mediainfo-lite cannot serve this request: it has no audio input (adaptation is off)"), status.message)
        XCTAssertTrue(events.isEmpty)
    }

    func testGarbageMediaIsInvalidArgument() async throws {
        let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("hi").with(Data("not media".utf8), mime: "image/png", name: "x.png"))
        XCTAssertEqual(status.code, .invalidArgument)
        XCTAssertTrue(status.message.contains("media 'x.png'"), status.message)
    }

    func testRetryableFailureRetriesThenFallsBack() async throws {
        let request = GenerateRequestBuilder("rate-limit").routed(to: "testkit/fail", fallbacks: ["testkit/echo"])
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        let routed = events.compactMap { event -> String? in
            if case let .routed(model, _, attempt) = event { return "\(model)#\(attempt)" }
            return nil
        }
        XCTAssertEqual(routed, ["testkit/fail#1", "testkit/fail#2", "testkit/echo#3"])
        XCTAssertEqual(events.compactMap(\.text), ["rate-limit\n"])
        // The testkit prices 1 µ$/token in and 2 out: 10 in + 5 out.
        XCTAssertTrue(events.contains(.usage(input: 10, output: 5, cost: 20)), "\(events)")
    }

    func testExhaustedRetriesAreUnavailableWithRetryAfter() async throws {
        let call = try await gateway.generate(GenerateRequestBuilder("rate-limit").routed(to: "testkit/fail"))
        do { for try await _ in call.responses {} } catch {}
        let status = await call.status()
        XCTAssertEqual(status.code, .unavailable, status.message)
        XCTAssertEqual(call.trailingMetadata["retry-after-ms"], "20")
    }

    func testFailureAfterContentEndsTheCallWithoutRetry() async throws {
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("after-content").routed(to: "testkit/fail", fallbacks: ["testkit/echo"]))
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertEqual(events.compactMap(\.text), ["partial answer"])
        XCTAssertEqual(events.filter { if case .routed = $0 { return true }; return false }.count, 1)
    }

    func testPluginStatusesMapToTheAPIsCodes() async throws {
        let cases: [(String, StatusCode, String)] = [
            ("invalid", .invalidArgument, "the vendor says the request is invalid"),
            ("unauthenticated", .failedPrecondition, "provider testkit rejected the gateway's own credentials"),
            ("garbage", .internal, "not a ProviderEvent"),
        ]
        for (say, code, message) in cases {
            let (_, status) = try await gateway.generateAll(GenerateRequestBuilder(say).routed(to: "testkit/fail"))
            XCTAssertEqual(status.code, code, say)
            XCTAssertTrue(status.message.contains(message), "\(say): \(status.message)")
        }
    }

    func testClientCancellationReachesThePlugin() async throws {
        let call = try await gateway.generate(GenerateRequestBuilder("go").routed(to: "testkit/slow"))
        var texts = 0
        for try await reply in call.responses {
            if case .text = try Event(reply) { texts += 1 }
            if texts == 3 { call.cancel(); break }
        }
        // The slow model polls is_cancelled and finishes: its plugin has nothing in flight soon after.
        try await waitUntil("the slow call ends") { self.gateway.gateway.plugins.plugins().allSatisfy { $0.callsInFlight == 0 } }
        XCTAssertEqual(gateway.gateway.plugins.statistics.abandonedCalls, 0)
    }

    func testHungPluginIsAbandonedAfterTheDeadline() async throws {
        let started = Date()
        let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("4").routed(to: "testkit/hang"), timeout: .milliseconds(300))
        XCTAssertEqual(status.code, .deadlineExceeded, status.message)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        try await waitUntil("the hung call is abandoned", seconds: 5) { self.gateway.gateway.plugins.statistics.abandonedCalls == 1 }
        // The server still serves while the plugin's thread sleeps.
        let (_, ok) = try await gateway.generateAll(GenerateRequestBuilder("still here").routed(to: "testkit/echo"))
        XCTAssertEqual(ok.code, .ok)
    }

    func testFloodingPluginIsHeldBackBySlowClient() async throws {
        let call = try await gateway.generate(GenerateRequestBuilder("3000").routed(to: "testkit/flood"))
        var texts = 0, bytes = 0
        for try await reply in call.responses {
            if texts == 0 { try await Task.sleep(nanoseconds: 500_000_000) }  // a slow reader at first
            if case .text(let t) = try Event(reply) {
                texts += 1
                bytes += t.utf8.count
            }
        }
        let finalStatus = await call.status()
        XCTAssertEqual(finalStatus.code, .ok, finalStatus.message)
        XCTAssertEqual(texts, 3000)
        XCTAssertEqual(bytes, 3000 * 1024)
        let peak = gateway.gateway.plugins.statistics.peakBufferedEvents
        XCTAssertLessThanOrEqual(peak, gateway.gateway.plugins.options.bufferedEventsPerCall)
        XCTAssertGreaterThan(peak, 0)
    }

    private func waitUntil(_ what: String, seconds: Double = 3, _ condition: @escaping () -> Bool) async throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        XCTFail("timed out: \(what)")
    }
}
