// The response cache's parts that the interop tests reach only by luck of timing: single flight's
// bound, a failed leader and a cancelled waiter; the default rule; the key's canonical encoding
// (what changes it and what does not); the recorder's idea of a complete answer.
import Foundation
import XCTest
@testable import PrismProviders

final class ResponseCachingTests: XCTestCase {
    /// Waits (polling, with a deadline) until `flight` has `count` waiters on `key`.
    private func waitForWaiters(_ flight: SingleFlight, _ key: Data, _ count: Int) async throws {
        let deadline = Date().addingTimeInterval(10)
        while flight.waiting(key) < count {
            guard Date() < deadline else { return XCTFail("only \(flight.waiting(key)) of \(count) waiters joined") }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    func testWaitersGetTheLeadersAnswer() async throws {
        let flight = SingleFlight(maxWaiters: 8)
        let key = Data([1])
        guard case .lead = await flight.join(key) else { return XCTFail("the first request must lead") }
        let waiters = (0..<3).map { _ in Task { await flight.join(key) } }
        try await waitForWaiters(flight, key, 3)
        flight.finish(key, with: Data("answer".utf8))
        for waiter in waiters {
            guard case .answer(let data) = await waiter.value else { return XCTFail("a waiter got no answer") }
            XCTAssertEqual(data, Data("answer".utf8))
        }
        // The flight is over: the next request leads a new one.
        guard case .lead = await flight.join(key) else { return XCTFail("no new lead after the flight ended") }
    }

    func testAFailedLeaderSendsWaitersToTheirOwnCalls() async throws {
        let flight = SingleFlight(maxWaiters: 8)
        let key = Data([2])
        _ = await flight.join(key)
        let waiter = Task { await flight.join(key) }
        try await waitForWaiters(flight, key, 1)
        flight.finish(key, with: nil)
        guard case .alone = await waiter.value else { return XCTFail("a waiter of a failed leader must call alone") }
    }

    func testWaitersPastTheBoundCallAlone() async throws {
        let flight = SingleFlight(maxWaiters: 2)
        let key = Data([3])
        _ = await flight.join(key)
        let waiters = (0..<2).map { _ in Task { await flight.join(key) } }
        try await waitForWaiters(flight, key, 2)
        guard case .alone = await flight.join(key) else { return XCTFail("a third waiter must not wait") }
        flight.finish(key, with: Data([9]))
        for waiter in waiters { _ = await waiter.value }
    }

    func testACancelledWaiterStopsWaiting() async throws {
        let flight = SingleFlight(maxWaiters: 8)
        let key = Data([4])
        _ = await flight.join(key)
        let waiter = Task { await flight.join(key) }
        try await waitForWaiters(flight, key, 1)
        waiter.cancel()
        guard case .alone = await waiter.value else { return XCTFail("a cancelled waiter must return") }
        XCTAssertEqual(flight.waiting(key), 0)
        flight.finish(key, with: nil)
    }

    func testDefaultRule() {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("hi")])])
        XCTAssertFalse(GenerationCache.writesByDefault(request), "an unset temperature samples")
        request.temperature = 0
        XCTAssertTrue(GenerationCache.writesByDefault(request))
        request.tools = [ToolSpec(name: "t", description: "", inputSchemaJSON: "{}")]
        XCTAssertFalse(GenerationCache.writesByDefault(request), "tools only when asked (REFRESH)")
        request.tools = []
        request.outputs = [.audio]
        XCTAssertFalse(GenerationCache.writesByDefault(request), "media outputs are never kept")
        request.outputs = []
        request.temperature = nil
        request.responseSchemaJSON = #"{"type":"object"}"#
        XCTAssertTrue(GenerationCache.writesByDefault(request), "a schema with the default temperature")
        request.temperature = 0.7
        XCTAssertFalse(GenerationCache.writesByDefault(request))
    }

    func testKeyCountsWhatIsSentAndNothingElse() {
        func key(_ change: (inout GenerationRequest) -> Void = { _ in }) -> Data {
            var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [
                .text("describe"), .media(MediaInput(mimeType: "image/png", data: Data([1, 2, 3]), name: "a.png"))])])
            request.temperature = 0
            change(&request)
            return CacheKey.of(request, model: "openai/gpt-4o", operation: .generate)
        }
        let base = key()
        XCTAssertEqual(base.count, 32)
        XCTAssertEqual(key { $0.labels = ["team": "x"]; $0.requestID = "other"; $0.deadline = Date() }, base)
        XCTAssertEqual(key { $0.messages[0].parts[1] = .media(MediaInput(mimeType: "image/png", data: Data([1, 2, 3]), name: "b.png")) }, base,
                       "a medium counts by its bytes, not its name")
        XCTAssertNotEqual(key { $0.messages[0].parts[1] = .media(MediaInput(mimeType: "image/png", data: Data([1, 2, 4]))) }, base)
        XCTAssertNotEqual(key { $0.temperature = nil }, base)
        XCTAssertNotEqual(key { $0.maxTokens = 10 }, base)
        XCTAssertNotEqual(key { $0.system = "s" }, base)
        // Field boundaries are encoded: moving text between parts changes the key.
        XCTAssertNotEqual(key { $0.messages[0].parts = [.text("desc"), .text("ribe")] },
                          key { $0.messages[0].parts = [.text("descr"), .text("ibe")] })
        XCTAssertNotEqual(CacheKey.of(GenerationRequest(messages: []), model: "a/b", operation: .generate),
                          CacheKey.of(GenerationRequest(messages: []), model: "a/c", operation: .generate))
    }

    func testTheKeyOfAKnownRequestStaysTheSame() {
        // Pinned: a change of the encoding must bump CacheKey.version, or every entry written
        // before it silently stops matching (or, worse, matches another request).
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [
            .text("Décris ceci 🌈"), .media(MediaInput(mimeType: "image/png", data: Data([1, 2, 3]), name: "a.png"))])])
        request.system = "Be brief."
        request.temperature = 0.25
        request.maxTokens = 64
        let key = CacheKey.of(request, model: "openai/gpt-4o", operation: .generate)
        XCTAssertEqual(key.map { String(format: "%02x", $0) }.joined(), "06beca377c70c3b2f53a28489745b1dc359a82038bd1187c338808cdab0a7f0e")
    }

    func testOnlyCompleteAnswersAreRecorded() {
        let recorder = AnswerRecorder(provider: "p", model: "p/m")
        recorder.record(.text("Hel"))
        recorder.record(.text("lo"))
        XCTAssertNil(recorder.completeAnswer, "no finished event yet")
        var usage = Usage()
        usage.inputTokens = 3
        recorder.record(.usage(usage))
        recorder.record(.finished(stopReason: 1))
        let answer = recorder.completeAnswer
        XCTAssertEqual(answer?.items, [.text("Hello")])
        XCTAssertEqual(answer.flatMap { CachedAnswer.decode($0.encoded()) }, answer, "the stored bytes decode to the same answer")
        let cut = AnswerRecorder(provider: "p", model: "p/m")
        cut.record(.text("Hel"))
        cut.record(.finished(stopReason: 2))
        XCTAssertNil(cut.completeAnswer, "an answer cut at max_tokens is not kept")
    }

    func testReplaySendsTextInChunksThenUsageAtNoCost() {
        var answer = CachedAnswer(provider: "p", model: "p/m", stopReason: 1)
        answer.items = [.text("abcdefg"), .toolCall(id: "1", name: "f", argumentsJSON: "{}")]
        answer.tokens = .init(input: 5, output: 7, image: 0, audioSeconds: 0, cacheRead: 2, cacheWrite: nil)
        var usage = Usage()
        usage.inputTokens = 5
        usage.outputTokens = 7
        usage.cacheReadTokens = 2
        XCTAssertEqual(answer.events(chunkCharacters: 3), [.text("abc"), .text("def"), .text("g"),
                                                          .toolCall(id: "1", name: "f", argumentsJSON: "{}"),
                                                          .usage(usage), .finished(stopReason: 1)])
    }
}
