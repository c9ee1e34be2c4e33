// ProtoJSON against Python's google.protobuf.json_format as the oracle: random messages of every
// prism.v1 type (proto_json_oracle.py makes them), converted both ways. Binary → JSON must equal
// the oracle's JSON (numbers by value, members in any order); JSON → binary must parse, in
// Python, to the very message the oracle started from. Plus the refusals, named by field.
import Foundation
import PrismJSON
import PrismProto
import XCTest

final class ProtoJSONOracleTests: XCTestCase {
    private let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("proto_json_oracle.py")

    private func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func testRandomMessagesOfEveryTypeBothWays() throws {
        let json = ProtoJSON(schema: try ProtoSchema.embedded())
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prism-json-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases = folder.appendingPathComponent("cases.jsonl"), results = folder.appendingPathComponent("results.jsonl")
        let generated = try python(["generate", cases.path])
        try XCTSkipIf(generated.output.contains("No module named"), "the oracle needs grpcio-tools (tools/setup.sh): \(generated.output)")
        XCTAssertEqual(generated.status, 0, generated.output)

        var lines: [String] = []
        var types = Set<String>()
        for line in try String(contentsOf: cases, encoding: .utf8).split(separator: "\n") {
            let item = try JSONValue.parse(String(line))
            let type = try XCTUnwrap(item["type"]?.string), expectedJSON = try XCTUnwrap(item["json"]?.string)
            let binary = [UInt8](try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(item["binary"]?.string))))
            types.insert(type)

            let got = try json.json(fromBinary: binary, type: type)
            XCTAssertTrue(try JSONValue.parse(got).isEquivalent(to: JSONValue.parse(expectedJSON)),
                          "\(type) to JSON:\n ours   \(got)\n oracle \(expectedJSON)")
            let back = try json.binary(fromJSON: Array(expectedJSON.utf8), type: type)
            lines.append(JSONValue.object([("type", .string(type)), ("expected", .string(Data(binary).base64EncodedString())),
                                           ("got", .string(Data(back).base64EncodedString()))]).jsonText)
        }
        XCTAssertGreaterThan(types.count, 30, "every prism.v1 message type, nested ones included")
        XCTAssertTrue(types.isSuperset(of: ["prism.v1.GenerateRequest", "prism.v1.GenerateEvent", "prism.v1.ListProvidersResponse"]))
        try lines.joined(separator: "\n").write(to: results, atomically: true, encoding: .utf8)
        let checked = try python(["check", results.path])
        XCTAssertEqual(checked.status, 0, checked.output)
    }

    func testRefusalsNameTheField() throws {
        let json = ProtoJSON(schema: try ProtoSchema.embedded())
        func refusal(_ text: String) -> String {
            do {
                _ = try json.binary(fromJSON: Array(text.utf8), type: "prism.v1.GenerateRequest")
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(refusal(#"{"messages":[{"parts":[{"txt":"hi"}]}]}"#), "messages[0].parts[0].txt: prism.v1.Part has no field 'txt'")
        XCTAssertEqual(refusal(#"{"messages":[{"role":"ROLE_ROBOT"}]}"#), "messages[0].role: 'ROLE_ROBOT' is not a value of prism.v1.Role")
        XCTAssertEqual(refusal(#"{"maxTokens":"many"}"#), "maxTokens: expected a non-negative integer")
        XCTAssertEqual(refusal(#"{"maxTokens":1.5}"#), "maxTokens: expected a non-negative integer")
        XCTAssertEqual(refusal(#"{"messages":[{"parts":[{"media":{"data":"%%%"}}]}]}"#), "messages[0].parts[0].media.data: expected base64 bytes")
        XCTAssertEqual(refusal(#"[1]"#), "prism.v1.GenerateRequest: expected a JSON object for prism.v1.GenerateRequest")
        XCTAssertTrue(refusal(#"{"messages":"#).hasPrefix("the body is not JSON"))
        // Proto names are accepted beside JSON names, and null means "not set".
        XCTAssertEqual(refusal(#"{"max_tokens":5,"system":null}"#), "accepted")
    }
}
