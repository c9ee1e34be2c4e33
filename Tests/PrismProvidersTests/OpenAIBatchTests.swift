// The OpenAI plugin's Batch API (libprism-plugin-openai.so) driven through a real PluginHost against
// the fake OpenAI server (tools/fakes/openai_batch.py): submit, poll until ended, results with text,
// tool calls and usage, the JSONL the plugin uploaded, failed items, results while running, cancel,
// a failed and an expired batch, unknown ids, the key refused, and models without a batch API.
import CPrismPlugin
import Foundation
@testable import PrismProviders
import XCTest

final class OpenAIBatchTests: XCTestCase {
    private var bed: BatchTestBed!

    /// How many GETs a batch may take to end: the fake moves one state per GET (three to completed).
    private static let maxPolls = 6

    /// Starts the fake (requiring sk-test) and a host whose openai plugin sees `key` (nil = none)
    /// and the fake's base URL; returns the model called `model`.
    private func start(key: String? = "sk-test", model: String = "openai/gpt-4o") throws -> ModelCapability {
        bed = try BatchTestBed(.openAI, fakeKey: "sk-test", key: key, displayName: "nightly run")
        return try bed.model(model)
    }

    override func tearDown() async throws {
        bed?.stop()
    }

    func testSubmitPollAndReadTextImageAndToolAnswers() async throws {
        let model = try start()
        XCTAssertTrue(model.features.batch)
        let png = TestMedia.png(width: 64, height: 32)
        let items = [("text-1", BatchItems.text("hello batch")), ("image-1", BatchItems.image("what is this", png)),
                     ("tool-1", BatchItems.tool("use a tool please"))]
        let submitted = try await bed.submit(model, items)
        XCTAssertEqual(submitted.state, .running)
        XCTAssertEqual(submitted.vendorState, "validating")
        XCTAssertTrue(submitted.vendorBatchID.hasPrefix("batch_"), submitted.vendorBatchID)
        XCTAssertEqual(submitted.total, 3)

        let states = try await bed.pollUntilDone(model, submitted.vendorBatchID, polls: Self.maxPolls)
        XCTAssertEqual(states.map(\.vendorState), ["in_progress", "finalizing", "completed"])
        XCTAssertEqual(states.map(\.state), [.running, .running, .ended])
        let ended = try XCTUnwrap(states.last)
        XCTAssertEqual([ended.total, ended.succeeded, ended.failed], [3, 3, 0])

        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["image-1", "text-1", "tool-1"])
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        let textResult = try XCTUnwrap(byID["text-1"]), image = try XCTUnwrap(byID["image-1"]), tool = try XCTUnwrap(byID["tool-1"])
        XCTAssertTrue(results.allSatisfy(\.isOK), "\(results)")
        XCTAssertEqual(BatchItems.text(of: textResult), "You said: hello batch")
        XCTAssertEqual(BatchItems.text(of: image), "You said: what is this [image 64x32 image/png]")
        XCTAssertEqual(BatchItems.stopReason(of: textResult), 1)
        XCTAssertEqual(BatchItems.usage(of: textResult)?.inputTokens, 16)
        XCTAssertEqual(BatchItems.usage(of: textResult)?.outputTokens, 7)
        XCTAssertEqual(BatchItems.toolCalls(of: tool), [["call_a1", "get_weather", #"{"city":"Paris"}"#], ["call_b2", "get_time", #"{"tz":"CET"}"#]])
        XCTAssertEqual(BatchItems.stopReason(of: tool), 3)
        XCTAssertEqual(BatchItems.text(of: tool), "")

        // What went over the wire: one upload of a JSONL file, then the batch.
        let requests = bed.fake.requests
        let upload = try XCTUnwrap(requests.first { $0["path"] as? String == "/v1/files" })
        XCTAssertEqual(upload["auth"] as? String, "ok")
        XCTAssertEqual((upload["fields"] as? [String: String])?["purpose"], "batch")
        XCTAssertEqual(((upload["files"] as? [[String: Any]])?.first?["filename"] as? String)?.hasSuffix(".jsonl"), true)
        let lines = try XCTUnwrap(upload["lines"] as? [[String: Any]])
        XCTAssertEqual(lines.map { $0["custom_id"] as? String }, ["text-1", "image-1", "tool-1"])
        for line in lines {
            XCTAssertEqual(line["method"] as? String, "POST")
            XCTAssertEqual(line["url"] as? String, "/v1/chat/completions")
            let body = try XCTUnwrap(line["body"] as? [String: Any])
            XCTAssertEqual(body["stream"] as? Bool, false)
            XCTAssertNil(body["stream_options"])
            XCTAssertEqual(body["model"] as? String, "gpt-4o")
        }
        let images = try XCTUnwrap((lines[1]["body"] as? [String: Any])?["images"] as? [[String: Any]])
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images[0]["mime"] as? String, "image/png")
        XCTAssertEqual(images[0]["bytes"] as? Int, png.count)
        XCTAssertEqual(images[0]["newlines"] as? Bool, false)
        let tools = try XCTUnwrap((lines[2]["body"] as? [String: Any])?["tools"] as? [[String: Any]])
        XCTAssertEqual((tools.first?["function"] as? [String: Any])?["name"] as? String, "get_weather")
        let create = try XCTUnwrap(requests.first { $0["path"] as? String == "/v1/batches" }?["body"] as? [String: Any])
        XCTAssertEqual(create["endpoint"] as? String, "/v1/chat/completions")
        XCTAssertEqual(create["completion_window"] as? String, "24h")
        XCTAssertEqual((create["metadata"] as? [String: String])?["description"], "nightly run")
        XCTAssertEqual(create["input_file_id"] as? String, upload["file_id"] as? String)
        XCTAssertNotNil(upload["file_id"] as? String)
    }

    func testAFailedItemIsThatItemsFailureWhileTheOthersSucceed() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("good", BatchItems.text("hello")), ("refused", BatchItems.text("please status-400")),
                                                     ("limited", BatchItems.text("please status-429"))])
        let states = try await bed.pollUntilDone(model, submitted.vendorBatchID, polls: Self.maxPolls)
        let ended = try XCTUnwrap(states.last)
        XCTAssertEqual(ended.state, .ended)
        XCTAssertEqual([ended.succeeded, ended.failed], [1, 2])
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        XCTAssertEqual(byID.count, 3)
        let good = try XCTUnwrap(byID["good"]), refused = try XCTUnwrap(byID["refused"]), limited = try XCTUnwrap(byID["limited"])
        XCTAssertTrue(good.isOK)
        XCTAssertEqual(BatchItems.text(of: good), "You said: hello")
        XCTAssertEqual(refused.status, Int32(PRISM_STATUS_INVALID_ARGUMENT.rawValue))
        XCTAssertTrue(refused.message.contains("fake failure 400"), refused.message)
        XCTAssertEqual(refused.events, [])
        XCTAssertEqual(limited.status, Int32(PRISM_STATUS_RATE_LIMITED.rawValue))
        XCTAssertTrue(limited.message.contains("fake failure 429"), limited.message)
    }

    func testResultsWhileRunningIsAFailedPrecondition() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("one", BatchItems.text("hello"))])
        let failure = await bed.failure { _ = try await self.bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("openai batch \(submitted.vendorBatchID) is still in_progress") ?? false, "\(String(describing: failure))")
        XCTAssertFalse(bed.fake.requests.contains { ($0["path"] as? String ?? "").hasSuffix("/content") })
    }

    func testCancelIsCancellingThenCancelledAndItsItemsAreCancelled() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("a", BatchItems.text("hello")), ("b", BatchItems.text("again"))])
        let cancelling = try await bed.host.batchStatus(model: model, action: .cancel(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelling.state, .cancelling)
        XCTAssertEqual(cancelling.vendorBatchID, submitted.vendorBatchID)
        let cancelled = try await bed.host.batchStatus(model: model, action: .get(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelled.state, .cancelled)
        XCTAssertEqual([cancelled.total, cancelled.succeeded, cancelled.cancelled], [2, 0, 2])
        XCTAssertTrue(bed.fake.requests.contains { $0["path"] as? String == "/v1/batches/\(submitted.vendorBatchID)/cancel" })
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["a", "b"])
        XCTAssertTrue(results.allSatisfy { $0.status == Int32(PRISM_STATUS_CANCELLED.rawValue) && $0.message.contains("batch_cancelled") }, "\(results)")
        // A batch that has ended cannot be cancelled again.
        let again = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .cancel(vendorBatchID: submitted.vendorBatchID)) }
        XCTAssertEqual(again?.code, .failedPrecondition)
        XCTAssertTrue(again?.message.contains("Cannot cancel a batch with status 'cancelled'") ?? false, "\(String(describing: again))")
    }

    func testAFailedBatchSaysWhyAndHasNoResults() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("a", BatchItems.text("hello"))], name: "fail-batch please")
        let failed = try await bed.host.batchStatus(model: model, action: .get(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(failed.state, .failed)
        XCTAssertTrue(failed.message.contains("fake failure of the whole batch"), failed.message)
        let failure = await bed.failure { _ = try await self.bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("failed and has no results") ?? false, "\(String(describing: failure))")
    }

    func testAnExpiredBatchCountsAndReportsItsItemsAsExpired() async throws {
        let model = try start()
        let submitted = try await bed.submit(model, [("a", BatchItems.text("hello")), ("b", BatchItems.text("again"))], name: "expire-batch")
        let states = try await bed.pollUntilDone(model, submitted.vendorBatchID, polls: Self.maxPolls)
        XCTAssertEqual(states.map(\.state), [.running, .expired])
        XCTAssertEqual(states.last?.expired, 2)
        let results = try await bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.count, 2)
        XCTAssertTrue(results.allSatisfy { $0.status == Int32(PRISM_STATUS_DEADLINE_EXCEEDED.rawValue) }, "\(results)")
    }

    func testUnknownAndMalformedBatchIdsAreInvalidArguments() async throws {
        let model = try start()
        let unknown = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .get(vendorBatchID: "batch_nope")) }
        XCTAssertEqual(unknown?.code, .invalidArgument)
        XCTAssertTrue(unknown?.message.contains("openai has no batch 'batch_nope'") ?? false, "\(String(describing: unknown))")
        let malformed = await bed.failure { _ = try await self.bed.host.batchStatus(model: model, action: .get(vendorBatchID: "../files")) }
        XCTAssertEqual(malformed?.code, .invalidArgument)
        XCTAssertTrue(malformed?.message.contains("'../files' is not an openai batch or file id") ?? false, "\(String(describing: malformed))")
        XCTAssertEqual(bed.fake.requests.filter { ($0["path"] as? String ?? "").contains("files") }.count, 0)
    }

    func testDuplicateCustomIDsAreRefusedBeforeAnyUpload() async throws {
        let model = try start()
        let failure = await bed.failure { _ = try await self.bed.submit(model, [("same", BatchItems.text("a")), ("same", BatchItems.text("b"))]) }
        XCTAssertEqual(failure?.code, .invalidArgument)
        XCTAssertTrue(failure?.message.contains("the custom_id 'same' is used twice") ?? false, "\(String(describing: failure))")
        XCTAssertEqual(bed.fake.requests.count, 0)
    }

    func testAKeyTheVendorRefusesFailsTheSubmitAsTheGatewaysCredentials() async throws {
        let model = try start(key: "sk-wrong")
        let failure = await bed.failure { _ = try await self.bed.submit(model, [("a", BatchItems.text("hello"))]) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("rejected the gateway's own credentials") ?? false, "\(String(describing: failure))")
        let upload = try XCTUnwrap(bed.fake.requests.first)
        XCTAssertEqual(upload["path"] as? String, "/v1/files")
        XCTAssertEqual(upload["auth"] as? String, "wrong")
        XCTAssertFalse(bed.fake.requests.contains { $0["path"] as? String == "/v1/batches" })
    }

    func testTheHostRefusesModelsWithoutABatchAPI() async throws {
        let whisper = try start(model: "openai/whisper-1")
        XCTAssertFalse(whisper.features.batch)
        XCTAssertThrowsError(try bed.host.startBatchCall(model: whisper, action: .get(vendorBatchID: "batch_x"))) { error in
            XCTAssertEqual((error as? ProviderFailure)?.code, .failedPrecondition)
            XCTAssertTrue((error as? ProviderFailure)?.message.contains("has no batch API") ?? false, "\(error)")
        }
        XCTAssertEqual(bed.fake.requests.count, 0)
    }

    func testAKeylessServerDeclaresNoBatchAPI() async throws {
        let local = try start(key: nil, model: "openai/local")
        XCTAssertFalse(local.features.batch)
        XCTAssertThrowsError(try bed.host.startBatchCall(model: local, action: .submit(items: [("a", BatchItems.text("hello"))], displayName: "")))
    }
}
