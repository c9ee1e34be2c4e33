// JSONSchema's API as Extract uses it: the violations of a realistic invoice answer (instance paths,
// keywords, schema paths, messages, order), the SchemaError of broken schemas (where and why), and the
// guards against `$ref` loops, hostile nesting and float rounding.
import Foundation
import PrismJSON
import PrismSchema
import XCTest

final class JSONSchemaTests: XCTestCase {
    private let invoiceSchema = #"""
    {
      "type": "object",
      "required": ["invoice_number", "currency", "line_items", "total"],
      "additionalProperties": false,
      "properties": {
        "invoice_number": {"type": "string", "minLength": 1},
        "issued": {"type": "string", "format": "date"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "line_items": {
          "type": "array",
          "minItems": 1,
          "items": {"$ref": "#/$defs/line_item"}
        },
        "total": {"type": "number", "minimum": 0, "multipleOf": 0.01}
      },
      "$defs": {
        "line_item": {
          "type": "object",
          "required": ["description", "amount"],
          "properties": {
            "description": {"type": "string"},
            "quantity": {"type": "integer", "exclusiveMinimum": 0},
            "amount": {"type": "number", "minimum": 0}
          }
        }
      }
    }
    """#

    private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    func testAValidInvoiceHasNoViolations() throws {
        let schema = try JSONSchema(text: invoiceSchema)
        let answer = try json(#"{"invoice_number":"F-1","issued":"not a date: format is an annotation","currency":"EUR","line_items":[{"description":"Paper","quantity":2.0,"amount":19.99}],"total":19.99}"#)
        XCTAssertEqual(schema.validate(answer), [])
    }

    func testViolationsNameTheInstancePathKeywordAndSchemaPathInDocumentOrder() throws {
        let schema = try JSONSchema(text: invoiceSchema)
        let answer = try json(#"""
        {"invoice_number": "F-2", "currency": "eur", "note": "extra",
         "line_items": [{"description": "Paper", "amount": -3}, {"amount": 5, "quantity": 1.5}],
         "total": 2.005}
        """#)
        let violations = schema.validate(answer)
        XCTAssertEqual(violations.map(\.instancePath), ["/currency", "/note", "/line_items/0/amount", "/line_items/1", "/line_items/1/quantity", "/total"])
        XCTAssertEqual(violations.map(\.keyword), ["pattern", "additionalProperties", "minimum", "required", "type", "multipleOf"])
        XCTAssertEqual(violations[2], SchemaViolation(instancePath: "/line_items/0/amount", keyword: "minimum",
                                                      schemaPath: "/$defs/line_item/properties/amount/minimum", message: "must be >= 0, is -3"))
        XCTAssertEqual(violations[2].description, "/line_items/0/amount: must be >= 0, is -3 (minimum)")
        XCTAssertEqual(violations[0].message, #"must match the pattern "^[A-Z]{3}$", is "eur""#)
        XCTAssertEqual(violations[0].schemaPath, "/properties/currency/pattern")
        XCTAssertEqual(violations[1].message, #"property "note" is not allowed"#)
        XCTAssertEqual(violations[1].schemaPath, "/additionalProperties")
        XCTAssertEqual(violations[3].message, #"must have the property "description""#)
        XCTAssertEqual(violations[4].message, "must be an integer, is a number")
        XCTAssertEqual(violations[5].message, "must be a multiple of 0.01, is 2.005")
    }

    func testTheRootAndAlternativesReadWell() throws {
        let schema = try JSONSchema(text: #"{"anyOf": [{"type": "number"}, {"type": "null"}], "$defs": {}}"#)
        let violations = schema.validate(.string("12"))
        XCTAssertEqual(violations.count, 1)
        XCTAssertEqual(violations[0].description, #"/: must match at least one schema of anyOf: must be a number, is a string; or must be null, is a string (anyOf)"#)
        XCTAssertEqual(try JSONSchema(text: "false").validate(.null).map(\.description), ["/: no value is allowed here (false)"])
        XCTAssertEqual(try JSONSchema(text: #"{"enum": ["a", 1, {"b": null}]}"#).validate(.bool(true)).first?.message,
                       #"must be one of "a", 1, {"b":null}; is true"#)
    }

    func testNumbersCompareByValueAndDecimalMultiplesAreNotFooledByBinaryRounding() throws {
        let cents = try JSONSchema(text: #"{"multipleOf": 0.01}"#)
        for ok in ["19.99", "0.3", "1e-2", "100", "0", "-7.1"] { XCTAssertEqual(cents.validate(try json(ok)), [], ok) }
        for bad in ["1.005", "0.001", "3.14159"] { XCTAssertEqual(cents.validate(try json(bad)).map(\.keyword), ["multipleOf"], bad) }
        XCTAssertEqual(try JSONSchema(text: #"{"multipleOf": 0.1}"#).validate(.number(0.1 * 3)), [], "0.30000000000000004")
        XCTAssertEqual(try JSONSchema(text: #"{"type": "integer"}"#).validate(try json("1.0")), [], "1.0 is an integer")
        XCTAssertEqual(try JSONSchema(text: #"{"const": {"a": [1, 2.0]}}"#).validate(try json(#"{"a": [1.0, 2]}"#)), [])
        XCTAssertEqual(try JSONSchema(text: #"{"uniqueItems": true}"#).validate(try json(#"[{"a":1,"b":2},{"b":2,"a":1.0}]"#)).first?.message,
                       "must not contain duplicates: items 0 and 1 are equal")
    }

    func testPatternsAreECMA262NotICU() throws {
        let digits = try JSONSchema(text: #"{"pattern": "^\\d+$"}"#)
        XCTAssertEqual(digits.validate(.string("123")), [])
        XCTAssertEqual(digits.validate(.string("\u{661}\u{662}")).count, 1, "\\d is ASCII only in ECMA-262")
        XCTAssertEqual(digits.validate(.string("123\n")).count, 1, "$ is the end of the input, not before a final newline")
        XCTAssertEqual(try JSONSchema(text: #"{"pattern": "a{"}"#).validate(.string("a{")), [], "a lone { is a literal")
        XCTAssertEqual(try JSONSchema(text: #"{"pattern": "^\\p{Lu}\\u{E9}$"}"#).validate(.string("A\u{E9}")), [])
        XCTAssertEqual(try JSONSchema(text: #"{"pattern": "[^]"}"#).validate(.string("\n")), [])
        let verticalTab = try JSONSchema(text: #"{"pattern": "^\\v\\0$"}"#)
        XCTAssertEqual(verticalTab.validate(.string("\u{0B}\u{0}")), [])
        XCTAssertEqual(verticalTab.validate(.string("\n\u{0}")).count, 1, "\\v is U+000B alone, not ICU's vertical space class")
        XCTAssertEqual(try JSONSchema(text: #"{"maxLength": 2}"#).validate(.string("\u{1F600}\u{1F600}")), [], "lengths count code points")
    }

    // MARK: broken schemas

    private func schemaError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> SchemaError? {
        do {
            _ = try JSONSchema(text: text)
            XCTFail("compiled: \(text)", file: file, line: line)
        } catch let error as SchemaError {
            return error
        } catch {
            XCTFail("not a SchemaError: \(error)", file: file, line: line)
        }
        return nil
    }

    func testSchemaErrorsNameThePlaceAndTheRule() throws {
        let cases: [(schema: String, path: String, message: String)] = [
            (#"{"properties": {"age": {"minimum": "5"}}}"#, "/properties/age/minimum", "minimum must be a number, is a string"),
            (#"{"properties": {"age": 5}}"#, "/properties/age", "the schema must be an object or a boolean, is an integer"),
            (#"{"minLength": -1}"#, "/minLength", "minLength must be >= 0, is -1"),
            (#"{"maxItems": 1.5}"#, "/maxItems", "maxItems must be an integer, is a number"),
            (#"{"required": ["a", 1]}"#, "/required/1", "required item 1 must be a string, is an integer"),
            (#"{"required": ["a", "a"]}"#, "/required", "required must not contain duplicates: items 0 and 1 are equal"),
            (#"{"allOf": []}"#, "/allOf", "allOf must have at least 1 item, has 0"),
            (#"{"multipleOf": 0}"#, "/multipleOf", "multipleOf must be > 0, is 0"),
            (#"{"properties": {"code": {"pattern": "[a-"}}}"#, "/properties/code/pattern", #""[a-" is not a valid regular expression"#),
            (#"{"patternProperties": {"(": {}}}"#, "/patternProperties/(", #""(" is not a valid regular expression"#),
            (##"{"properties": {"x": {"$ref": "#/$defs/missing"}}}"##, "/properties/x/$ref", ##""#/$defs/missing" points to nothing: no value at /$defs/missing in this schema"##),
            (#"{"$defs": {"a": {"$anchor": "x"}, "b": {"$anchor": "x"}}}"#, "/$defs/b/$anchor", "$anchor declares #x, which /$defs/a already declares"),
            (#"{"$id": "https://example.com/a", "items": {"$id": "a"}}"#, "/items/$id", "$id declares https://example.com/a, which the root already declares"),
            (##"{"$defs": {"a~b": {}}, "$ref": "#/$defs/a~2b"}"##, "/$ref", ##""#/$defs/a~2b" has a fragment that is neither a JSON Pointer (bad ~ or % escape) nor an anchor name"##),
            (##"{"$ref": "#nowhere"}"##, "/$ref", ##""#nowhere" names the anchor "nowhere", which this schema does not declare"##),
            (#"{"$ref": "https://example.com/address.json"}"#, "/$ref",
             #""https://example.com/address.json" refers to https://example.com/address.json, which is not in this schema: remote references are not fetched"#),
            (#"{"$id": "https://example.com/invoice.json", "items": {"$ref": "line.json#/x"}}"#, "/items/$ref",
             #""line.json#/x" refers to https://example.com/line.json, which is not in this schema: remote references are not fetched"#),
            (#"{"properties": {"address": {"$ref": "address.json"}}}"#, "/properties/address/$ref",
             #""address.json" does not resolve to any schema in this document (other documents are not fetched)"#),
            (#"{"$schema": "https://example.com/my-meta", "type": "object"}"#, "/$schema",
             #""https://example.com/my-meta" is not a JSON Schema dialect Prism knows (draft 2020-12 is supported; custom meta-schemas are not fetched)"#),
            (#"{"items": [{"type": "string"}]}"#, "/items", "items must be an object or a boolean, is an array"),
            (#"{"type": "object",}"#, "", "the schema is not JSON: invalid JSON at byte 18: unexpected '}', expected a string key"),
        ]
        for c in cases {
            guard let error = schemaError(c.schema) else { continue }
            XCTAssertEqual(error.schemaPath, c.path, c.schema)
            XCTAssertEqual(error.message, c.message, c.schema)
        }
        XCTAssertTrue(schemaError(#"{"type": "strin"}"#)?.message.hasPrefix("type must match at least one schema of anyOf: must be one of ") == true)
    }

    func testKnownDialectsAndTheMetaSchemaItselfAreAccepted() throws {
        _ = try JSONSchema(text: ##"{"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/a"}}}"##)
        // Draft 7's dependencies is still honoured: arrays as dependentRequired, schemas as dependentSchemas.
        let legacy = try JSONSchema(text: #"{"dependencies": {"card": ["billing_address"], "vat_id": {"required": ["country"]}}}"#)
        XCTAssertEqual(legacy.validate(try json(#"{"card": 1, "vat_id": "x"}"#)).map(\.message),
                       [#"must have the property "billing_address" when "card" is present"#, #"must have the property "country""#])
        let meta = try JSONSchema(text: #"{"$ref": "https://json-schema.org/draft/2020-12/schema"}"#)
        XCTAssertEqual(meta.validate(try json(#"{"type": "object"}"#)), [])
        XCTAssertEqual(meta.validate(try json(#"{"minLength": -1}"#)).map(\.instancePath), ["/minLength"])
    }

    // MARK: hostile input

    func testReferenceLoopsAreViolationsNotHangs() throws {
        for text in [##"{"$ref": "#"}"##, ##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}"##] {
            let violations = try JSONSchema(text: text).validate(.number(1))
            XCTAssertEqual(violations.map(\.keyword), ["$ref"], text)
        }
        // Recursion through the instance is no loop: a tree validates to any (bounded) depth.
        let tree = try JSONSchema(text: ##"{"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}"##)
        XCTAssertEqual(tree.validate(try json(#"{"children": [{"children": [{"children": []}]}]}"#)), [])
        XCTAssertEqual(tree.validate(try json(#"{"children": [{"children": [1]}]}"#)).map(\.instancePath), ["/children/0/children/0"])
    }

    func testHostileNestingIsRefusedWithAViolationWithinAStackOf1MB() throws {
        let schema = try JSONSchema(text: ##"{"items": {"$ref": "#"}}"##)
        let deep = try json(String(repeating: "[", count: 500) + String(repeating: "]", count: 500))
        // On a thread of its own with 1 MB of stack (NIO's and the main thread have 8 MB): the limit
        // must end the recursion long before the stack does, in this debug build too.
        let outcome = ThreadOutcome()
        let deepSchema = String(repeating: #"{"items":"#, count: 200) + "true" + String(repeating: "}", count: 200)
        // The deepest schemas allowed, in the forms the meta-schema check recurses through most.
        let deepest = [#"{"allOf":[{"not":"#, #"{"properties":{"a":{"items":"#].map { String(repeating: $0, count: 16) + "true" + String(repeating: $0.hasPrefix(#"{"allOf"#) ? "}]}" : "}}}", count: 16) }
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            outcome.keywords = schema.validate(deep).map(\.keyword)
            outcome.compiled = Result { try JSONSchema(text: deepSchema) }
            outcome.deepest = deepest.map { text in Result { try JSONSchema(text: text) } }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
        done.wait()
        XCTAssertEqual(outcome.keywords, ["depth"])
        guard case .failure(let error as SchemaError)? = outcome.compiled else { return XCTFail("compiled a schema nested 200 deep") }
        XCTAssertEqual(error.message, "subschemas nested deeper than 32 levels")
        XCTAssertEqual(error.schemaPath, "/" + Array(repeating: "items", count: 33).joined(separator: "/"))
        XCTAssertEqual(outcome.deepest.count, 2)
        for result in outcome.deepest {
            XCTAssertNoThrow(try result.get(), "a schema nested 32 deep compiles")
        }
    }

    func testABacktrackingPatternIsStoppedAndReportedNotValidated() throws {
        // ^(a+)+$ backtracks exponentially: on 40 characters it would run for days.
        let hostile = String(repeating: "a", count: 40) + "!"
        let schema = try JSONSchema(text: #"{"properties": {"name": {"pattern": "^(a+)+$"}}, "patternProperties": {"^(a+)+$": true}}"#)
        let violations = schema.validate(.object([("name", .string(hostile)), (hostile, .null)]))
        XCTAssertEqual(violations.map(\.keyword), ["patternProperties", "pattern"], "the object's violation before its member's")
        XCTAssertEqual(violations.map(\.instancePath), ["", "/name"])
        for v in violations { XCTAssertTrue(v.message.hasSuffix("took longer than 250 ms: not validated"), v.message) }
        XCTAssertEqual(schema.validate(.object([("name", .string("aaa"))])), [], "the same pattern on a matching value")
    }

    func testOneCompiledSchemaValidatesFromManyThreads() throws {
        let schema = try JSONSchema(text: invoiceSchema)
        let bad = try json(#"{"invoice_number":"F","currency":"EUR","line_items":[{"description":"x","amount":-1}],"total":1}"#)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        defer { counts.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { i in counts[i] = schema.validate(bad).count }
        XCTAssertEqual(Set(counts), [1])
    }
}

/// What a thread of the test hands back; written before the semaphore is signalled, read after.
private final class ThreadOutcome: @unchecked Sendable {
    var keywords: [String] = []
    var compiled: Result<JSONSchema, Error>?
    var deepest: [Result<JSONSchema, Error>] = []
}
