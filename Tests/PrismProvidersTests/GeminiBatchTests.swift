// The Gemini Batch API through the real gemini plugin in a PluginHost, against the fake's
// :batchGenerateContent and batches/{id}: inline requests keyed by custom id (images as
// inline_data without line breaks), polls that see RUNNING before SUCCEEDED, results per key (text,
// functionCall, usage, finish reason), a refused item failing alone, results before the end, cancel,
// refused keys, unknown ids, and media over the inline limit refused before anything is sent.
import Foundation
import PrismProviders
import XCTest

final class GeminiBatchTests: XCTestCase {
    private var bed: BatchTestBed!

    private func start(key: String = "gk-batch", config: String = "{}") throws -> ModelCapability {
        bed = try BatchTestBed(.gemini, fakeKey: "gk-batch", key: key, config: ["gemini": config], displayName: "gemini batch test")
        return try bed.model("gemini/gemini-2.5-flash")
    }

    override func tearDown() async throws {
        bed?.stop()
    }

    func testSubmitPollAndResultsPerKey() async throws {
        let model = try start()
        XCTAssertTrue(model.features.batch)
        let png = TestMedia.png(width: 40, height: 30)
        let submitted = try await bed.submit(model, [("plain", BatchItems.text("hello batch")), ("picture", BatchItems.image("look", png)),
                                                     ("weather", BatchItems.tool("tool please"))])
        XCTAssertEqual(submitted.state, .running)
        XCTAssertEqual(submitted.vendorState, "BATCH_STATE_PENDING")
        XCTAssertEqual(submitted.total, 3)
        XCTAssertTrue(submitted.vendorBatchID.hasPrefix("batches/"), submitted.vendorBatchID)

        // What the vendor received: the model in the URL, each request keyed, the image inline.
        let create = try XCTUnwrap(bed.logged("batch-create").first)
        XCTAssertEqual(create["auth"] as? String, "ok")
        XCTAssertEqual(create["model"] as? String, "gemini-2.5-flash")
        XCTAssertEqual(create["display_name"] as? String, "gemini batch test")
        XCTAssertNil(create["problem"] as? String)
        let requests = try XCTUnwrap(create["requests"] as? [[String: Any]])
        XCTAssertEqual(requests.map { ($0["metadata"] as? [String: Any])?["key"] as? String }, ["plain", "picture", "weather"])
        let picture = try XCTUnwrap(requests[1]["request"] as? [String: Any])
        XCTAssertNil(picture["stream"])
        let parts = try XCTUnwrap(((picture["contents"] as? [[String: Any]])?.first?["parts"]) as? [[String: Any]])
        let inline = try XCTUnwrap(parts.compactMap { $0["inline_data"] as? [String: Any] }.first)
        XCTAssertEqual(inline["mime_type"] as? String, "image/png")
        let medium = try XCTUnwrap((requests[1]["media"] as? [[String: Any]])?.first)
        XCTAssertEqual(medium["bytes"] as? Int, png.count)
        XCTAssertEqual(medium["newlines"] as? Bool, false)
        let weather = try XCTUnwrap(requests[2]["request"] as? [String: Any])
        let declarations = ((weather["tools"] as? [[String: Any]])?.first?["functionDeclarations"]) as? [[String: Any]]
        XCTAssertEqual(declarations?.first?["name"] as? String, "get_weather")

        let polls = try await bed.pollUntilDone(model, submitted.vendorBatchID)
        XCTAssertEqual(polls.first?.state, .running, "the first poll sees the batch still running")
        XCTAssertEqual(polls.first?.vendorState, "BATCH_STATE_RUNNING")
        let ended = try XCTUnwrap(polls.last)
        XCTAssertEqual(ended.state, .ended)
        XCTAssertEqual([ended.total, ended.succeeded, ended.failed], [3, 3, 0])

        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        let byKey = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        XCTAssertEqual(Set(byKey.keys), ["plain", "picture", "weather"])
        let plain = try XCTUnwrap(byKey["plain"])
        XCTAssertEqual(plain.status, 0, plain.message)
        XCTAssertEqual(BatchItems.text(of: plain), "You said: hello batch")
        XCTAssertEqual(BatchItems.tokens(of: plain), [9, 2])
        XCTAssertEqual(BatchItems.stopReason(of: plain), 1)  // STOP
        XCTAssertEqual(BatchItems.text(of: try XCTUnwrap(byKey["picture"])), "You said: look [image/png 40x30]")
        let tool = try XCTUnwrap(byKey["weather"])
        XCTAssertEqual(BatchItems.toolCalls(of: tool), [["call_1", "get_weather", #"{"city":"Paris"}"#]])
        XCTAssertEqual(BatchItems.stopReason(of: tool), 3)  // a functionCall is a tool-use stop
    }

    func testAnItemTheVendorRefusesFailsAlone() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("fine", BatchItems.text("all good")), ("greedy", BatchItems.text("too long", maxTokens: 100_000))])
        let ended = try await bed.pollUntilDone(model, submitted.vendorBatchID).last
        XCTAssertEqual(ended?.state, .ended)
        XCTAssertEqual(ended?.failed, 1)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.count, 2)
        let fine = try XCTUnwrap(results.first { $0.customID == "fine" })
        XCTAssertEqual(fine.status, 0, fine.message)
        XCTAssertEqual(BatchItems.text(of: fine), "You said: all good")
        let greedy = try XCTUnwrap(results.first { $0.customID == "greedy" })
        XCTAssertEqual(greedy.status, 3, greedy.message)  // INVALID_ARGUMENT
        XCTAssertTrue(greedy.message.contains("maxOutputTokens value of 100000"), greedy.message)
        XCTAssertTrue(greedy.events.isEmpty)
    }

    func testResultsWhileRunningAreRefused() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("one", BatchItems.text("patience"))])
        let failure = await bed.failure { _ = try await self.bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("still running") == true, failure?.message ?? "")
    }

    func testCancelThenEveryItemIsCancelled() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("a", BatchItems.text("first")), ("b", BatchItems.text("second"))])
        let cancelled = try await bed.host.batchStatus(model: model, action: .cancel(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelled.state, .cancelled)
        XCTAssertEqual(cancelled.vendorState, "BATCH_STATE_CANCELLED")
        XCTAssertEqual(bed.logged("batch-cancel").count, 1)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["a", "b"])
        XCTAssertEqual(results.map(\.status), [1, 1])  // CANCELLED
    }

    func testRefusedKeyAndForbiddenOnSubmit() async throws {
        let model = try start(key: "gk-wrong")
        let refused = await bed.failure { _ = try await self.bed.submit(model, [("a", BatchItems.text("hi"))]) }
        XCTAssertEqual(refused?.code, .failedPrecondition)
        XCTAssertTrue(refused?.message.contains("gemini rejected the API key (HTTP 400 INVALID_ARGUMENT)") == true, refused?.message ?? "")
        bed.stop()
        let allowed = try start()
        let forbidden = await bed.failure { _ = try await self.bed.submit(allowed, [("a", BatchItems.text("status-403 please"))]) }
        XCTAssertEqual(forbidden?.code, .failedPrecondition)
        XCTAssertTrue(forbidden?.message.contains("HTTP 403 PERMISSION_DENIED") == true, forbidden?.message ?? "")
    }

    func testUnknownAndMalformedIDsAreInvalid() async throws {
        let model = try start()
        let unknown = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .get(vendorBatchID: "batches/nope")) }
        XCTAssertEqual(unknown?.code, .invalidArgument)
        XCTAssertTrue(unknown?.message.contains("batches/nope") == true, unknown?.message ?? "")
        let malformed = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .cancel(vendorBatchID: "batches/x/../files")) }
        XCTAssertEqual(malformed?.code, .invalidArgument)
        XCTAssertEqual(bed.logged("batch-get").count + bed.logged("batch-cancel").count, 1, "a malformed id must not reach the vendor")
    }

    func testMediaOverTheInlineLimitAreRefusedBeforeSubmitting() async throws {
        // 2,000 inline bytes: the 40x30 PNG (about 3.7 kB, 4.9 kB as base64) is over it alone,
        // and two 1,200-byte prompts are over it together.
        let model = try start(config: #"{"inline_limit_bytes": 2000}"#)
        let big = await bed.failure {
            _ = try await self.bed.submit(model, [("small", BatchItems.text("hi")), ("big", BatchItems.image("look", TestMedia.png(width: 40, height: 30)))])
        }
        XCTAssertEqual(big?.code, .invalidArgument)
        XCTAssertTrue(big?.message.contains("batch item 'big'") == true, big?.message ?? "")
        let prompt = String(repeating: "x", count: 1200)
        let together = await bed.failure { _ = try await self.bed.submit(model, [("one", BatchItems.text(prompt)), ("two", BatchItems.text(prompt))]) }
        XCTAssertEqual(together?.code, .invalidArgument)
        XCTAssertTrue(together?.message.contains("the batch is 2400 bytes inline") == true, together?.message ?? "")
        XCTAssertTrue(bed.logged("batch-create").isEmpty, "nothing over the limit may be sent")
        let fits = try await bed.submit(model, [("one", BatchItems.text(prompt))])
        XCTAssertEqual(fits.state, .running)
    }
}
