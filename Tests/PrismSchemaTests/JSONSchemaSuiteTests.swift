// Conformance: every required case of the official JSON-Schema-Test-Suite for draft 2020-12 (copied
// into JSON-Schema-Test-Suite/, see its README), run through JSONSchema. Prints the pass rate per
// file and in total; fails below the rate this validator reached or when a must-pass file regresses.
import Foundation
import PrismJSON
import PrismSchema
import XCTest

final class JSONSchemaSuiteTests: XCTestCase {
    /// The share of runnable cases (skipped ones aside) that must pass: what the validator reaches.
    static let minimumPassRate = 1.0

    /// Files whose every runnable case must pass; a regression is listed by case.
    static let mustPass: Set<String> = [
        "additionalProperties.json", "allOf.json", "anchor.json", "anyOf.json", "boolean_schema.json", "const.json",
        "contains.json", "content.json", "default.json", "defs.json", "dependentRequired.json", "dependentSchemas.json",
        "dynamicRef.json", "enum.json", "exclusiveMaximum.json", "exclusiveMinimum.json", "format.json",
        "if-then-else.json", "infinite-loop-detection.json", "items.json", "maxContains.json", "maxItems.json",
        "maxLength.json", "maxProperties.json", "maximum.json", "minContains.json", "minItems.json", "minLength.json",
        "minProperties.json", "minimum.json", "multipleOf.json", "not.json", "oneOf.json", "pattern.json",
        "patternProperties.json", "prefixItems.json", "properties.json", "propertyNames.json", "ref.json",
        "required.json", "type.json", "unevaluatedItems.json", "unevaluatedProperties.json", "uniqueItems.json",
        "vocabulary.json",
    ]

    /// The suite's remote server: schemas that need its documents cannot run without fetching them.
    private static let remoteHost = "http://localhost:1234/"

    private struct Tally {
        var passed = 0, failed = 0, skipped = 0
        var failures: [String] = []
    }

    func testDraft2020_12RequiredCases() throws {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "JSON-Schema-Test-Suite", withExtension: nil)).appendingPathComponent("draft2020-12")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(files.count, 46, "the copied suite has 46 files of required cases")
        var total = Tally()
        var regressions: [String] = []
        for file in files {
            let tally = try run(file: folder.appendingPathComponent(file))
            let name = file.padding(toLength: 32, withPad: " ", startingAt: 0)
            print("\(name) \(tally.passed)/\(tally.passed + tally.failed) passed, \(tally.skipped) skipped")
            for failure in tally.failures { print("    FAIL \(failure)") }
            if Self.mustPass.contains(file) { regressions += tally.failures.map { "\(file): \($0)" } }
            total.passed += tally.passed
            total.failed += tally.failed
            total.skipped += tally.skipped
        }
        let runnable = total.passed + total.failed
        let rate = runnable == 0 ? 0 : Double(total.passed) / Double(runnable)
        print(String(format: "JSON-Schema-Test-Suite draft2020-12: %d/%d passed (%.2f%%), %d skipped (remote refs)", total.passed, runnable, rate * 100, total.skipped))
        XCTAssertGreaterThanOrEqual(rate, Self.minimumPassRate, "pass rate fell below the rate reached before")
        XCTAssertEqual(regressions, [], "cases of must-pass files fail")
        XCTAssertGreaterThan(runnable, 1200, "most cases must be runnable")
    }

    private func run(file url: URL) throws -> Tally {
        let groups = try XCTUnwrap(JSONValue.parse(Data(contentsOf: url)).array)
        var tally = Tally()
        for group in groups {
            let description = group["description"]?.string ?? "?"
            let schemaDocument = try XCTUnwrap(group["schema"])
            let tests = try XCTUnwrap(group["tests"]?.array)
            if url.lastPathComponent == "refRemote.json" {
                tally.skipped += tests.count
                continue
            }
            let schema: JSONSchema
            do {
                schema = try JSONSchema(schemaDocument)
            } catch let error as SchemaError {
                if schemaDocument.jsonText.contains(Self.remoteHost) && error.message.contains("not fetched") {
                    tally.skipped += tests.count
                } else {
                    tally.failed += tests.count
                    tally.failures.append("\(description): the schema does not compile: \(error)")
                }
                continue
            }
            for test in tests {
                let expected = try XCTUnwrap(test["valid"]?.bool)
                let violations = schema.validate(try XCTUnwrap(test["data"]))
                if violations.isEmpty == expected {
                    tally.passed += 1
                } else {
                    tally.failed += 1
                    let why = violations.prefix(2).map(\.description).joined(separator: "; ")
                    tally.failures.append("\(description) / \(test["description"]?.string ?? "?"): expected \(expected ? "valid" : "invalid")\(why.isEmpty ? "" : " (\(why))")")
                }
            }
        }
        return tally
    }
}
