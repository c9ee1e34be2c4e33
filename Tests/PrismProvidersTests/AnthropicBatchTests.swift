// Message Batches through the real anthropic plugin in a PluginHost, against the fake's
// /v1/messages/batches: submit (no "stream" in any item, images as base64 sources), polls that see
// RUNNING before ENDED, results per custom_id (text, tool call, usage, stop reason), an item the
// vendor refuses failing alone, results before the end, cancel, refused keys and unknown ids.
// BatchTestBed, shared with GeminiBatchTests, runs one vendor plugin against its fake.
import Foundation
import Logging
import PrismProviders
import XCTest

/// One vendor plugin in a PluginHost of its own, pointed at the vendor's fake.
final class BatchTestBed {
    let fake: VendorFake
    let host: PluginHost
    private let vendor: Vendor
    private let folder: String

    /// Starts `vendor`'s fake requiring `fakeKey`, and a host whose plugin is given `key` and the
    /// plugin config `config` (under the plugin's name, e.g. "gemini").
    init(_ vendor: Vendor, fakeKey: String, key: String, config: [String: String] = [:]) throws {
        self.vendor = vendor
        fake = try VendorFake(vendor, key: fakeKey)
        do {
            setenv(vendor.keyVariable, key, 1)
            setenv(vendor.baseURLVariable, fake.baseURL, 1)
            folder = try Plugins.folder()
            try Plugins.install(vendor.plugin, into: folder, as: vendor.plugin)
            var options = PluginHost.Options(directories: [folder])
            options.watch = false
            options.pluginConfig = config
            var logger = Logger(label: "batch-test")
            logger.logLevel = .critical
            host = try PluginHost(options: options, logger: logger)
        } catch {
            fake.stop()
            throw error
        }
        host.start()
    }

    func stop() {
        host.shutdown()
        fake.stop()
        unsetenv(vendor.keyVariable)
        unsetenv(vendor.baseURLVariable)
        try? FileManager.default.removeItem(atPath: folder)
    }

    func model(_ name: String) throws -> ModelCapability {
        try XCTUnwrap(host.capabilityMatrix().first { $0.name == name }, "\(name) not in \(host.capabilityMatrix().map(\.name))")
    }

    /// The fake's log entries of one kind ("batch-create", "batch-get", ...).
    func logged(_ kind: String) -> [[String: Any]] {
        fake.requests.filter { $0["kind"] as? String == kind }
    }

    /// GETs until the batch leaves RUNNING (at most `polls` times); every status seen, in order.
    func pollUntilDone(_ model: ModelCapability, _ id: String, polls: Int = 5) async throws -> [BatchStatus] {
        var seen: [BatchStatus] = []
        for _ in 0..<polls {
            let status = try await host.batchStatus(model: model, action: .get(vendorBatchID: id))
            seen.append(status)
            if status.state != .running { break }
        }
        return seen
    }

    /// Runs `body`, which must throw a ProviderFailure; returns it.
    func failure(_ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async -> ProviderFailure? {
        do {
            try await body()
            XCTFail("expected a failure", file: file, line: line)
        } catch let failure as ProviderFailure {
            return failure
        } catch {
            XCTFail("expected a ProviderFailure, got \(error)", file: file, line: line)
        }
        return nil
    }
}

/// What a batch test asks of one item, and reads back from its result.
enum BatchItems {
    static func text(_ prompt: String, maxTokens: UInt32 = 0) -> GenerationRequest {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(prompt)])])
        request.maxTokens = maxTokens
        return request
    }

    static func image(_ prompt: String, _ png: Data) -> GenerationRequest {
        GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(prompt), .media(MediaInput(mimeType: "image/png", data: png, name: "dot.png"))])])
    }

    static func tool(_ prompt: String) -> GenerationRequest {
        var request = text(prompt)
        request.tools = [ToolSpec(name: "get_weather", description: "Weather of a city",
                                  inputSchemaJSON: #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#)]
        return request
    }

    static func text(of result: BatchItemResult) -> String {
        result.events.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
    }

    static func toolCalls(of result: BatchItemResult) -> [[String]] {
        result.events.compactMap { if case let .toolCall(id, name, args) = $0 { return [id, name, args] } else { return nil } }
    }

    static func usage(of result: BatchItemResult) -> [UInt64] {
        result.events.compactMap { if case .usage(let u) = $0 { return [u.inputTokens, u.outputTokens] } else { return nil } }.first ?? []
    }

    static func stopReason(of result: BatchItemResult) -> Int? {
        result.events.compactMap { if case .finished(let reason) = $0 { return reason } else { return nil } }.first
    }
}

final class AnthropicBatchTests: XCTestCase {
    private var bed: BatchTestBed!
    static let model = "anthropic/claude-sonnet-4-5"
    static let key = "ak-batch"

    private func start(key: String = AnthropicBatchTests.key) throws -> ModelCapability {
        bed = try BatchTestBed(.anthropic, fakeKey: Self.key, key: key)
        return try bed.model(Self.model)
    }

    override func tearDown() async throws {
        bed?.stop()
    }

    private func submit(_ model: ModelCapability, _ items: [(customID: String, request: GenerationRequest)]) async throws -> BatchStatus {
        try await bed.host.batchStatus(model: model, action: .submit(items: items, displayName: "anthropic batch test"))
    }

    func testSubmitPollAndResultsPerCustomID() async throws {
        let model = try start()
        XCTAssertTrue(model.features.batch)
        let png = TestMedia.png(width: 40, height: 30)
        let submitted = try await submit(model, [("plain", BatchItems.text("hello batch")), ("picture", BatchItems.image("look", png)),
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
        XCTAssertEqual(BatchItems.usage(of: plain), [12, 5])
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
        let submitted = try await submit(model, [("only", BatchItems.text("foreign-results please"))])
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
        let submitted = try await submit(model, items)
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
        let submitted = try await submit(model, [("fine", BatchItems.text("all good")), ("greedy", BatchItems.text("too long", maxTokens: 100_000))])
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
        let submitted = try await submit(model, [("one", BatchItems.text("patience"))])
        let failure = await bed.failure { _ = try await self.bed.host.batchResults(model: model, vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("still running") == true, failure?.message ?? "")
        XCTAssertTrue(bed.logged("batch-results").isEmpty, "results were fetched from a running batch")
    }

    func testCancelThenEveryItemIsCancelled() async throws {
        let model = try start()
        let submitted = try await submit(model, [("a", BatchItems.text("first")), ("b", BatchItems.text("second"))])
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
        let refused = await bed.failure { _ = try await self.submit(model, [("a", BatchItems.text("hi"))]) }
        XCTAssertEqual(refused?.code, .failedPrecondition)
        XCTAssertTrue(refused?.message.contains("rejected the API key (HTTP 401 authentication_error)") == true, refused?.message ?? "")
        bed.stop()
        let allowed = try start()
        let forbidden = await bed.failure { _ = try await self.submit(allowed, [("a", BatchItems.text("status-403 please"))]) }
        XCTAssertEqual(forbidden?.code, .failedPrecondition)
        XCTAssertTrue(forbidden?.message.contains("HTTP 403 permission_error") == true, forbidden?.message ?? "")
    }

    func testDuplicateCustomIDsAndUnknownIDsAreInvalid() async throws {
        let model = try start()
        let duplicate = await bed.failure { _ = try await self.submit(model, [("same", BatchItems.text("one")), ("same", BatchItems.text("two"))]) }
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
