// Fallback between real vendor plugins: an Anthropic that answers 529 overloaded before the first
// token is retried, then the call moves to OpenAI, each against its fake.
import Foundation
import XCTest

final class VendorFallbackTests: XCTestCase {
    private var fakes: [OpenAIFake] = []
    private var gateway: TestGateway?

    override func tearDown() async throws {
        await gateway?.stop()
        fakes.forEach { $0.stop() }
        for name in ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"] { unsetenv(name) }
    }

    func testOverloadedAnthropicFallsBackToOpenAIBeforeTheFirstToken() async throws {
        let anthropic = try OpenAIFake(key: "ak-test", script: "anthropic_fake.py")
        let openai = try OpenAIFake(key: "sk-test")
        fakes = [anthropic, openai]
        setenv("ANTHROPIC_API_KEY", "ak-test", 1)
        setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:\(anthropic.port)", 1)
        setenv("OPENAI_API_KEY", "sk-test", 1)
        setenv("OPENAI_BASE_URL", openai.baseURL, 1)
        let folder = try Plugins.folder()
        try Plugins.install(AnthropicProviderTests.plugin, into: folder, as: AnthropicProviderTests.plugin)
        try Plugins.install(OpenAIProviderTests.plugin, into: folder, as: OpenAIProviderTests.plugin)
        let gateway = try await TestGateway(folder: folder, watch: false)
        self.gateway = gateway

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
