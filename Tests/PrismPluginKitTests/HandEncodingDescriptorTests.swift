// The kit's hand-written protobuf (ProtoWriter: ProviderInfo, every ProviderEvent a Swift plugin
// emits) against the descriptors generated from plugin.proto: decoded by protobuf-c, no field may
// be unknown to them, and the message as proto3 JSON (names and types from the descriptors) must
// be the one expected. A renumbered or retyped field in the .proto fails here.
import CPrismPlugin
import CProtobufC
import PrismProto
import PrismProtoC
import XCTest

@testable import PrismPluginKit

/// What a fake host's emit received, in order. Only the test's own thread emits.
nonisolated(unsafe) private var emitted: [[UInt8]] = []

final class HandEncodingDescriptorTests: XCTestCase {
    /// `bytes` decoded by protobuf-c as the message `descriptor` describes: as proto3 JSON, and the
    /// fields (at any depth) the descriptors do not know. Nil when protobuf-c refuses the bytes.
    private func decoded(_ bytes: [UInt8], _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) throws -> (json: String, unknown: [String])? {
        guard let message = bytes.withUnsafeBufferPointer({ protobuf_c_message_unpack(descriptor, nil, $0.count, $0.baseAddress) }) else { return nil }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        return (try ProtoJSON.encode(descriptor, binary: bytes), protoUnknownFields(message).map { "\($0.path)#\($0.number)" })
    }

    /// `bytes` as proto3 JSON, after checking that protobuf-c decodes them with no unknown field.
    private func json(_ bytes: [UInt8], _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
                      file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try XCTUnwrap(try decoded(bytes, descriptor), "protobuf-c cannot decode the hand-written \(protoTypeName(descriptor))",
                                   file: file, line: line)
        XCTAssertEqual(result.unknown, [], "fields the descriptors do not know", file: file, line: line)
        return result.json
    }

    /// The check itself: what a hand encoder would write after a field moved or changed type.
    func testAMovedOrRetypedFieldIsCaught() throws {
        let event = protoDescriptor(prism__plugin__v1__provider_event__init)
        var moved = ProtoWriter()
        moved.message(5) { $0.uint(2, 3) }  // Finish.stop_reason written as field 2
        XCTAssertEqual(try decoded(moved.bytes, event)?.unknown, [".finished#2"])
        var retyped = ProtoWriter()
        retyped.message(4) { $0.string(1, "12") }  // Usage.input_tokens (uint64) written as a string
        XCTAssertNil(try decoded(retyped.bytes, event), "protobuf-c took a string for a uint64")
    }

    /// A ProviderCall on a host whose emit records each event.
    private func recordingCall(_ body: (ProviderCall) -> Void) -> [[UInt8]] {
        var host = prism_host_api()
        host.emit = { _, event, len in
            emitted.append(Array(UnsafeBufferPointer(start: event, count: len)))
            return PRISM_STATUS_OK
        }
        host.finish = { _, _, _ in }
        host.is_cancelled = { _ in 0 }
        host.log = { _, _, _, _ in }
        emitted = []
        withUnsafePointer(to: &host) { body(ProviderCall(host: $0, call: OpaquePointer(bitPattern: 1)!, trace: [])) }
        return emitted
    }

