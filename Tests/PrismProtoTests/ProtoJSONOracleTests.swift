// ProtoJSON against Python's google.protobuf.json_format as the oracle: tools/protojson_oracle.py
// writes seeded random messages of every message type in proto/ (wire bytes, json_format's JSON,
// a respelled variant) and inputs json_format refuses; both directions must agree with it.
import Foundation
import PrismJSON
import PrismProto
import XCTest

final class ProtoJSONOracleTests: XCTestCase {
    /// Message types not reachable from a service's methods: the plugin ABI's top-level messages.
    private static let extraRoots: [UnsafePointer<ProtobufCMessageDescriptor>] = [
        protoDescriptor(prism__plugin__v1__provider_info__init),
        protoDescriptor(prism__plugin__v1__provider_request__init),
        protoDescriptor(prism__plugin__v1__provider_event__init),
        protoDescriptor(prism__plugin__v1__batch_call__init),
        protoDescriptor(prism__plugin__v1__batch_status__init),
        protoDescriptor(prism__plugin__v1__batch_item_result__init),
        protoDescriptor(google__protobuf__file_descriptor_set__init),
    ]

    /// Every message type reachable from the embedded services and the extra roots, by full name.
    private func descriptorsByName() -> [String: UnsafePointer<ProtobufCMessageDescriptor>] {
        var found: [String: UnsafePointer<ProtobufCMessageDescriptor>] = [:]
        var queue = Self.extraRoots
        for path in ProtoMethods.embedded.paths {
            let method = ProtoMethods.embedded.method(path: path)!
            queue += [method.input, method.output]
        }
        while let descriptor = queue.popLast() {
            let name = protoTypeName(descriptor)
            guard found[name] == nil else { continue }
            found[name] = descriptor
            for index in 0..<Int(descriptor.pointee.n_fields) where descriptor.pointee.fields[index].type == PROTOBUF_C_TYPE_MESSAGE {
                queue.append(descriptor.pointee.fields[index].descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
            }
        }
        return found
    }

    /// Runs the oracle script into a temporary file and returns its cases.
    private func oracleCases() throws -> [JSONValue] {
        let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("protojson-oracle-\(getpid()).jsonl")
        defer { try? FileManager.default.removeItem(at: out) }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", root.appendingPathComponent("tools/protojson_oracle.py").path, out.path]
        // PROTOJSON_ORACLE_SEED / PROTOJSON_ORACLE_PER_TYPE explore further than the default run.
        let environment = ProcessInfo.processInfo.environment
        if let seed = environment["PROTOJSON_ORACLE_SEED"] { python.arguments! += ["--seed", seed] }
        if let perType = environment["PROTOJSON_ORACLE_PER_TYPE"] { python.arguments! += ["--per-type", perType] }
        try python.run()
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0, "tools/protojson_oracle.py failed")
        let text = try String(contentsOf: out, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    private func bytes(_ base64: String) -> [UInt8] {
        Array(Data(base64Encoded: base64)!)
    }

    /// Whether two JSON texts mean the same: member order ignored, numbers compared by value.
    private func same(_ a: String, _ b: String) -> Bool {
        guard let x = try? JSONValue.parse(a), let y = try? JSONValue.parse(b) else { return false }
        return x.isEquivalent(to: y)
    }

    func testAgreesWithJSONFormatOnEveryMessageType() throws {
        let descriptors = descriptorsByName()
        let cases = try oracleCases()
        var types: Set<String> = []
        var counts: [String: Int] = [:]
        var failures: [String] = []
        // Decodes whose wire bytes equal json_format's parse exactly (maps may be ordered otherwise).
        var sameBytes = 0
        func fail(_ message: String) {
            if failures.count < 30 { failures.append(message) }
        }
        for item in cases {
            let kind = item["kind"]!.string!, typeName = item["type"]!.string!
            counts[kind, default: 0] += 1
            guard let descriptor = descriptors[typeName] else {
                fail("\(typeName): no protobuf-c descriptor found")
                continue
            }
            types.insert(typeName)
            switch kind {
            case "message":
                let wire = bytes(item["binary"]!.string!), json = item["json"]!.string!
                // Binary to JSON: as json_format writes it.
                let encoded = try ProtoJSON.encode(descriptor, binary: wire)
                if !same(encoded, json) { fail("\(typeName) encode:\n  ours   \(encoded)\n  oracle \(json)") }
                // JSON to binary, for the canonical text and the respelled variant; the wire
                // bytes are compared through their JSON (map order and packing may differ).
                for (input, expected) in [(json, json), (item["variant"]!.string!, item["variantJSON"]!.string!)] {
                    do {
                        let decoded = try ProtoJSON.decode(descriptor, json: Array(input.utf8))
                        if decoded == wire { sameBytes += 1 }
                        let again = try ProtoJSON.encode(descriptor, binary: decoded)
                        if !same(again, expected) { fail("\(typeName) decode \(input):\n  ours   \(again)\n  oracle \(expected)") }
                    } catch {
                        fail("\(typeName) decode \(input): \(error)")
                    }
                }
            case "reject":
                let input = item["input"]!.string!
                let ignore = item["ignoreUnknownFields"]!.bool!
                do {
                    _ = try ProtoJSON.decode(descriptor, json: Array(input.utf8), ignoreUnknownFields: ignore)
                    fail("\(typeName) accepted \(input) (ignore unknown: \(ignore)); json_format refuses it: \(item["why"]!.string!)")
                } catch is ProtoJSONError {
                } catch {
                    fail("\(typeName) \(input): not a ProtoJSONError: \(error)")
                }
            case "ignore":
                let input = item["input"]!.string!
                do {
                    let decoded = try ProtoJSON.decode(descriptor, json: Array(input.utf8), ignoreUnknownFields: true)
                    let again = try ProtoJSON.encode(descriptor, binary: decoded)
                    if !same(again, item["json"]!.string!) { fail("\(typeName) ignore \(input): \(again)") }
                } catch {
                    fail("\(typeName) ignore \(input): \(error)")
                }
            default:
                fail("unknown case kind \(kind)")
            }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
        // Every request and event of prism.v1 is covered, and the oracle really ran.
        for path in ProtoMethods.embedded.paths where path.hasPrefix("/prism.v1.") {
            let method = ProtoMethods.embedded.method(path: path)!
            XCTAssert(types.contains(protoTypeName(method.input)) && types.contains(protoTypeName(method.output)), path)
        }
        XCTAssertGreaterThan(counts["message", default: 0], 1000)
        XCTAssertGreaterThan(counts["reject", default: 0], 100)
        print("ProtoJSON oracle: \(types.count) types, cases \(counts), \(sameBytes) decodes byte-identical to json_format's")
    }
}
