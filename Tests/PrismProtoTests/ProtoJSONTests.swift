// Hand cases for ProtoJSON, one rule of proto3's JSON mapping each (names, defaults, enums,
// 64-bit integers, floats, bytes, maps, oneofs, null, unknown fields, error paths), and ProtoMethods.
import PrismJSON
import PrismProto
import XCTest

final class ProtoJSONTests: XCTestCase {
    private let request = protoDescriptor(prism__v1__generate_request__init)
    private let usage = protoDescriptor(prism__v1__usage__init)
    private let batch = protoDescriptor(prism__v1__batch__init)

    private func assertJSON(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let ours = try? JSONValue.parse(text), theirs = try? JSONValue.parse(expected)
        XCTAssert(ours != nil && theirs != nil && ours!.isEquivalent(to: theirs!), "\(text) is not \(expected)", file: file, line: line)
    }

    private func decode(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ json: String, ignore: Bool = false) throws -> [UInt8] {
        try ProtoJSON.decode(descriptor, json: Array(json.utf8), ignoreUnknownFields: ignore)
    }

    /// The error decoding `json` gives, or a failure when it decodes.
    private func error(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ json: String, ignore: Bool = false,
                       file: StaticString = #filePath, line: UInt = #line) -> ProtoJSONError? {
        do {
            _ = try decode(descriptor, json, ignore: ignore)
            XCTFail("\(json) was accepted", file: file, line: line)
        } catch let error as ProtoJSONError {
            return error
        } catch {
            XCTFail("\(json): \(error) is not a ProtoJSONError", file: file, line: line)
        }
        return nil
    }