    func testProviderInfoMatchesItsDescriptor() throws {
        var model = ModelInfo(id: "gpt-x")
        model.operations = [.generate, .embed]
        model.inputs = [.text, .image, .pdf]
        model.outputs = [.text, .audio]
        (model.maxImages, model.maxImageBytes, model.maxImageLongEdge, model.maxImageShortEdge, model.maxImagePixels) = (1, 2, 3, 4, 5)
        model.imageMimeTypes = ["image/png", "image/jpeg"]
        (model.maxPDFPages, model.maxPDFBytes, model.maxAudioSeconds, model.maxAudioBytes, model.maxRequestBytes) = (6, 7, 8, 9, 10)
        model.audioMimeTypes = ["audio/wav"]
        (model.streaming, model.tools, model.jsonSchema, model.batch, model.systemPrompt) = (true, true, true, true, false)
        (model.inputPrice, model.outputPrice) = (11, 12)
        var family = ModelInfo(id: "gpt-*")
        family.operations = [.transcribe]
        let info = ProviderInfo(name: "p", version: "1.2", description: "d", models: [model], families: [family])
        XCTAssertEqual(try json(info.serialized(), protoDescriptor(prism__plugin__v1__provider_info__init)), """
            {"name":"p","version":"1.2","description":"d","models":[{"id":"gpt-x",\
            "operations":["OPERATION_GENERATE","OPERATION_EMBED"],"inputs":["MODALITY_TEXT","MODALITY_IMAGE","MODALITY_PDF"],\
            "outputs":["MODALITY_TEXT","MODALITY_AUDIO"],"limits":{"maxImages":1,"maxImageBytes":"2","maxImageLongEdge":3,\
            "maxImagePixels":"5","imageMimeTypes":["image/png","image/jpeg"],"maxPdfPages":6,"maxPdfBytes":"7",\
            "maxAudioSeconds":8,"maxAudioBytes":"9","audioMimeTypes":["audio/wav"],"maxRequestBytes":"10","maxImageShortEdge":4},\
            "features":{"streaming":true,"tools":true,"jsonSchema":true,"batch":true},\
            "pricing":{"inputUsdMicrosPerMillionTokens":"11","outputUsdMicrosPerMillionTokens":"12"}}],\
            "families":[{"id":"gpt-*","operations":["OPERATION_TRANSCRIBE"],"inputs":["MODALITY_TEXT"],"outputs":["MODALITY_TEXT"],\
            "limits":{},"features":{"streaming":true,"systemPrompt":true},"pricing":{}}]}
            """)
    }

    func testEveryEventMatchesItsDescriptor() throws {
        let events = recordingCall { call in
            call.text("hé")
            call.toolCall(id: "t1", name: "f", argumentsJSON: "{}")
            call.media(mimeType: "audio/wav", data: [1, 2, 3], last: true)
            call.usage(input: 1, output: 2, imageTokens: 3, audioSeconds: 1.5, costUSDMicros: 5, cacheReadTokens: 6, cacheWriteTokens: 7)
            call.finished(.toolUse)
            call.batchStatus(BatchStatus(vendorBatchID: "b1", state: .ended, vendorState: "done", total: 1, succeeded: 2, failed: 3,
                                         cancelled: 4, expired: 5, message: "m"))
            var outcome = BatchItemOutcome(customID: "c1")
            outcome.status = .rateLimited
            outcome.message = "later"
            outcome.text = "answer"
            outcome.toolCalls = [(id: "t2", name: "g", argumentsJSON: "[]")]
            outcome.usage = (input: 8, output: 9)
            outcome.stopReason = .maxTokens
            call.batchResult(outcome)
            call.fail(CallFailure(.unavailable, "down", retryable: true, retryAfterMilliseconds: 10, httpStatus: 503))
        }
        let expected = [
            #"{"text":{"text":"hé"}}"#,
            #"{"toolCall":{"id":"t1","name":"f","argumentsJson":"{}"}}"#,
            #"{"media":{"mimeType":"audio/wav","data":"AQID","last":true}}"#,
            #"{"usage":{"inputTokens":"1","outputTokens":"2","imageTokens":"3","audioSeconds":1.5,"costUsdMicros":"5","cacheReadTokens":"6","cacheWriteTokens":"7"}}"#,
            #"{"finished":{"stopReason":"STOP_TOOL_USE"}}"#,
            #"{"batchStatus":{"vendorBatchId":"b1","state":"BATCH_STATE_ENDED","vendorState":"done","total":1,"succeeded":2,"failed":3,"cancelled":4,"expired":5,"message":"m"}}"#,
            #"{"batchResult":{"customId":"c1","events":[{"text":{"text":"answer"}},{"toolCall":{"id":"t2","name":"g","argumentsJson":"[]"}},{"usage":{"inputTokens":"8","outputTokens":"9"}},{"finished":{"stopReason":"STOP_MAX_TOKENS"}}],"status":10,"message":"later"}}"#,
            #"{"error":{"message":"down","retryable":true,"retryAfterMs":"10","httpStatus":503}}"#,
        ]
        XCTAssertEqual(events.count, expected.count)
        for (event, want) in zip(events, expected) {
            XCTAssertEqual(try json(event, protoDescriptor(prism__plugin__v1__provider_event__init)), want)
        }
    }
}
