// The OpenAI plugin (libprism-plugin-openai.so, on PrismPluginKit) inside a real gateway, against
// the fake OpenAI server: streaming, image fitting, tool calls, retries, key errors, broken
// streams, cancellation reaching the vendor, the models listed with a key, and the keyless and
// unconfigured setups. The media endpoints are tested from Python (Tests/interop/test_vendor_openai.py).
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class OpenAIProviderTests: XCTestCase {
    private let bed = VendorTestBed()
    private var fake: VendorFake? { bed.fakes.first }

    /// Starts the fake (requiring `fakeKey` when given) and a gateway whose plugin sees `key`
    /// and `baseURL` as OPENAI_API_KEY and OPENAI_BASE_URL (nil = unset).
    private func start(fakeKey: String? = "sk-test", key: String? = "sk-test", useBaseURL: Bool = true) async throws -> TestGateway {
        try bed.startFake(.openAI, fakeKey: fakeKey, key: key, useBaseURL: useBaseURL)
        return try await bed.startGateway()
    }

    override func tearDown() async throws {
        await bed.stop()
    }

    func testTextStreamsWithUsage() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("hello there").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events, [.routed(model: "openai/gpt-4o", adaptations: [], attempt: 1), .text("You said: "), .text("hello there"),
                                .usage(input: 16, output: 7, cost: 110), .finished(1)])  // 16 × $2.50 + 7 × $10 per million
        let request = try XCTUnwrap(fake?.requests.first)
        XCTAssertEqual(request["auth"] as? String, "ok")
        XCTAssertEqual(request["content_type"] as? String, "application/json")
        XCTAssertEqual(request["accept"] as? String, "text/event-stream")
        let body = try XCTUnwrap(request["body"] as? [String: Any])
        XCTAssertEqual(body["model"] as? String, "gpt-4o")
        XCTAssertEqual(body["stream"] as? Bool, true)
        XCTAssertEqual((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool, true)

        // A second call reuses the first one's connection.
        let (_, again) = try await gateway.generateAll(GenerateRequestBuilder("again").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(again.code, .ok, again.message)
        let ports = fake?.requests.compactMap { $0["peer_port"] as? Int } ?? []
        XCTAssertEqual(ports.count, 2)
        XCTAssertEqual(Set(ports).count, 1, "a new connection per call: \(ports)")
    }

    func testImageIsFittedBeforeSending() async throws {
        let gateway = try await start()
        let request = GenerateRequestBuilder("what is this").with(TestMedia.png(width: 3000, height: 1000), mime: "image/png", name: "wide.png")
            .routed(to: "openai/gpt-4o")
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        guard case .routed(_, let adaptations, _)? = events.first else { return XCTFail("no routed event: \(events)") }
        XCTAssertTrue(adaptations.first?.hasPrefix("image 'wide.png' 3000×1000") ?? false, "\(adaptations)")
        let images = try XCTUnwrap((fake?.requests.first?["body"] as? [String: Any])?["images"] as? [[String: Any]])
        XCTAssertEqual(images.count, 1)
        let width = images[0]["width"] as? Int ?? 0, height = images[0]["height"] as? Int ?? 0
        XCTAssertTrue((2040...2048).contains(width) && (675...683).contains(height), "sent \(width)x\(height)")
        XCTAssertEqual(images[0]["detail"] as? String, "auto")
        XCTAssertEqual(images[0]["newlines"] as? Bool, false)
        XCTAssertTrue(events.compactMap(\.text).joined().contains("[image \(width)x\(height) "))
    }

    func testToolCallFragmentsAreJoinedByIndex() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("use a tool please").routed(to: "openai/gpt-4o"))
        var tools: [[String]] = []
        var finished: Int?
        for try await reply in call.responses {
            let e = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
            withExtendedLifetime(e) {
                if e.pointee.event_case == PRISM__V1__GENERATE_EVENT__EVENT_TOOL_CALL, let t = e.pointee.tool_call?.pointee {
                    tools.append([String(protoC: t.id), String(protoC: t.name), String(protoC: t.arguments_json)])
                }
                if e.pointee.event_case == PRISM__V1__GENERATE_EVENT__EVENT_FINISHED { finished = Int(e.pointee.finished!.pointee.stop_reason.rawValue) }
            }
        }
        let status = await call.status()
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(tools, [["call_a1", "get_weather", #"{"city":"Paris"}"#], ["call_b2", "get_time", #"{"tz":"CET"}"#]])
        XCTAssertEqual(finished, 3)  // STOP_TOOL_USE
    }

    func testRateLimitIsRetriedAfterRetryAfter() async throws {
        let gateway = try await start()
        let started = Date()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("once-429 hi").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(status.code, .ok, status.message)
        let attempts = events.compactMap { if case let .routed(_, _, attempt) = $0 { return attempt } else { return nil } }
        XCTAssertEqual(attempts, [1, 2])
        XCTAssertEqual(fake?.requests.count, 2)
        // The fake's retry-after: 1 was honoured (the host's own first backoff is 0.1 s).
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9)
        XCTAssertEqual(events.compactMap(\.text).joined(), "You said: once-429 hi")
    }

    func testRejectedKeyIsFailedPreconditionNamingTheProvider() async throws {
        let gateway = try await start(fakeKey: "sk-right", key: "sk-wrong-secret")
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("hi").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(status.code, .failedPrecondition, status.message)
        XCTAssertTrue(status.message.contains("provider openai"), status.message)
        XCTAssertFalse(status.message.contains("sk-wrong-secret"), status.message)
        XCTAssertTrue(events.compactMap(\.text).isEmpty)
        XCTAssertEqual(fake?.requests.count, 1, "a rejected key is not retried")
    }

    func testStreamCutMidwayIsNonOKAfterPartialOutput() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("cut").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(status.code, .unavailable, status.message)
        XCTAssertEqual(events.compactMap(\.text), ["partial ", "answer"])
        XCTAssertEqual(fake?.requests.count, 1, "no retry after content")
    }

    func testMidStreamErrorFrameIsNonOKAfterPartialOutput() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("midstream").routed(to: "openai/gpt-4o"))
        XCTAssertEqual(status.code, .unavailable, status.message)
        XCTAssertTrue(status.message.contains("mid-stream"), status.message)
        XCTAssertEqual(events.compactMap(\.text), ["partial"])
    }

    func testCancellationClosesTheVendorConnection() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("slow").routed(to: "openai/gpt-4o"))
        var texts = 0
        for try await reply in call.responses {
            if case .text = try Event(reply) { texts += 1 }
            if texts == 3 { call.cancel(); break }
        }
        let closed = try await fake!.waitForEntry(seconds: 3) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(closed, "the fake never saw the connection close: \(fake!.log())")
        XCTAssertFalse(fake!.log().contains { $0["event"] as? String == "completed" })
    }

    func testCancellationBeforeTheFirstByteClosesTheConnectionAtOnce() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("stall").routed(to: "openai/gpt-4o"))
        for try await _ in call.responses { break }  // routed: the plugin is calling the vendor
        _ = try await fake!.waitForEntry(seconds: 3) { $0["text"] as? String == "stall" }
        let cancelled = Date()
        call.cancel()
        let closed = try await fake!.waitForEntry(seconds: 3) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(closed, "the fake never saw the connection close")
        // The transfer polls for cancellation every 50 ms; generous for a busy machine.
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 1.0)
        XCTAssertEqual(gateway.gateway.plugins.statistics.abandonedCalls, 0)
    }

    func testKeylessLocalBaseURLServesText() async throws {
        let gateway = try await start(fakeKey: nil, key: nil)
        let providers = try await gateway.providers()
        XCTAssertEqual(providers.first?.models, ["openai/local"])
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("hi local").routed(to: "openai/local"))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events.compactMap(\.text).joined(), "You said: hi local")
        XCTAssertEqual(fake?.requests.first?["auth"] as? String, "none")
    }

    func testWithAKeyTheAudioTranscriptionSpeechImageAndEmbeddingModelsAreListed() async throws {
        let gateway = try await start()
        let providers = try await gateway.providers()
        XCTAssertEqual(providers.first?.models, ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/gpt-4.1-mini",
                                                 "openai/gpt-4o-audio-preview", "openai/whisper-1", "openai/tts-1",
                                                 "openai/gpt-4o-mini-tts", "openai/gpt-image-1",
                                                 "openai/text-embedding-3-small", "openai/text-embedding-3-large"])
    }

    func testWithoutKeyOrBaseURLTheProviderIsNotConfiguredNotFailed() async throws {
        let gateway = try await start(key: nil, useBaseURL: false)
        let providers = try await gateway.providers()
        XCTAssertEqual(providers.count, 1)
        XCTAssertEqual(providers.first?.state, PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED)
        XCTAssertEqual(providers.first?.models, [])
    }
}