    func testEncodesAGenerateRequestBuiltInC() throws {
        let b = ProtoBuilder()
        let media = b.message(prism__v1__media__init)
        media.pointee.mime_type = b.string("image/png")
        media.pointee.data = b.bytes([0xFF, 0xFE, 0x00])
        let text = b.message(prism__v1__part__init)
        text.pointee.kind_case = PRISM__V1__PART__KIND_TEXT
        text.pointee.text = b.string("What is in \"this\"? 😀")
        let image = b.message(prism__v1__part__init)
        image.pointee.kind_case = PRISM__V1__PART__KIND_MEDIA
        image.pointee.media = media
        let message = b.message(prism__v1__message__init)
        message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        message.pointee.parts = b.array([text, image])
        message.pointee.n_parts = 2
        let label = b.message(prism__v1__generate_request__labels_entry__init)
        label.pointee.key = b.string("team")
        label.pointee.value = b.string("web")
        let temperature = b.message(prism__v1__float_value__init)  // present, holding 0
        let request = b.message(prism__v1__generate_request__init)
        request.pointee.messages = b.array([message])
        request.pointee.n_messages = 1
        request.pointee.max_tokens = 64
        request.pointee.temperature = temperature
        request.pointee.outputs = b.array([PRISM__V1__MODALITY__MODALITY_TEXT, Prism__V1__Modality(rawValue: 42)])
        request.pointee.n_outputs = 2
        request.pointee.response_schema_json = b.string("{}")
        request.pointee.labels = b.array([label])
        request.pointee.n_labels = 1
        let json = try ProtoJSON.encode(self.request, binary: b.pack(request))
        assertJSON(json, """
            {"messages": [{"role": "ROLE_USER", "parts": [{"text": "What is in \\"this\\"? 😀"},
                                                         {"media": {"mimeType": "image/png", "data": "//4A"}}]}],
             "maxTokens": 64, "temperature": {}, "outputs": ["MODALITY_TEXT", 42],
             "responseSchemaJson": "{}", "labels": {"team": "web"}}
            """)
        // Defaults are left out; a oneof member is written even when it holds its default.
        XCTAssertEqual(try ProtoJSON.encode(self.request, binary: []), "{}")
        XCTAssertEqual(try ProtoJSON.encode(protoDescriptor(prism__v1__part__init), binary: [0x0A, 0x00]), #"{"text":""}"#)
    }

    func testSixtyFourBitIntegersAreStringsAndReadExactly() throws {
        let wire = try decode(usage, #"{"inputTokens": 18446744073709551615, "outputTokens": "9007199254740993", "image_tokens": 1e3}"#)
        let message = try ProtoMessage(prism__v1__usage__init, bytes: wire)
        XCTAssertEqual(message.pointee.input_tokens, UInt64.max)
        XCTAssertEqual(message.pointee.output_tokens, 9_007_199_254_740_993)
        XCTAssertEqual(message.pointee.image_tokens, 1000)
        assertJSON(try ProtoJSON.encode(usage, binary: wire),
                   #"{"inputTokens": "18446744073709551615", "outputTokens": "9007199254740993", "imageTokens": "1000"}"#)
        let negative = try decode(batch, #"{"createdAt": "-9223372036854775808", "total": "7"}"#)
        assertJSON(try ProtoJSON.encode(batch, binary: negative), #"{"createdAt": "-9223372036854775808", "total": 7}"#)

        XCTAssertEqual(error(usage, #"{"inputTokens": "18446744073709551616"}"#)?.description,
                       "inputTokens: 18446744073709551616 is out of range for a uint64")
        XCTAssertEqual(error(usage, #"{"inputTokens": -1}"#)?.path, "inputTokens")
        XCTAssertEqual(error(batch, #"{"total": 1.5}"#)?.description, #"total: "1.5" is not an integer"#)
        XCTAssertEqual(error(batch, #"{"total": " 1"}"#)?.path, "total")
        XCTAssertEqual(error(batch, #"{"total": "-"}"#)?.description, #"total: "-" is not an integer"#)
        XCTAssertEqual(error(batch, #"{"total": "Infinity"}"#)?.description, #"total: "Infinity" is not an integer"#)
        XCTAssertEqual(error(batch, #"{"total": true}"#)?.description, "total: expected an integer (a number or a string)")
    }

    func testFloatsAndTheirSpecialValues() throws {
        let wire = try decode(usage, #"{"audioSeconds": "NaN"}"#)
        XCTAssert(try ProtoMessage(prism__v1__usage__init, bytes: wire).pointee.audio_seconds.isNaN)
        XCTAssertEqual(try ProtoJSON.encode(usage, binary: wire), #"{"audioSeconds":"NaN"}"#)
        let value = protoDescriptor(prism__v1__float_value__init)
        XCTAssertEqual(try ProtoJSON.encode(value, binary: try decode(value, #"{"value": "-Infinity"}"#)), #"{"value":"-Infinity"}"#)
        XCTAssertEqual(try ProtoJSON.encode(value, binary: try decode(value, #"{"value": "Infinity"}"#)), #"{"value":"Infinity"}"#)
        // A float is written as the shortest decimal that reads back as the same float.
        XCTAssertEqual(try ProtoJSON.encode(value, binary: try decode(value, #"{"value": 0.1}"#)), #"{"value":0.1}"#)
        XCTAssertEqual(try ProtoJSON.encode(value, binary: try decode(value, #"{"value": "2.5"}"#)), #"{"value":2.5}"#)
        XCTAssertEqual(error(value, #"{"value": 1e39}"#)?.path, "value")
        // The largest floats read back as what the encoder writes for them, which as a Double is a
        // little past Float.greatestFiniteMagnitude; past the rounding to it is out of range.
        for largest in [Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude] {
            let json = #"{"value":\#(largest)}"#
            XCTAssertEqual(try ProtoJSON.encode(value, binary: try decode(value, json)), json)
        }
        XCTAssertEqual(error(value, #"{"value": 3.41e38}"#)?.path, "value")
        XCTAssertEqual(error(value, #"{"value": "inf"}"#)?.path, "value")
        XCTAssertEqual(error(value, #"{"value": "nan"}"#)?.path, "value")
    }

    func testBytesAreBase64EitherAlphabetPaddedOrNot() throws {
        let media = protoDescriptor(prism__v1__media__init)
        for spelling in ["+/8=", "-_8", "-_8=", "+/8"] {
            let message = try ProtoMessage(prism__v1__media__init, bytes: try decode(media, #"{"data": "\#(spelling)"}"#))
            XCTAssertEqual([UInt8](protoC: message.pointee.data), [0xFB, 0xFF], spelling)
        }
        XCTAssertEqual(try ProtoJSON.encode(media, binary: try decode(media, #"{"data": "-_8"}"#)), #"{"data":"+/8="}"#)
        let bad = #"{"messages": [{"parts": [{"text": "x"}, {"media": {"data": "not base64!"}}]}]}"#
        XCTAssertEqual(error(request, bad)?.description, "messages[0].parts[1].media.data: not base64")
        XCTAssertEqual(error(media, #"{"data": "A"}"#)?.path, "data")
    }

    func testEnumsByNameOrNumber() throws {
        let message = protoDescriptor(prism__v1__message__init)
        for spelling in [#""ROLE_ASSISTANT""#, "2", #""2""#] {
            let decoded = try ProtoMessage(prism__v1__message__init, bytes: try decode(message, #"{"role": \#(spelling)}"#))
            XCTAssertEqual(decoded.pointee.role, PRISM__V1__ROLE__ROLE_ASSISTANT, spelling)
        }
        // proto3 enums are open: an unknown number is kept and written back as a number.
        XCTAssertEqual(try ProtoJSON.encode(message, binary: try decode(message, #"{"role": 9}"#)), #"{"role":9}"#)
        XCTAssertEqual(error(message, #"{"role": "ROLE_BOSS"}"#)?.description, #"role: "ROLE_BOSS" is not a value of prism.v1.Role"#)
        XCTAssertEqual(try ProtoJSON.encode(message, binary: try decode(message, #"{"role": "ROLE_BOSS"}"#, ignore: true)), "{}")
    }

    func testFieldNamesNullsAndUnknownFields() throws {
        // The .proto name is accepted beside the json name; null means the default.
        let wire = try decode(request, #"{"max_tokens": 5, "system": null, "messages": null, "route": {"provider": "p", "cache": null}}"#)
        assertJSON(try ProtoJSON.encode(request, binary: wire), #"{"maxTokens": 5, "route": {"provider": "p"}}"#)

        let unknown = #"{"messages": [{"parts": [{"text": "hi", "colour": "red"}]}]}"#
        XCTAssertEqual(error(request, unknown)?.description,
                       #"messages[0].parts[0].colour: unknown field: prism.v1.Part has no field "colour""#)
        assertJSON(try ProtoJSON.encode(request, binary: try decode(request, unknown, ignore: true)),
                   #"{"messages": [{"parts": [{"text": "hi"}]}]}"#)
        XCTAssertEqual(error(request, #"{"maxTokens": 1, "max_tokens": 2}"#)?.path, "max_tokens")
        XCTAssertEqual(error(request, #"{"messages": [null]}"#)?.path, "messages[0]")
        XCTAssertEqual(error(request, #"{"messages": {}}"#)?.description, "messages: expected a JSON array (a repeated field)")
        XCTAssertEqual(error(request, #"{"route": "auto"}"#)?.path, "route")
        XCTAssertEqual(error(request, #"{"system": 1}"#)?.description, "system: expected a string")
        XCTAssertEqual(error(request, #"{"system": "a\u0000b"}"#)?.path, "system")
        XCTAssertEqual(error(request, "[]")?.path, "")
        XCTAssertEqual(error(request, #"{"system": "x""#)?.reason.hasPrefix("invalid JSON at byte"), true)
        XCTAssertEqual(error(protoDescriptor(prism__v1__features__init), #"{"tools": "true"}"#)?.description, "tools: expected true or false")
    }

    func testOneofAndMaps() throws {
        let part = protoDescriptor(prism__v1__part__init)
        XCTAssertEqual(error(part, #"{"text": "a", "media": {}}"#)?.description,
                       "media: media and text are members of one oneof; at most one may be set")
        // A null member does not count as set.
        XCTAssertEqual(try ProtoJSON.encode(part, binary: try decode(part, #"{"text": "a", "media": null}"#)), #"{"text":"a"}"#)
        XCTAssertEqual(try ProtoJSON.encode(part, binary: try decode(part, #"{"media": {}}"#)), #"{"media":{}}"#)

        let wire = try decode(request, #"{"labels": {"a": "1", "b": ""}}"#)
        let decoded = try ProtoMessage(prism__v1__generate_request__init, bytes: wire)
        XCTAssertEqual(decoded.pointee.n_labels, 2)
        assertJSON(try ProtoJSON.encode(request, binary: wire), #"{"labels": {"a": "1", "b": ""}}"#)
        XCTAssertEqual(error(request, #"{"labels": {"a": "1", "a": "2"}}"#)?.path, #"labels["a"]"#)
        XCTAssertEqual(error(request, #"{"labels": {"a": null}}"#)?.description, #"labels["a"]: a map value cannot be null"#)
        XCTAssertEqual(error(request, #"{"labels": {"a": 1}}"#)?.path, #"labels["a"]"#)
    }

    func testMalformedBinaryIsAProtoError() {
        XCTAssertThrowsError(try ProtoJSON.encode(request, binary: [0x0A, 0x05, 0x01])) { error in
            XCTAssertEqual(error as? ProtoError, .malformed("prism.v1.GenerateRequest"))
        }
    }

    func testMethodsByPath() throws {
        let methods = ProtoMethods.embedded
        let generate = try XCTUnwrap(methods.method(path: "/prism.v1.Prism/Generate"))
        XCTAssertEqual(protoTypeName(generate.input), "prism.v1.GenerateRequest")
        XCTAssertEqual(protoTypeName(generate.output), "prism.v1.GenerateEvent")
        XCTAssertEqual([generate.clientStreaming, generate.serverStreaming], [false, true])
        let converse = try XCTUnwrap(methods.method(path: "/prism.v1.Prism/Converse"))
        XCTAssertEqual([converse.clientStreaming, converse.serverStreaming], [true, true])
        let extract = try XCTUnwrap(methods.method(path: "/prism.v1.Prism/Extract"))
        XCTAssertEqual([extract.clientStreaming, extract.serverStreaming], [false, false])
        XCTAssertNil(methods.method(path: "/prism.v1.Prism/Nothing"))
        // Every service of the embedded descriptor set is there, every method of it.
        let services = Set(methods.paths.map { String($0.dropFirst().split(separator: "/")[0]) })
        XCTAssertEqual(services, Set(try DescriptorIndex.embedded().serviceNames))
        // The 12 methods of API.md, and DeleteDocument, ListDocuments, ListIndexes.
        XCTAssertEqual(methods.paths.filter { $0.hasPrefix("/prism.v1.Prism/") }.count, 15)
    }
}
