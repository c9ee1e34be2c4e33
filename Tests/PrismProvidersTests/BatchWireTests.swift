// Batch calls across the plugin ABI without a vendor: what the host encodes for each action is
// what a Swift plugin decodes, and what the plugin emits (status, item results with nested
// events) is what the host reads back.
import CPrismPlugin
import Foundation
import XCTest

@testable import PrismPluginKit
@testable import PrismProviders

final class BatchWireTests: XCTestCase {
    func testSubmitCarriesEveryItemAsAGenerateRequest() throws {
        var first = GenerationRequest(messages: [ChatMessage(role: .user, parts: [
            .text("What is in this picture?"), .media(MediaInput(mimeType: "image/png", data: Data([0x89, 0x50, 0x4E, 0x47]), name: "a.png")),
        ])])
        first.system = "Be brief."
        first.maxTokens = 64
        var second = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("Weather in Paris?")])])
        second.tools = [ToolSpec(name: "weather", description: "Current weather", inputSchemaJSON: #"{"type":"object"}"#)]
        second.temperature = 0
        let bytes = RequestEncoder.encode(.submit(items: [("q1", first), ("q2", second)], displayName: "nightly"),
                                          model: "gpt-4o", requestID: "r-1", deadline: nil)

        let request = try XCTUnwrap(bytes.withUnsafeBytes { PrismPluginKit.ProviderRequest(serialized: $0) })
        XCTAssertEqual(request.operation, .batch)
        XCTAssertEqual(request.model, "gpt-4o")
        XCTAssertEqual(request.requestID, "r-1")
        let batch = try XCTUnwrap(request.batch)
        XCTAssertEqual(batch.action, .submit)
        XCTAssertEqual(batch.displayName, "nightly")
        XCTAssertEqual(batch.items.map(\.customID), ["q1", "q2"])

        let one = batch.items[0].request
        XCTAssertEqual(one.operation, .generate)
        XCTAssertEqual(one.model, "gpt-4o")
        XCTAssertEqual(one.system, "Be brief.")
        XCTAssertEqual(one.maxTokens, 64)
        XCTAssertNil(one.temperature)
        guard case .text("What is in this picture?") = one.messages[0].parts[0],
              case let .media(mime, data, name) = one.messages[0].parts[1] else { return XCTFail("parts: \(one.messages[0].parts)") }
        XCTAssertEqual(mime, "image/png")
        XCTAssertEqual(data, Data([0x89, 0x50, 0x4E, 0x47]))
        XCTAssertEqual(name, "a.png")

        let two = batch.items[1].request
        XCTAssertEqual(two.tools.map(\.name), ["weather"])
        XCTAssertEqual(two.temperature, 0)
        XCTAssertNil(two.batch)
    }

    func testGetResultsAndCancelNameTheVendorBatch() throws {
        let cases: [(BatchAction, PrismPluginKit.BatchCall.Action)] = [
            (.get(vendorBatchID: "batch_1"), .get), (.results(vendorBatchID: "batch_1"), .results), (.cancel(vendorBatchID: "batch_1"), .cancel),
        ]
        for (action, expected) in cases {
            let bytes = RequestEncoder.encode(action, model: "m", requestID: "r", deadline: Date(timeIntervalSince1970: 1_800_000_000))
            let request = try XCTUnwrap(bytes.withUnsafeBytes { PrismPluginKit.ProviderRequest(serialized: $0) })
            XCTAssertEqual(request.batch?.action, expected)
            XCTAssertEqual(request.batch?.vendorBatchID, "batch_1")
            XCTAssertEqual(request.batch?.items.count, 0)
            XCTAssertEqual(request.deadline, Date(timeIntervalSince1970: 1_800_000_000))
        }
    }

    func testPluginAnswersReadBackOnTheHost() throws {
        let emitted = try captureEmits { call in
            call.batchStatus(PrismPluginKit.BatchStatus(vendorBatchID: "msgbatch_9", state: .running, vendorState: "in_progress",
                                                        total: 3, succeeded: 1, failed: 1))
            var ok = BatchItemOutcome(customID: "q1")
            ok.text = "A cat."
            ok.toolCalls = [(id: "call_1", name: "weather", argumentsJSON: #"{"city":"Paris"}"#)]
            ok.usage = (input: 12, output: 3)
            ok.stopReason = .toolUse
            call.batchResult(ok)
            var failed = BatchItemOutcome(customID: "q2")
            failed.status = .invalidArgument
            failed.message = "model not found"
            call.batchResult(failed)
        }
        let events = emitted.map { bytes in bytes.withUnsafeBytes { PrismProviders.ProviderEvent(serialized: $0) } }
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(events[0], .batchStatus(PrismProviders.BatchStatus(
            vendorBatchID: "msgbatch_9", state: .running, vendorState: "in_progress", total: 3, succeeded: 1, failed: 1,
            cancelled: 0, expired: 0, message: "")))
        var usage = PrismProviders.Usage()
        usage.inputTokens = 12
        usage.outputTokens = 3
        XCTAssertEqual(events[1], .batchResult(BatchItemResult(customID: "q1", events: [
            .text("A cat."), .toolCall(id: "call_1", name: "weather", argumentsJSON: #"{"city":"Paris"}"#), .usage(usage),
            .finished(stopReason: 3),
        ], status: 0, message: "")))
        XCTAssertEqual(events[2], .batchResult(BatchItemResult(customID: "q2", events: [], status: 3, message: "model not found")))
        if case .batchResult(let r)? = events[2] { XCTAssertFalse(r.isOK) }
    }

    /// Runs `body` with a ProviderCall whose host table records every emitted event's bytes.
    private func captureEmits(_ body: (ProviderCall) -> Void) throws -> [[UInt8]] {
        BatchWireTests.recorded = []
        var host = prism_host_api()
        host.abi_major = UInt32(PRISM_PLUGIN_ABI_MAJOR)
        host.abi_minor = UInt32(PRISM_PLUGIN_ABI_MINOR)
        host.struct_size = MemoryLayout<prism_host_api>.size
        host.emit = { _, bytes, count in
            BatchWireTests.recorded.append(Array(UnsafeBufferPointer(start: bytes, count: count)))
            return PRISM_STATUS_OK
        }
        host.is_cancelled = { _ in 0 }
        withUnsafePointer(to: &host) { pointer in
            body(ProviderCall(host: pointer, call: OpaquePointer(bitPattern: 1)!, trace: []))
        }
        return BatchWireTests.recorded
    }

    nonisolated(unsafe) private static var recorded: [[UInt8]] = []
}
