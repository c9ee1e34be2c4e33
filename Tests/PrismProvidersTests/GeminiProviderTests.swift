// The Gemini plugin (libprism-plugin-gemini.so) inside a real gateway, against the fake Gemini
// API: its model rows and config checks, CRLF-framed streaming with running usage, inline media,
// whole functionCall parts, a 429 with RetryInfo, a wrong key (400 API_KEY_INVALID), a cut stream,
// and cancellation. The Files API, schemas and TTS are covered from Python (test_vendor_gemini.py).
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class GeminiProviderTests: XCTestCase {
    private let bed = VendorTestBed()
    private var fake: VendorFake? { bed.fakes.first }

    static let model = "gemini/gemini-2.5-flash"

    /// Starts the fake requiring `fakeKey` and a gateway whose plugin sees `key` as GEMINI_API_KEY,
    /// the fake as GEMINI_BASE_URL and `config` (when given) as its plugin configuration.
    private func start(fakeKey: String = "gk-test", key: String = "gk-test", config: String? = nil) async throws -> TestGateway {
        try bed.startFake(.gemini, fakeKey: fakeKey, key: key)
        return try await bed.startGateway { settings in
            if let config { settings.pluginConfig["gemini"] = config }
        }
    }

    override func tearDown() async throws {
        await bed.stop()
    }

    func testDescribeListsTheGenerateModelsThenTheSpeechModelThenTheEmbedders() async throws {
        let gateway = try await start()
        let response = try await gateway.listProviders()
        let rows = withExtendedLifetime(response) { () -> [(String, [UInt32], [UInt32], Bool)] in
            let provider = response.pointee.providers[0]!.pointee
            return UnsafeBufferPointer(start: provider.models, count: provider.n_models).compactMap { $0?.pointee }.map { m in
                (String(protoC: m.id), UnsafeBufferPointer(start: m.operations, count: m.n_operations).map { UInt32($0.rawValue) },
                 UnsafeBufferPointer(start: m.outputs, count: m.n_outputs).map { UInt32($0.rawValue) }, m.features?.pointee.json_schema != 0)
            }
        }
        let generate = UInt32(PRISM__V1__OPERATION__OPERATION_GENERATE.rawValue), synthesize = UInt32(PRISM__V1__OPERATION__OPERATION_SYNTHESIZE.rawValue)
        let embed = UInt32(PRISM__V1__OPERATION__OPERATION_EMBED.rawValue)
        let text = UInt32(PRISM__V1__MODALITY__MODALITY_TEXT.rawValue), audio = UInt32(PRISM__V1__MODALITY__MODALITY_AUDIO.rawValue)
        XCTAssertEqual(rows.map(\.0), ["gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro", "gemini/gemini-2.5-flash-preview-tts",
                                       "gemini/gemini-embedding-001", "gemini/text-embedding-004"])
        XCTAssertEqual(rows.map(\.1), [[generate], [generate], [synthesize], [embed], [embed]])
        XCTAssertEqual(rows.map(\.2), [[text], [text], [audio], [text], [text]])
        XCTAssertEqual(rows.map(\.3), [true, true, false, false, false])
    }

    func testBadConfigFailsThePluginNamingTheKey() async throws {
        let gateway = try await start(config: #"{"inline_limit_bytes": -5}"#)
        let providers = try await gateway.providers()
        XCTAssertEqual(providers.first?.state, PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_FAILED)
        XCTAssertTrue(providers.first?.reason.contains("inline_limit_bytes") == true, providers.first?.reason ?? "")
    }

    func testUploadedFileThatFailsOrNeverBecomesActiveEndsTheCallWithoutGenerating() async throws {
        let config = #"{"inline_limit_bytes": 1000, "file_poll_interval_ms": 20, "file_processing_timeout_seconds": 1}"#
        let gateway = try await start(config: config)
        let broken = GenerateRequestBuilder("hear this").with(TestMedia.wav(seconds: 0.5), mime: "audio/wav", name: "broken.wav")
        let (_, failed) = try await gateway.generateAll(broken.routed(to: Self.model))
        XCTAssertEqual(failed.code, .invalidArgument, failed.message)
        XCTAssertTrue(failed.message.contains("broken.wav") && failed.message.contains("FAILED"), failed.message)

        let stuck = GenerateRequestBuilder("hear that").with(TestMedia.wav(seconds: 0.5), mime: "audio/wav", name: "stuck.wav")
        let (_, late) = try await gateway.generateAll(stuck.routed(to: Self.model))
        XCTAssertEqual(late.code, .unavailable, late.message)
        XCTAssertTrue(late.message.contains("did not finish processing"), late.message)
        let log = fake?.log() ?? []
        let starts = log.filter { $0["kind"] as? String == "upload-start" }.compactMap { $0["display_name"] as? String }
        XCTAssertEqual(starts.filter { $0 == "broken.wav" }.count, 1, "a FAILED file is final")
        XCTAssertGreaterThanOrEqual(starts.filter { $0 == "stuck.wav" }.count, 1, "\(starts)")
        XCTAssertFalse(log.contains { ($0["path"] as? String)?.contains(":streamGenerateContent") == true }, "nothing was generated")
    }

    func testTextStreamsWithTheLastRunningUsage() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("hello").routed(to: Self.model))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events, [.routed(model: Self.model, adaptations: [], attempt: 1), .text("You said: "), .text("hello"),
                                .usage(input: 9, output: 4, cost: 12), .finished(1)])  // 9 × $0.30 + 4 × $2.50 per million, whole micro-dollars
        let request = try XCTUnwrap(fake?.requests.first)
        XCTAssertEqual(request["path"] as? String, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        XCTAssertEqual(request["auth"] as? String, "ok")
    }

    func testImageAndPDFGoInline() async throws {
        let gateway = try await start()
        let request = GenerateRequestBuilder("look").with(TestMedia.png(width: 300, height: 100), mime: "image/png", name: "small.png")
            .with(TestMedia.pdf(pages: 1), name: "doc.pdf").routed(to: Self.model)
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        let media = try XCTUnwrap((fake?.requests.first?["body"] as? [String: Any])?["media"] as? [[String: Any]])
        XCTAssertEqual(media.compactMap { $0["mime_type"] as? String }, ["image/png", "application/pdf"])
        XCTAssertTrue(media.allSatisfy { $0["newlines"] as? Bool == false })
        XCTAssertTrue(events.compactMap(\.text).joined().contains("[image/png 300x100]"))
    }

    func testFunctionCallArrivesWhole() async throws {
        let gateway = try await start()
        let call = try await gateway.generate(GenerateRequestBuilder("tool please").routed(to: Self.model))
        var tools: [[String]] = []
        for try await reply in call.responses {
            let e = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
            withExtendedLifetime(e) {
                if e.pointee.event_case == PRISM__V1__GENERATE_EVENT__EVENT_TOOL_CALL, let t = e.pointee.tool_call?.pointee {
                    tools.append([String(protoC: t.name), String(protoC: t.arguments_json)])
                }
            }
        }
        let status = await call.status()
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(tools, [["get_weather", #"{"city":"Paris"}"#]])
    }

    func testQuotaIsRetriedAfterRetryInfo() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("once-429 hi").routed(to: Self.model))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(fake?.requests.count, 2)
        XCTAssertEqual(events.compactMap(\.text).joined(), "You said: once-429 hi")
    }

    func testInvalidKeyIsFailedPreconditionNamingTheProvider() async throws {
        let gateway = try await start(fakeKey: "gk-right", key: "gk-wrong-secret")
        let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("hi").routed(to: Self.model))
        XCTAssertEqual(status.code, .failedPrecondition, status.message)
        XCTAssertTrue(status.message.contains("provider gemini"), status.message)
        XCTAssertFalse(status.message.contains("gk-wrong-secret"), status.message)
    }

    func testCutStreamIsNonOKAfterPartialOutputAndCancellationCloses() async throws {
        let gateway = try await start()
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("cut").routed(to: Self.model))
        XCTAssertEqual(status.code, .unavailable, status.message)
        XCTAssertEqual(events.compactMap(\.text), ["partial"])

        let call = try await gateway.generate(GenerateRequestBuilder("slow").routed(to: Self.model))
        var texts = 0
        for try await reply in call.responses {
            if case .text = try Event(reply) { texts += 1 }
            if texts == 3 { call.cancel(); break }
        }
        let closed = try await fake!.waitForEntry(seconds: 3) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(closed, "the fake never saw the connection close")
    }
}
