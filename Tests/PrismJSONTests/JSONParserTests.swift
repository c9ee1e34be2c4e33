// JSONParser's walking reader: members picked by key bytes (escaped keys included), values of
// the wrong kind skipped, and skipping held to exactly the rules of JSONValue.parse: the same
// documents accepted, the same error at the same byte for everything refused.
import Foundation
import PrismJSON
import XCTest

final class JSONParserTests: XCTestCase {
    private let chunk = #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"obfuscation":"ab\u00e9"}"#

    func testMembersArePickedByKeyAndTheRestSkipped() throws {
        var seen: [String] = []
        var content: String?
        try JSONParser.read(Array(chunk.utf8)) { p in
            XCTAssertEqual(p.nextKind, .object)
            try p.readObject { key, p in
                seen.append(key.string)
                guard key == "choices" else { return }  // left unread: skipped
                try p.readArray { p in
                    try p.readObject { key, p in
                        if key == "delta" { try p.readObject { key, p in if key == "content" { content = try p.readString() } } }
                    }
                }
            }
        }
        XCTAssertEqual(seen, ["id", "object", "created", "model", "choices", "obfuscation"])
        XCTAssertEqual(content, "Hi")
    }

    func testEscapedAndNonASCIIKeysCompareByTheirText() throws {
        var matched: [String] = []
        try JSONParser.read(Array(#"{"\u0063ontent":1,"cont\"ent":2,"clé":3,"":4,"con":5,"contents":6}"#.utf8)) { p in
            try p.readObject { key, _ in
                switch key {
                case "content": matched.append("content")
                case "clé": matched.append("clé")
                case "": matched.append("empty")
                default: matched.append("other " + key.string)
                }
            }
        }
        XCTAssertEqual(matched, ["content", "other cont\"ent", "clé", "empty", "other con", "other contents"])
    }

    func testValuesOfAnotherKindAreSkippedNotRefused() throws {
        let kinds = try JSONParser.read(Array(#"[1, "s", [2], {"a": 3}, true, null]"#.utf8)) { p -> [String] in
            var out: [String] = []
            try p.readArray { p in
                switch p.nextKind {
                case .number: out.append(try p.readString() ?? "not a string")
                case .string: out.append(try p.readObject { _, _ in } ? "object" : "not an object")
                case .array: out.append(try p.readObject { _, _ in } ? "object" : "not an object")
                case .object: out.append(try p.readArray { _ in } ? "array" : "not an array")
                default: out.append("\(try p.readValue())")
                }
            }
            return out
        }
        XCTAssertEqual(kinds, ["not a string", "not an object", "not an object", "not an array", "bool(true)", "null"])
    }

    func testNumberTextIsTheSourceTextCheckedAsANumber() throws {
        let texts = try JSONParser.read(Array(#"[18446744073709551615, -0.5e+3, "7"]"#.utf8)) { p -> [String?] in
            var out: [String?] = []
            try p.readArray { p in out.append(try p.readNumberText()) }
            return out
        }
        XCTAssertEqual(texts, ["18446744073709551615", "-0.5e+3", nil])
        XCTAssertThrowsError(try JSONParser.read(Array("01".utf8)) { try $0.readNumberText() })
    }

    func testAValueLeftUnreadAtTheTopIsStillChecked() {
        XCTAssertNoThrow(try JSONParser.read(Array(chunk.utf8)) { _ in })
        XCTAssertThrowsError(try JSONParser.read(Array(#"{"a":[1,]}"#.utf8)) { _ in }) {
            XCTAssertEqual(($0 as? JSONParseError)?.offset, 8)
        }
        XCTAssertThrowsError(try JSONParser.read(Array("{} 1".utf8)) { _ in }, "a second document")
    }

    // MARK: skipping is as strict as parsing

    func testSkippingAgreesWithParsingOnTheTestDocuments() {
        var texts = JSONValueTests.documents + [chunk]
        texts += ["", "   ", "nul", "01", "-", "1.", "1e", "1e400", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"a\nb\"", "[1,]", "{\"a\":1,}",
                  "{a:1}", "{1:2}", "[]x", "\"\\ud83d\\u12\"", "\"\\ud83d\\uZZZZ\"", "{\"\\u00\":1}", "{\"a\\q\":1}"]
        for text in texts { assertSameOutcome(Array(text.utf8)) }
        assertSameOutcome(Array(repeating: UInt8(ascii: "["), count: 600) + Array(repeating: UInt8(ascii: "]"), count: 600))
    }

    /// Every document of the tests with one byte changed, to a byte that matters to the grammar
    /// or to UTF-8, at every position: skipping and parsing refuse the same ones at the same byte.
    func testSkippingAgreesWithParsingOnMutatedDocuments() {
        let replacements: [UInt8] = [0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D, 0x2C, 0x3A, 0x30, 0x2D, 0x65, 0x75, 0x0A, 0x01, 0x80, 0xC3, 0xED, 0xF4, 0xFF]
        for text in JSONValueTests.documents + [chunk] {
            let bytes = Array(text.utf8)
            for position in bytes.indices {
                for replacement in replacements where replacement != bytes[position] {
                    var mutated = bytes
                    mutated[position] = replacement
                    assertSameOutcome(mutated)
                }
            }
        }
    }

    /// Strings of random bytes: skipping checks UTF-8 as strictly as decoding does.
    func testSkippingChecksUTF8LikeParsing() {
        var state: UInt64 = 7
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let pool: [UInt8] = [0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
        var refused = 0
        for _ in 0..<4000 {
            let content = (0..<(Int(next()) % 6 + 1)).map { _ in pool[Int(next()) % pool.count] }
            let document = [0x22] + content + [0x22]
            assertSameOutcome(document)
            if (try? JSONValue.parse(document)) == nil { refused += 1 }
            XCTAssertEqual((try? JSONValue.parse(document)) != nil, String(validating: content, as: UTF8.self) != nil, "\(content)")
        }
        XCTAssertGreaterThan(refused, 100, "the generator makes invalid UTF-8 too")
    }

    /// The eight-bytes-at-a-time scan of strings: every byte value at every place of a string
    /// long enough for several words (and a tail) is found exactly where the byte loop finds it.
    func testEveryByteIsJudgedAtEveryPlaceOfALongString() {
        for place in 0..<19 {
            for value in 0...255 {
                let c = UInt8(value)
                var content = [UInt8](repeating: UInt8(ascii: "a"), count: 19)
                content[place] = c
                let outcome = Result { try JSONValue.parse([0x22] + content + [0x22]) }
                let what = "byte 0x\(String(c, radix: 16)) at \(place)"
                switch c {
                case UInt8(ascii: "\""):  // the string ends early: what follows is after the document
                    XCTAssertEqual((outcome.error as? JSONParseError)?.offset, place + 2, what)
                case UInt8(ascii: "\\"):  // "\a" is no escape; last, it escapes the closing quote
                    XCTAssertEqual((outcome.error as? JSONParseError)?.offset, place == 18 ? 0 : place + 1, what)
                case 0..<0x20:
                    XCTAssertEqual((outcome.error as? JSONParseError)?.offset, place + 1, what)
                case 0x80...:  // a lone non-ASCII byte is not UTF-8; refused at the string
                    XCTAssertEqual((outcome.error as? JSONParseError)?.offset, 0, what)
                default:
                    XCTAssertEqual(try? outcome.get(), .string(String(decoding: content, as: UTF8.self)), what)
                }
            }
        }
    }

    private func assertSameOutcome(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let parsed = Result { try JSONValue.parse(bytes) }
        let skipped = Result { try JSONParser.read(bytes) { try $0.skipValue() } }
        switch (parsed, skipped) {
        case (.success, .success): break
        case (.failure(let a), .failure(let b)):
            XCTAssertEqual(a as? JSONParseError, b as? JSONParseError, "\(String(decoding: bytes, as: UTF8.self).debugDescription)", file: file, line: line)
        default:
            XCTFail("parse \(parsed), skip \(skipped) on \(String(decoding: bytes, as: UTF8.self).debugDescription)", file: file, line: line)
        }
    }
}

private extension Result {
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
