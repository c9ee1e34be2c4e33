// Tests of the Swift layer over protobuf-c: building, encoding and decoding real interop
// messages, and the error a client sees for bytes that are not a message.
import NIOCore
import PrismProto
import XCTest

final class ProtoMessageTests: XCTestCase {
    /// Builds a SimpleRequest with every kind of field the builder handles.
    private func buildSimpleRequest(_ builder: ProtoBuilder) -> UnsafeMutablePointer<Grpc__Testing__SimpleRequest> {
        let request = builder.message(grpc__testing__simple_request__init)
        request.pointee.response_size = 314_159
        request.pointee.fill_username = 1
        let payload = builder.message(grpc__testing__payload__init)
        payload.pointee.body = builder.bytes([0, 1, 2, 255])
        request.pointee.payload = payload
        let status = builder.message(grpc__testing__echo_status__init)
        status.pointee.code = 2
        status.pointee.message = builder.string("tëst ✓")
        request.pointee.response_status = status
        let compressed = builder.message(grpc__testing__bool_value__init)
        compressed.pointee.value = 1
        request.pointee.response_compressed = compressed
        return request
    }

    func testSimpleRequestRoundTrip() throws {
        let builder = ProtoBuilder()
        let wire = builder.pack(buildSimpleRequest(builder))
        XCTAssertFalse(wire.isEmpty)

        let decoded = try ProtoMessage(grpc__testing__simple_request__init, bytes: wire)
        XCTAssertEqual(decoded.typeName, "grpc.testing.SimpleRequest")
        XCTAssertEqual(decoded.pointee.response_size, 314_159)
        XCTAssertEqual(decoded.pointee.fill_username, 1)
        XCTAssertEqual(decoded.pointee.fill_oauth_scope, 0)
        XCTAssertEqual([UInt8](protoC: decoded.pointee.payload.pointee.body), [0, 1, 2, 255])
        XCTAssertEqual(decoded.pointee.response_status.pointee.code, 2)
        XCTAssertEqual(String(protoC: decoded.pointee.response_status.pointee.message), "tëst ✓")
        XCTAssertEqual(decoded.pointee.response_compressed.pointee.value, 1)
        XCTAssertNil(decoded.pointee.expect_compressed)
        XCTAssertEqual(decoded.packed(), wire)
    }

    func testByteBufferRoundTrip() throws {
        let builder = ProtoBuilder()
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeString("prefix")
        let written = builder.pack(buildSimpleRequest(builder), into: &buffer)
        XCTAssertEqual(buffer.readableBytes, 6 + written)

        buffer.moveReaderIndex(forwardBy: 6)
        let decoded = try ProtoMessage(grpc__testing__simple_request__init, buffer: buffer)
        XCTAssertEqual(decoded.pointee.response_size, 314_159)
        XCTAssertEqual(buffer.readableBytes, written, "decoding must not consume the buffer")
    }

    func testRepeatedFieldsAndMaps() throws {
        let builder = ProtoBuilder()
        let route = builder.message(prism__v1__route__init)
        route.pointee.model = builder.string("openai/gpt-4o")
        let fallbacks = ["anthropic/claude-sonnet-4-20250514", "gemini/gemini-2.0-flash"]
        route.pointee.fallbacks = builder.strings(fallbacks)
        route.pointee.n_fallbacks = fallbacks.count

        let request = builder.message(prism__v1__generate_request__init)
        request.pointee.route = route
        let outputs = [PRISM__V1__MODALITY__MODALITY_TEXT, PRISM__V1__MODALITY__MODALITY_IMAGE]
        request.pointee.outputs = builder.array(outputs)
        request.pointee.n_outputs = outputs.count
        let label = builder.message(prism__v1__generate_request__labels_entry__init)
        label.pointee.key = builder.string("team")
        label.pointee.value = builder.string("search")
        request.pointee.labels = builder.array([label])
        request.pointee.n_labels = 1

        let decoded = try ProtoMessage(prism__v1__generate_request__init, bytes: builder.pack(request))
        let message = decoded.pointee
        let decodedFallbacks = UnsafeBufferPointer(start: message.route.pointee.fallbacks, count: message.route.pointee.n_fallbacks)
        XCTAssertEqual(decodedFallbacks.map { String(protoC: $0) }, fallbacks)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: message.outputs, count: message.n_outputs)), outputs)
        XCTAssertEqual(message.n_labels, 1)
        XCTAssertEqual(String(protoC: message.labels[0]!.pointee.key), "team")
        XCTAssertEqual(String(protoC: message.labels[0]!.pointee.value), "search")
        // Unset string fields read as "" (protobuf-c's shared empty string).
        XCTAssertEqual(String(protoC: message.system), "")
        XCTAssertNil(message.temperature)
    }

    func testEmptyMessage() throws {
        let builder = ProtoBuilder()
        XCTAssertEqual(builder.pack(builder.message(grpc__testing__empty__init)), [])
        let decoded = try ProtoMessage(grpc__testing__empty__init, bytes: [])
        XCTAssertEqual(decoded.typeName, "grpc.testing.Empty")
    }

    func testMalformedBytesNameTheType() {
        // A length-delimited payload (field 3) that claims 100 bytes but has 2.
        let truncated: [UInt8] = [0x1a, 0x64, 0x01, 0x02]
        XCTAssertThrowsError(try ProtoMessage(grpc__testing__simple_request__init, bytes: truncated)) { error in
            XCTAssertEqual(error as? ProtoError, .malformed("grpc.testing.SimpleRequest"))
            XCTAssertEqual("\(error)", "malformed grpc.testing.SimpleRequest message")
        }
        // Wire type 7 does not exist.
        XCTAssertThrowsError(try ProtoMessage(prism__v1__generate_request__init, bytes: [0x0f, 0x00])) { error in
            XCTAssertEqual(error as? ProtoError, .malformed("prism.v1.GenerateRequest"))
        }
    }

    func testDescriptorForm() throws {
        // The run-time form the server uses: the input type of a method descriptor.
        let method = prism__v1__prism__descriptor.methods[0]
        XCTAssertEqual(String(protoC: method.name), "Generate")
        XCTAssertEqual(method.input, protoDescriptor(prism__v1__generate_request__init))

        let builder = ProtoBuilder()
        let request = builder.message(prism__v1__generate_request__init)
        request.pointee.system = builder.string("be brief")
        let decoded = try ProtoMessage<Prism__V1__GenerateRequest>(descriptor: method.input, bytes: builder.pack(request))
        XCTAssertEqual(String(protoC: decoded.pointee.system), "be brief")
    }
}
