// Fallback between real vendor plugins: an Anthropic that answers 529 overloaded before the first
// token is retried, then the call moves to OpenAI, each against its fake.
import Foundation
import XCTest

final class VendorFallbackTests: XCTestCase {
    private let bed = VendorTestBed()

    override func tearDown() async throws {
        await bed.stop()
    }

    func testOverloadedAnthropicFallsBackToOpenAIBeforeTheFirstToken() async throws {
        let anthropic = try bed.startFake(.anthropic, fakeKey: "ak-test", key: "ak-test")
        let openai = try bed.startFake(.openAI, fakeKey: "sk-test", key: "sk-test")
        let gateway = try await bed.startGateway()

        let request = GenerateRequestBuilder("overloaded hi").routed(to: AnthropicProviderTests.model, fallbacks: ["openai/gpt-4o"])
        let (events, status) = try await gateway.generateAll(request)
        XCTAssertEqual(status.code, .ok, status.message)
        let routed = events.compactMap { if case let .routed(model, _, attempt) = $0 { return "\(model)#\(attempt)" } else { return nil } }
        XCTAssertEqual(routed, ["\(AnthropicProviderTests.model)#1", "\(AnthropicProviderTests.model)#2", "openai/gpt-4o#3"])
        XCTAssertEqual(events.compactMap(\.text).joined(), "You said: overloaded hi")
        XCTAssertEqual(anthropic.requests.count, 2)
        XCTAssertEqual(openai.requests.count, 1)
    }
}
