// Message Batches through the real anthropic plugin in a PluginHost, against the fake's
// /v1/messages/batches: submit (no "stream" in any item, images as base64 sources), polls that see
// RUNNING before ENDED, results per custom_id (text, tool call, usage, stop reason), an item the
// vendor refuses failing alone, results before the end, cancel, refused keys and unknown ids.
import Foundation
import PrismProviders
import XCTest

final class AnthropicBatchTests: XCTestCase {
    private var bed: BatchTestBed!

    private func start(key: String = "ak-batch") throws -> ModelCapability {
        bed = try BatchTestBed(.anthropic, fakeKey: "ak-batch", key: key, displayName: "anthropic batch test")
        return try bed.model("anthropic/claude-sonnet-4-5")
    }

    override func tearDown() async throws {
        bed?.stop()
    }

    func testSubmitPollAndResultsPerCustomID() async throws {
        let model = try start()
        XCTAssertTrue(model.features.batch)
        let png = TestMedia.png(width: 40, height: 30)
        let submitted = try await bed.submit(model, [("plain", BatchItems.text("hello batch")), ("picture", BatchItems.image("look", png)),
                                                     ("weather", BatchItems.tool("tool please"))])
        XCTAssertEqual(submitted.state, .running)
        XCTAssertEqual(submitted.vendorState, "in_progress")
        XCTAssertEqual(submitted.total, 3)
        XCTAssertTrue(submitted.vendorBatchID.hasPrefix("msgbatch_"), submitted.vendorBatchID)

        // What the vendor received: three params without "stream", the image as a base64 source.
        let create = try XCTUnwrap(bed.logged("batch-create").first)
        XCTAssertEqual(create["auth"] as? String, "ok")
        XCTAssertEqual(create["version"] as? String, "2023-06-01")
        XCTAssertNil(create["problem"] as? String)
        let requests = try XCTUnwrap(create["requests"] as? [[String: Any]])
        XCTAssertEqual(requests.map { $0["custom_id"] as? String }, ["plain", "picture", "weather"])
        for request in requests {
            let params = try XCTUnwrap(request["params"] as? [String: Any])
            XCTAssertNil(params["stream"], "a batch item must not carry stream")
            XCTAssertEqual(params["model"] as? String, "claude-sonnet-4-5")
        }
        let picture = try XCTUnwrap(requests[1]["params"] as? [String: Any])
        let blocks = try XCTUnwrap(((picture["messages"] as? [[String: Any]])?.first?["content"]) as? [[String: Any]])
        let source = try XCTUnwrap(blocks.first { $0["type"] as? String == "image" }?["source"] as? [String: Any])
        XCTAssertEqual(source["type"] as? String, "base64")
        XCTAssertEqual(source["media_type"] as? String, "image/png")
        let image = try XCTUnwrap((picture["images"] as? [[String: Any]])?.first)
        XCTAssertEqual(image["bytes"] as? Int, png.count)
        XCTAssertEqual(image["newlines"] as? Bool, false)
        let weather = try XCTUnwrap(requests[2]["params"] as? [String: Any])
        XCTAssertEqual((weather["tools"] as? [[String: Any]])?.first?["name"] as? String, "get_weather")

        let polls = try await bed.pollUntilDone(model, submitted.vendorBatchID)
        XCTAssertEqual(polls.first?.state, .running, "the first poll sees the batch still running")
        let ended = try XCTUnwrap(polls.last)
        XCTAssertEqual(ended.state, .ended)
        XCTAssertEqual([ended.total, ended.succeeded, ended.failed], [3, 3, 0])

        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        XCTAssertEqual(Set(byID.keys), ["plain", "picture", "weather"])
        let plain = try XCTUnwrap(byID["plain"])
        XCTAssertEqual(plain.status, 0, plain.message)
        XCTAssertEqual(BatchItems.text(of: plain), "You said: hello batch")
        XCTAssertEqual(BatchItems.tokens(of: plain), [12, 5])
        XCTAssertEqual(BatchItems.stopReason(of: plain), 1)  // end_turn
        XCTAssertEqual(BatchItems.text(of: try XCTUnwrap(byID["picture"])), "You said: look [image 40x30 image/png]")
        let tool = try XCTUnwrap(byID["weather"])
        XCTAssertEqual(BatchItems.text(of: tool), "Let me check.")
        XCTAssertEqual(BatchItems.toolCalls(of: tool), [["toolu_01", "get_weather", #"{"city":"Paris"}"#]])
        XCTAssertEqual(BatchItems.stopReason(of: tool), 3)  // tool_use
        XCTAssertEqual(bed.logged("batch-results").count, 1)
    }

    /// The key travels with the results request, so a results_url on another origin is not
    /// followed: the results come from the API's own /results path instead.
    func testResultsURLOnAnotherOriginIsNotFollowed() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("only", BatchItems.text("foreign-results please"))])
        let polls = try await bed.pollUntilDone(model, submitted.vendorBatchID)
        XCTAssertEqual(polls.last?.state, .ended)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID), ["only"])
        XCTAssertEqual(results.first?.status, 0, results.first?.message ?? "")
        XCTAssertEqual(bed.logged("batch-results").count, 1, "the results came from the fake itself")
    }

    /// A thousand items go in one create call, and their results (about 320 kB of JSONL, read in
    /// many chunks) come back whole, each under its own custom_id.
    func testAThousandItemsGoInOneCallAndComeBackLineByLine() async throws {
        let model = try start()
        let count = 1000
        let items = (0..<count).map { (customID: "item-\($0)", request: BatchItems.text("number \($0)")) }
        let submitted = try await bed.submit(model, items)
        XCTAssertEqual(submitted.total, count)
        XCTAssertEqual((bed.logged("batch-create").first?["requests"] as? [Any])?.count, count)
        let ended = try await bed.pollUntilDone(model, submitted.vendorBatchID).last
        XCTAssertEqual(ended?.state, .ended)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.count, count)
        for result in results {
            XCTAssertEqual(BatchItems.text(of: result), "You said: number \(result.customID.dropFirst(5))")
        }
        XCTAssertEqual(Set(results.map(\.customID)).count, count)
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
        XCTAssertEqual(greedy.status, 3, greedy.message)  // INVALID_ARGUMENT, from invalid_request_error
        XCTAssertTrue(greedy.message.contains("max_tokens: 100000 > 64000"), greedy.message)
        XCTAssertTrue(greedy.events.isEmpty)
    }

    func testResultsWhileRunningAreRefused() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("one", BatchItems.text("patience"))])
        let failure = await bed.failure { _ = try await self.bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("still running") == true, failure?.message ?? "")
        XCTAssertTrue(bed.logged("batch-results").isEmpty, "results were fetched from a running batch")
    }

    func testCancelThenEveryItemIsCancelled() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("a", BatchItems.text("first")), ("b", BatchItems.text("second"))])
        let cancelling = try await bed.host.batchStatus(model: model, action: .cancel(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelling.state, .cancelling)
        XCTAssertEqual(bed.logged("batch-cancel").count, 1)
        let done = try await bed.host.batchStatus(model: model, action: .get(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(done.state, .cancelled)
        XCTAssertEqual(done.cancelled, 2)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["a", "b"])
        XCTAssertEqual(results.map(\.status), [1, 1])  // CANCELLED
    }

    func testRefusedKeyAndForbiddenOnSubmit() async throws {
        let model = try start(key: "ak-wrong")
        let refused = await bed.failure { _ = try await self.bed.submit(model, [("a", BatchItems.text("hi"))]) }
        XCTAssertEqual(refused?.code, .failedPrecondition)
        XCTAssertTrue(refused?.message.contains("rejected the API key (HTTP 401 authentication_error)") == true, refused?.message ?? "")
        bed.stop()
        let allowed = try start()
        let forbidden = await bed.failure { _ = try await self.bed.submit(allowed, [("a", BatchItems.text("status-403 please"))]) }
        XCTAssertEqual(forbidden?.code, .failedPrecondition)
        XCTAssertTrue(forbidden?.message.contains("HTTP 403 permission_error") == true, forbidden?.message ?? "")
    }

    func testDuplicateCustomIDsAndUnknownIDsAreInvalid() async throws {
        let model = try start()
        let duplicate = await bed.failure { _ = try await self.bed.submit(model, [("same", BatchItems.text("one")), ("same", BatchItems.text("two"))]) }
        XCTAssertEqual(duplicate?.code, .invalidArgument)
        XCTAssertTrue(duplicate?.message.contains("'same' appears more than once") == true, duplicate?.message ?? "")
        let unknown = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .get(vendorBatchID: "msgbatch_nope")) }
        XCTAssertEqual(unknown?.code, .invalidArgument)
        XCTAssertTrue(unknown?.message.contains("msgbatch_nope") == true, unknown?.message ?? "")
        let malformed = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .get(vendorBatchID: "../v1/messages")) }
        XCTAssertEqual(malformed?.code, .invalidArgument)
        XCTAssertEqual(bed.logged("batch-get").count, 1, "a malformed id must not reach the vendor")
    }
}
