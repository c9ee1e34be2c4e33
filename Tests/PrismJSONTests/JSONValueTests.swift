// PrismJSON's parser and serializer: the value types, escapes and surrogates, numbers,
// nesting and its limit, every malformed input we could think of (with the offset reported), and
// agreement with Foundation's JSONSerialization on vendor chunks and generated documents.
import Foundation
import PrismJSON
import XCTest

final class JSONValueTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    // MARK: values

    func testScalarsAndContainers() throws {
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse(" true "), .bool(true))
        XCTAssertEqual(try parse("\n\tfalse\r"), .bool(false))
        XCTAssertEqual(try parse("[]"), .array([]))
        XCTAssertEqual(try parse("{}"), .object([]))
        XCTAssertEqual(try parse(#"[1, "a", null, [true]]"#), .array([.number(1), .string("a"), .null, .array([.bool(true)])]))
        let o = try parse(#"{ "b" : 1 , "a" : { "c" : [ ] } }"#)
        XCTAssertEqual(o.object?.map(\.key), ["b", "a"], "members keep document order")
        XCTAssertEqual(o["a"]?["c"], .array([]))
        XCTAssertNil(o["missing"])
        XCTAssertNil(o[0], "an object has no index")
        XCTAssertNil(try parse("[1]")[1], "out of range")
        XCTAssertNil(try parse("[1]")["a"], "an array has no keys")
    }

    func testLookupChainOnAnOpenAIChunk() throws {
        let chunk = try parse(#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#)
        XCTAssertEqual(chunk["choices"]?[0]?["delta"]?["content"]?.string, "Hi")
        XCTAssertEqual(chunk["choices"]?[0]?["index"]?.int, 0)
        XCTAssertEqual(chunk["choices"]?[0]?["finish_reason"]?.isNull, true)
        XCTAssertNil(chunk["usage"]?.object)
        XCTAssertNil(chunk["id"]?.int, "a string is not a number")
    }

    func testARepeatedKeyKeepsTheLastValue() throws {
        XCTAssertEqual(try parse(#"{"a":1,"a":2}"#)["a"], .number(2))
    }

    // MARK: strings

    func testEscapes() throws {
        XCTAssertEqual(try parse(#""\" \\ \/ \b \f \n \r \t""#).string, "\" \\ / \u{8} \u{C} \n \r \t")
        XCTAssertEqual(try parse(#""\u0041\u00e9\u4e2D""#).string, "Aé中")
        XCTAssertEqual(try parse(#""\u0000""#).string, "\u{0}")
        XCTAssertEqual(try parse(#""plain, then \n escaped""#).string, "plain, then \n escaped")
    }

    func testUnicodeAndSurrogates() throws {
        XCTAssertEqual(try parse("\"héllo 世界 😀\"").string, "héllo 世界 😀", "raw UTF-8")
        XCTAssertEqual(try parse(#""\ud83d\ude00""#).string, "😀", "a surrogate pair")
        XCTAssertEqual(try parse(#""x\uD834\uDD1Ey""#).string, "x𝄞y")
        // Lone surrogates are legal JSON but no character: each becomes U+FFFD.
        XCTAssertEqual(try parse(#""\ud83d""#).string, "\u{FFFD}")
        XCTAssertEqual(try parse(#""\ude00x""#).string, "\u{FFFD}x")
        XCTAssertEqual(try parse(#""\ud83d\u0041""#).string, "\u{FFFD}A", "a high surrogate followed by a non-surrogate escape")
        XCTAssertEqual(try parse(#""\ud83d\ud83d\ude00""#).string, "\u{FFFD}😀")
    }

    // MARK: numbers

    func testNumbers() throws {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", 0), ("7", 7), ("-12", -12), ("123456789012345", 123456789012345),
            ("9007199254740993", 9007199254740992), ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000), ("1E+3", 1000),
            ("2.5e-3", 0.0025), ("-1.0E2", -100), ("1e-400", 0), ("0.1", 0.1), ("1.7976931348623157e308", .greatestFiniteMagnitude),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parse(text).double, expected, text)
        }
        XCTAssertEqual(try parse("42").int, 42)
        XCTAssertEqual(try parse("42.0").int, 42)
        XCTAssertNil(try parse("42.5").int)
        XCTAssertEqual(try parse("17").uint64, 17)
        XCTAssertNil(try parse("-17").uint64)
    }

    // MARK: nesting

    func testNestingUpToTheLimitAndNoDeeper() throws {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        XCTAssertNoThrow(try parse(ok))
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        XCTAssertThrowsError(try parse(deep)) { XCTAssertEqual(($0 as? JSONParseError)?.offset, 512) }
        let hostile = String(repeating: #"{"a":"#, count: 100_000)
        XCTAssertThrowsError(try parse(hostile)) { XCTAssertTrue("\($0)".contains("nested deeper than 512")) }
    }

    // MARK: malformed input

    func testMalformedDocumentsAreRefusedWithTheirOffset() {
        let cases: [(String, Int)] = [
            ("", 0), ("   ", 3), ("nul", 0), ("tru", 0), ("True", 0), ("nulls", 4), ("undefined", 0), ("NaN", 0), ("Infinity", 0),
            ("-", 1), ("-a", 1), ("+1", 0), ("01", 0), ("-01", 0), ("1.", 2), (".5", 0), ("1.e3", 2), ("1e", 2), ("1e+", 3),
            ("0x10", 1), ("1 2", 2), ("1e400", 0), ("-1e400", 0),
            ("\"abc", 0), ("\"a\\", 0), ("\"\\x\"", 1), ("\"\\u12\"", 1), ("\"\\u12G4\"", 1), ("\"\\", 0), ("'a'", 0),
            ("\"a\nb\"", 2), ("\"\t\"", 1), ("\"\u{1}\"", 1),
            ("[", 1), ("[1", 2), ("[1,", 3), ("[1,]", 3), ("[,1]", 1), ("[1 2]", 3), ("]", 0), ("[1]]", 3),
            ("{", 1), ("{\"a\"", 4), ("{\"a\":", 5), ("{\"a\":1", 6), ("{\"a\":1,}", 7), ("{a:1}", 1), ("{\"a\" 1}", 5),
            ("{\"a\":1 \"b\":2}", 7), ("{1:2}", 1), ("{\"a\":1}}", 7), ("{}{}", 2), ("[]x", 2),
        ]
        for (text, offset) in cases {
            XCTAssertThrowsError(try parse(text), "accepted \(text.debugDescription)") { error in
                XCTAssertEqual((error as? JSONParseError)?.offset, offset, "offset for \(text.debugDescription): \(error)")
            }
        }
    }

    func testInvalidUTF8IsRefused() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0x5C, 0x6E, 0xC0, 0xAF, 0x22]] {
            XCTAssertThrowsError(try JSONValue.parse(bytes)) { XCTAssertTrue("\($0)".contains("not valid UTF-8"), "\($0)") }
        }
        XCTAssertThrowsError(try JSONValue.parse([0xEF, 0xBB, 0xBF, 0x31]), "a byte order mark is not JSON")
    }

    func testErrorMessageNamesTheProblem() {
        XCTAssertThrowsError(try parse(#"{"a":1,}"#)) {
            XCTAssertEqual("\($0)", "invalid JSON at byte 7: unexpected '}', expected a string key")
        }
    }

    // MARK: serializer

    func testSerializerIsCompactInOrderAndRoundTrips() throws {
        let text = #"{"z":[1,-2.5,1e-07,true,null],"a":{"s":"q\"\\\n\t\u0001é😀","e":{}},"big":1e+300,"n":-0}"#
        let value = try parse(text)
        XCTAssertEqual(value.jsonText, #"{"z":[1,-2.5,1e-07,true,null],"a":{"s":"q\"\\\n\t\u0001é😀","e":{}},"big":1e+300,"n":0}"#)
        XCTAssertEqual(try parse(value.jsonText), value)
    }

    // MARK: differential against JSONSerialization

    /// Vendor chunks as /work/shared/vendor-apis.md shows them, and more documents.
    static let documents = [
        #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
        #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}"#,
        #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#,
        #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":16,"completion_tokens":1,"total_tokens":17}}"#,
        #"{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Par"}}]},"finish_reason":null}]}"#,
        #"{"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 1,"totalTokenCount": 10}}"#,
        #"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris","days": 3,"units": ["c"]}}}],"role": "model"},"finishReason": "STOP","index": 0}]}"#,
        #"{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}"#,
        #"[0, -0, 1e2, 1.25E-2, 123456789012345678, 0.30000000000000004, -9.5e-300, "\u00e9\ud83d\ude00\/"]"#,
        "{\"ascii\": \"tab\\there\", \"raw\": \"日本語 ✓\", \"empty\": \"\", \"nested\": [[[{}]]]}",
        "  \"a string alone\"  ", "3.14159", "null", "false",
    ]

    func testAgreesWithJSONSerializationOnDocuments() throws {
        for text in Self.documents {
            try assertAgrees(Array(text.utf8))
        }
    }

    func testAgreesWithJSONSerializationOnGeneratedDocuments() throws {
        var random = SeededRandom(seed: 6)
        for _ in 0..<300 {
            let value = random.value(depth: 0)
            try assertAgrees(Array(value.jsonText.utf8))
            XCTAssertEqual(try JSONValue.parse(Array(value.jsonText.utf8)), value, "round trip of \(value.jsonText)")
        }
    }

    /// (Linux's JSONSerialization accepts trailing commas, "[1,]", which RFC 8259 does not: we refuse them.)
    func testRefusesWhatJSONSerializationRefuses() {
        for text in ["01", "[1 2]", "\"\\x\"", "{a:1}", "'a'", "[", "\"a\nb\""] {
            XCTAssertThrowsError(try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed), text)
            XCTAssertThrowsError(try parse(text), text)
        }
    }

    private func assertAgrees(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        let theirs = try JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)
        let ours = try JSONValue.parse(bytes)
        XCTAssertTrue(same(ours, theirs), "differs from JSONSerialization on \(text)", file: file, line: line)
    }

    /// Our value against JSONSerialization's: numbers by value, objects as key sets.
    private func same(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null: return theirs is NSNull
        case .bool(let b): return (theirs as? Bool) == b
        case .number(let d):
            // Linux's JSONSerialization keeps long decimals as NSDecimalNumber, whose doubleValue
            // is off by an ulp or two (0.30000000000000004 gives 0.3000000000000001): compare
            // those by their exact decimal text, correctly rounded.
            if let decimal = theirs as? NSDecimalNumber { return Double(decimal.description) == d }
            return (theirs as? NSNumber).map { $0.doubleValue == d } ?? false
        case .string(let s): return (theirs as? String) == s
        case .array(let elements):
            guard let other = theirs as? [Any], other.count == elements.count else { return false }
            return zip(elements, other).allSatisfy { same($0, $1) }
        case .object(let members):
            guard let other = theirs as? [String: Any], Set(members.map(\.key)) == Set(other.keys) else { return false }
            return other.allSatisfy { key, value in ours[key].map { same($0, value) } ?? false }
        }
    }
}

/// A small deterministic generator of JSON values (SplitMix64), so that failures repeat.
private struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func value(depth: Int) -> JSONValue {
        switch below(depth > 4 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(below(2) == 0)
        case 2:
            let choices: [Double] = [Double(below(1000)) - 500, Double(next() >> 11) / 1024, -1.5e-10, 6.02e23, Double(below(1 << 30))]
            return .number(choices[below(choices.count)])
        case 3, 4: return .string(string())
        case 5: return .array((0..<below(5)).map { _ in value(depth: depth + 1) })
        default: return .object((0..<below(5)).map { i in (key: string() + String(i), value: value(depth: depth + 1)) })
        }
    }

    /// Strings mixing ASCII, characters JSON must escape, and multi-byte characters.
    mutating func string() -> String {
        let pieces = ["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}", "é", "中", "😀", "𝄞", "\u{7F}", "\u{FFFD}"]
        return (0..<below(8)).map { _ in pieces[below(pieces.count)] }.joined()
    }
}
