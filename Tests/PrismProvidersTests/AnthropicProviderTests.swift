// The Anthropic plugin (libprism-plugin-anthropic.so) inside a real gateway, against the fake
// Messages API: streaming with ping, images and native PDF documents, tool_use joined, retries,
// key errors, mid-stream `error` events, cut streams and cancellation reaching the vendor.
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class AnthropicProviderTests: XCTestCase {
    private let bed = VendorTestBed()
    private var fake: VendorFake? { bed.fakes.first }

    static let model = "anthropic/claude-sonnet-4-5"

    /// Starts the fake requiring `fakeKey` and a gateway whose plugin sees `key` as
    /// ANTHROPIC_API_KEY (nil = unset) and the fake as ANTHROPIC_BASE_URL.
    private func start(fakeKey: String = "ak-test", key: String? = "ak-test") async throws -> TestGateway {
        try bed.startFake(.anthropic, fakeKey: fakeKey, key: key)
        return try await bed.startGateway()
    }

    override func tearDown() async throws {
        await bed.stop()
    }

    func testTextStreamsWithUsageAndHeaders() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("hello there").routed(to: Self.model))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events, [.routed(model: Self.model, adaptations: [], attempt: 1), .text("You said: "), .text("hello there"),
                                .usage(input: 12, output: 5, cost: 111), .finished(1)])  // 12 × $3 + 5 × $15 per million
        let request = try XCTUnwrap(fake?.requests.first)
        XCTAssertEqual(request["auth"] as? String, "ok")
        XCTAssertEqual(request["version"] as? String, "2023-06-01")
        let body = try XCTUnwrap(request["body"] as? [String: Any])
        XCTAssertEqual(body["stream"] as? Bool, true)
        XCTAssertEqual(body["max_tokens"] as? Int, 4096)
    }

    func testImageIsFittedAndPDFGoesAsADocument() async throws {
        let gateway = try await start()
        let request = GenerateRequestBuilder("look").with(TestMedia.png(width: 3000, height: 1000), mime: "image/png", name: "wide.png")
            .with(TestMedia.pdf(pages: 2), name: "doc.pdf").routed(to: Self.model)
        let (_, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        let body = try XCTUnwrap(fake?.requests.first?["body"] as? [String: Any])
        let images = try XCTUnwrap(body["images"] as? [[String: Any]])
        XCTAssertEqual(images.count, 1)
        XCTAssertLessThanOrEqual(images[0]["width"] as? Int ?? 9999, 1568)
        XCTAssertEqual(images[0]["newlines"] as? Bool, false)
        let documents = try XCTUnwrap(body["documents"] as? [[String: Any]])
        XCTAssertEqual(documents.first?["media_type"] as? String, "application/pdf")
        XCTAssertEqual(documents.first?["title"] as? String, "doc.pdf")
    }

    func testToolUseIsJoined() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("tool please").routed(to: Self.model))
        var tools: [[String]] = []
        var texts: [String] = []
        for try await reply in call.responses {
            let e = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
            withExtendedLifetime(e) {
                if e.pointee.event_case == PRISM__V1__GENERATE_EVENT__EVENT_TOOL_CALL, let t = e.pointee.tool_call?.pointee {
                    tools.append([String(protoC: t.id), String(protoC: t.name), String(protoC: t.arguments_json)])
                }
                if e.pointee.event_case == PRISM__V1__GENERATE_EVENT__EVENT_TEXT { texts.append(String(protoC: e.pointee.text!.pointee.text)) }
            }
        }
        let status = await call.status()
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(texts, ["Let me check."])
        XCTAssertEqual(tools, [["toolu_01", "get_weather", #"{"city": "Paris"}"#]])
    }

    func testOverloadedIsRetriedAndRateLimitHonoursRetryAfter() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("once-429 hi").routed(to: Self.model))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(fake?.requests.count, 2)
        XCTAssertEqual(events.compactMap(\.text).joined(), "You said: once-429 hi")
        let (_, overloaded) = try await gateway.generateAll(GenerateRequestBuilder("status-529").routed(to: Self.model))
        XCTAssertEqual(overloaded.code, .unavailable, overloaded.message)
        XCTAssertTrue(overloaded.message.contains("overloaded_error"), overloaded.message)
    }

    func testRejectedKeyIsFailedPreconditionNamingTheProvider() async throws {
        let gateway = try await start(fakeKey: "ak-right", key: "ak-wrong-secret")
        let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("hi").routed(to: Self.model))
        XCTAssertEqual(status.code, .failedPrecondition, status.message)
        XCTAssertTrue(status.message.contains("provider anthropic"), status.message)
        XCTAssertFalse(status.message.contains("ak-wrong-secret"), status.message)
    }

    func testMidStreamErrorAndCutStreamAreNonOKAfterPartialOutput() async throws {
        let gateway = try await start()
        for say in ["midstream", "cut"] {
            let (events, status) = try await gateway.generateAll(GenerateRequestBuilder(say).routed(to: Self.model))
            XCTAssertEqual(status.code, .unavailable, "\(say): \(status.message)")
            XCTAssertEqual(events.compactMap(\.text), ["partial"], say)
        }
    }

    func testCancellationClosesTheVendorConnection() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("slow").routed(to: Self.model))
        var texts = 0
        for try await reply in call.responses {
            if case .text = try Event(reply) { texts += 1 }
            if texts == 3 { call.cancel(); break }
        }
        let closed = try await fake!.waitForEntry(seconds: 3) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(closed, "the fake never saw the connection close")
    }

    func testWithoutKeyTheProviderIsNotConfiguredNotFailed() async throws {
        let gateway = try await start(key: nil)
        let providers = try await gateway.providers()
        XCTAssertEqual(providers.first?.state, PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED)
        XCTAssertEqual(providers.first?.models, [])
    }
}
