// The OpenAI plugin's Batch API (libprism-plugin-openai.so) driven through a real PluginHost against
// the fake OpenAI server (tools/fakes/openai_batch.py): submit, poll until ended, results with text,
// tool calls and usage, the JSONL the plugin uploaded, failed items, results while running, cancel,
// a failed and an expired batch, unknown ids, the key refused, and models without a batch API.
import CPrismPlugin
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class OpenAIBatchTests: XCTestCase {
    private var fake: VendorFake?
    private var host: PluginHost?
    private var folder = ""

    /// How many GETs a batch may take to end: the fake moves one state per GET (three to completed).
    private static let maxPolls = 6

    /// Starts the fake (requiring sk-test) and a host whose openai plugin sees `key` (nil = none)
    /// and the fake's base URL.
    private func start(key: String? = "sk-test") throws -> PluginHost {
        let fake = try VendorFake(.openAI, key: "sk-test")
        self.fake = fake
        if let key { setenv("OPENAI_API_KEY", key, 1) } else { unsetenv("OPENAI_API_KEY") }
        setenv("OPENAI_BASE_URL", fake.baseURL, 1)
        folder = try Plugins.folder()
        try Plugins.install(Vendor.openAI.plugin, into: folder, as: Vendor.openAI.plugin)
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let host = try PluginHost(options: options, logger: logger)
        host.start()
        self.host = host
        return host
    }

    override func tearDown() async throws {
        host?.shutdown()
        fake?.stop()
        unsetenv("OPENAI_API_KEY")
        unsetenv("OPENAI_BASE_URL")
        if !folder.isEmpty { try? FileManager.default.removeItem(atPath: folder) }
    }

    private func model(_ host: PluginHost, _ name: String = "openai/gpt-4o") throws -> ModelCapability {
        try XCTUnwrap(host.capabilityMatrix().first { $0.name == name }, "\(host.capabilityMatrix().map(\.name))")
    }

    private func request(_ text: String, parts: [ContentPart] = [], tools: [ToolSpec] = []) -> GenerationRequest {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(text)] + parts)])
        request.tools = tools
        return request
    }

    private static let weatherTool = ToolSpec(name: "get_weather", description: "The weather in a city",
                                              inputSchemaJSON: #"{"type":"object","properties":{"city":{"type":"string"}}}"#)

    private func submit(_ host: PluginHost, _ items: [(customID: String, request: GenerationRequest)],
                        name: String = "nightly run") async throws -> BatchStatus {
        try await host.batchStatus(model: model(host), action: .submit(items: items, displayName: name))
    }

    /// GETs the batch until it leaves RUNNING; every state seen, in order.
    private func poll(_ host: PluginHost, _ id: String) async throws -> [BatchStatus] {
        var seen: [BatchStatus] = []
        for _ in 0..<Self.maxPolls {
            let status = try await host.batchStatus(model: model(host), action: .get(vendorBatchID: id))
            seen.append(status)
            if status.state != .running { break }
        }
        return seen
    }

    private func text(_ result: BatchItemResult) -> String {
        result.events.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
    }

    private func usage(_ result: BatchItemResult) -> Usage? {
        result.events.compactMap { if case .usage(let u) = $0 { return u } else { return nil } }.first
    }

    private func finished(_ result: BatchItemResult) -> Int? {
        result.events.compactMap { if case .finished(let r) = $0 { return r } else { return nil } }.first
    }

    private func failure(_ body: () async throws -> Void) async -> ProviderFailure? {
        do {
            try await body()
            return nil
        } catch let failure as ProviderFailure {
            return failure
        } catch {
            XCTFail("not a ProviderFailure: \(error)")
            return nil
        }
    }

    func testSubmitPollAndReadTextImageAndToolAnswers() async throws {
        let host = try start()
        XCTAssertTrue(try model(host).features.batch)
        let png = TestMedia.png(width: 64, height: 32)
        let items = [("text-1", request("hello batch")),
                     ("image-1", request("what is this", parts: [.media(MediaInput(mimeType: "image/png", data: png, name: "p.png"))])),
                     ("tool-1", request("use a tool please", tools: [Self.weatherTool]))]
        let submitted = try await submit(host, items)
        XCTAssertEqual(submitted.state, .running)
        XCTAssertEqual(submitted.vendorState, "validating")
        XCTAssertTrue(submitted.vendorBatchID.hasPrefix("batch_"), submitted.vendorBatchID)
        XCTAssertEqual(submitted.total, 3)

        let states = try await poll(host, submitted.vendorBatchID)
        XCTAssertEqual(states.map(\.vendorState), ["in_progress", "finalizing", "completed"])
        XCTAssertEqual(states.map(\.state), [.running, .running, .ended])
        let ended = try XCTUnwrap(states.last)
        XCTAssertEqual([ended.total, ended.succeeded, ended.failed], [3, 3, 0])

        let results = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["image-1", "text-1", "tool-1"])
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        let textResult = try XCTUnwrap(byID["text-1"]), image = try XCTUnwrap(byID["image-1"]), tool = try XCTUnwrap(byID["tool-1"])
        XCTAssertTrue(results.allSatisfy(\.isOK), "\(results)")
        XCTAssertEqual(text(textResult), "You said: hello batch")
        XCTAssertEqual(text(image), "You said: what is this [image 64x32 image/png]")
        XCTAssertEqual(finished(textResult), 1)
        XCTAssertEqual(usage(textResult)?.inputTokens, 16)
        XCTAssertEqual(usage(textResult)?.outputTokens, 7)
        let calls = tool.events.compactMap { event -> [String]? in
            if case let .toolCall(id, name, arguments) = event { return [id, name, arguments] }
            return nil
        }
        XCTAssertEqual(calls, [["call_a1", "get_weather", #"{"city":"Paris"}"#], ["call_b2", "get_time", #"{"tz":"CET"}"#]])
        XCTAssertEqual(finished(tool), 3)
        XCTAssertEqual(text(tool), "")

        // What went over the wire: one upload of a JSONL file, then the batch.
        let requests = try XCTUnwrap(fake?.requests)
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
        let host = try start()
        let submitted = try await submit(host, [("good", request("hello")), ("refused", request("please status-400")),
                                                ("limited", request("please status-429"))])
        let states = try await poll(host, submitted.vendorBatchID)
        let ended = try XCTUnwrap(states.last)
        XCTAssertEqual(ended.state, .ended)
        XCTAssertEqual([ended.succeeded, ended.failed], [1, 2])
        let results = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.customID, $0) })
        XCTAssertEqual(byID.count, 3)
        let good = try XCTUnwrap(byID["good"]), refused = try XCTUnwrap(byID["refused"]), limited = try XCTUnwrap(byID["limited"])
        XCTAssertTrue(good.isOK)
        XCTAssertEqual(text(good), "You said: hello")
        XCTAssertEqual(refused.status, Int32(PRISM_STATUS_INVALID_ARGUMENT.rawValue))
        XCTAssertTrue(refused.message.contains("fake failure 400"), refused.message)
        XCTAssertEqual(refused.events, [])
        XCTAssertEqual(limited.status, Int32(PRISM_STATUS_RATE_LIMITED.rawValue))
        XCTAssertTrue(limited.message.contains("fake failure 429"), limited.message)
    }

    func testResultsWhileRunningIsAFailedPrecondition() async throws {
        let host = try start()
        let submitted = try await submit(host, [("one", request("hello"))])
        let failure = await failure { _ = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("openai batch \(submitted.vendorBatchID) is still in_progress") ?? false, "\(String(describing: failure))")
        XCTAssertFalse(fake?.requests.contains { ($0["path"] as? String ?? "").hasSuffix("/content") } ?? true)
    }

    func testCancelIsCancellingThenCancelledAndItsItemsAreCancelled() async throws {
        let host = try start()
        let submitted = try await submit(host, [("a", request("hello")), ("b", request("again"))])
        let cancelling = try await host.batchStatus(model: model(host), action: .cancel(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelling.state, .cancelling)
        XCTAssertEqual(cancelling.vendorBatchID, submitted.vendorBatchID)
        let cancelled = try await host.batchStatus(model: model(host), action: .get(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(cancelled.state, .cancelled)
        XCTAssertEqual([cancelled.total, cancelled.succeeded, cancelled.cancelled], [2, 0, 2])
        XCTAssertTrue(fake?.requests.contains { $0["path"] as? String == "/v1/batches/\(submitted.vendorBatchID)/cancel" } ?? false)
        let results = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.map(\.customID).sorted(), ["a", "b"])
        XCTAssertTrue(results.allSatisfy { $0.status == Int32(PRISM_STATUS_CANCELLED.rawValue) && $0.message.contains("batch_cancelled") }, "\(results)")
        // A batch that has ended cannot be cancelled again.
        let again = await failure { _ = try await host.batchStatus(model: model(host), action: .cancel(vendorBatchID: submitted.vendorBatchID)) }
        XCTAssertEqual(again?.code, .failedPrecondition)
        XCTAssertTrue(again?.message.contains("Cannot cancel a batch with status 'cancelled'") ?? false, "\(String(describing: again))")
    }

    func testAFailedBatchSaysWhyAndHasNoResults() async throws {
        let host = try start()
        let submitted = try await submit(host, [("a", request("hello"))], name: "fail-batch please")
        let failed = try await host.batchStatus(model: model(host), action: .get(vendorBatchID: submitted.vendorBatchID))
        XCTAssertEqual(failed.state, .failed)
        XCTAssertTrue(failed.message.contains("fake failure of the whole batch"), failed.message)
        let failure = await failure { _ = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("failed and has no results") ?? false, "\(String(describing: failure))")
    }

    func testAnExpiredBatchCountsAndReportsItsItemsAsExpired() async throws {
        let host = try start()
        let submitted = try await submit(host, [("a", request("hello")), ("b", request("again"))], name: "expire-batch")
        let states = try await poll(host, submitted.vendorBatchID)
        XCTAssertEqual(states.map(\.state), [.running, .expired])
        XCTAssertEqual(states.last?.expired, 2)
        let results = try await host.batchResults(model: model(host), vendorBatchID: submitted.vendorBatchID)
        XCTAssertEqual(results.count, 2)
        XCTAssertTrue(results.allSatisfy { $0.status == Int32(PRISM_STATUS_DEADLINE_EXCEEDED.rawValue) }, "\(results)")
    }

    func testUnknownAndMalformedBatchIdsAreInvalidArguments() async throws {
        let host = try start()
        let unknown = await failure { _ = try await host.batchStatus(model: model(host), action: .get(vendorBatchID: "batch_nope")) }
        XCTAssertEqual(unknown?.code, .invalidArgument)
        XCTAssertTrue(unknown?.message.contains("openai has no batch 'batch_nope'") ?? false, "\(String(describing: unknown))")
        let malformed = await failure { _ = try await host.batchStatus(model: model(host), action: .get(vendorBatchID: "../files")) }
        XCTAssertEqual(malformed?.code, .invalidArgument)
        XCTAssertTrue(malformed?.message.contains("'../files' is not an openai batch or file id") ?? false, "\(String(describing: malformed))")
        XCTAssertEqual(fake?.requests.filter { ($0["path"] as? String ?? "").contains("files") }.count, 0)
    }

    func testDuplicateCustomIDsAreRefusedBeforeAnyUpload() async throws {
        let host = try start()
        let failure = await failure { _ = try await submit(host, [("same", request("a")), ("same", request("b"))]) }
        XCTAssertEqual(failure?.code, .invalidArgument)
        XCTAssertTrue(failure?.message.contains("the custom_id 'same' is used twice") ?? false, "\(String(describing: failure))")
        XCTAssertEqual(fake?.requests.count, 0)
    }

    func testAKeyTheVendorRefusesFailsTheSubmitAsTheGatewaysCredentials() async throws {
        let host = try start(key: "sk-wrong")
        let failure = await failure { _ = try await submit(host, [("a", request("hello"))]) }
        XCTAssertEqual(failure?.code, .failedPrecondition)
        XCTAssertTrue(failure?.message.contains("rejected the gateway's own credentials") ?? false, "\(String(describing: failure))")
        let upload = try XCTUnwrap(fake?.requests.first)
        XCTAssertEqual(upload["path"] as? String, "/v1/files")
        XCTAssertEqual(upload["auth"] as? String, "wrong")
        XCTAssertFalse(fake?.requests.contains { $0["path"] as? String == "/v1/batches" } ?? true)
    }

    func testTheHostRefusesModelsWithoutABatchAPI() async throws {
        let host = try start()
        let whisper = try model(host, "openai/whisper-1")
        XCTAssertFalse(whisper.features.batch)
        XCTAssertThrowsError(try host.startBatchCall(model: whisper, action: .get(vendorBatchID: "batch_x"))) { error in
            XCTAssertEqual((error as? ProviderFailure)?.code, .failedPrecondition)
            XCTAssertTrue((error as? ProviderFailure)?.message.contains("has no batch API") ?? false, "\(error)")
        }
        XCTAssertEqual(fake?.requests.count, 0)
    }

    func testAKeylessServerDeclaresNoBatchAPI() async throws {
        let host = try start(key: nil)
        let local = try XCTUnwrap(host.capabilityMatrix().first { $0.provider == "openai" && $0.operations.contains(.generate) })
        XCTAssertFalse(local.features.batch)
        XCTAssertThrowsError(try host.startBatchCall(model: local, action: .submit(items: [("a", request("hello"))], displayName: "")))
    }
}
