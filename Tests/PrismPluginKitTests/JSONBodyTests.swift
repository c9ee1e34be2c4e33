// JSONBody: bodies with base64 media spliced in must be byte for byte what JSONSerialization
// makes of the same object with the base64 strings in place, whatever the order of the media;
// and what it makes of any object must mean what JSONSerialization's text means.
import Foundation
import PrismJSON
import PrismPluginKit
import XCTest

final class JSONBodyTests: XCTestCase {
    func testSplicedBodyEqualsThePlainSerialization() throws {
        let first = Data((0..<1000).map { UInt8($0 % 256) })  // every byte value: '+' and '/' in the base64
        let second = Data("a second medium".utf8)
        let tenth = Data([0xFF, 0xFE])
        var body = JSONBody()
        var media: [String] = []
        for data in [first, second] + Array(repeating: Data([1]), count: 8) + [tenth] { media.append(body.base64(of: data)) }
        // Keys sorted: "b…" before "m…" puts the eleventh medium first in the text (and twice).
        let object: [String: Any] = ["messages": media.map { ["data": $0, "text": "prism-base64- looks alike"] }, "b": media[10]]
        let plain: [String: Any] = ["messages": ([first, second] + Array(repeating: Data([1]), count: 8) + [tenth]).map {
            ["data": $0.base64EncodedString(), "text": "prism-base64- looks alike"]
        }, "b": tenth.base64EncodedString()]
        let spliced = try body.serialize(object)
        XCTAssertEqual(String(decoding: spliced, as: UTF8.self),
                       String(decoding: try JSONSerialization.data(withJSONObject: plain, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
    }

    /// A placeholder ending a string (a data URL) keeps the text before it.
    func testPlaceholderEndingADataURL() throws {
        var body = JSONBody()
        let png = Data([0x89, 0x50, 0x4E, 0x47])
        let url = "data:image/png;base64," + body.base64(of: png)
        let text = String(decoding: try body.serialize(["image_url": ["url": url], "note": "prism-base64-9"]), as: UTF8.self)
        XCTAssertEqual(text, #"{"image_url":{"url":"data:image/png;base64,iVBORw=="},"note":"prism-base64-9"}"#)
    }

    func testWithoutMediaItIsThePlainSerialization() throws {
        let object: [String: Any] = ["z": 1, "a": ["x/y", true]]
        XCTAssertEqual(try JSONBody().serialize(object), try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Everything a plugin puts in a body: Swift values, a schema parsed by JSONSerialization
    /// (NSNumbers, booleans among them), escapes, non-ASCII text, nesting; booleans stay
    /// booleans and numbers numbers.
    func testAnyObjectMeansWhatJSONSerializationWrites() throws {
        let schema = try JSONSerialization.jsonObject(with: Data(#"""
            {"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":2.5}},"additionalProperties":false,"required":["n"]}
            """#.utf8))
        let object: [String: Any] = [
            "model": "gpt-4o-mini", "stream": true, "max_tokens": 1024, "temperature": Double(Float(0.7)),
            "messages": [["role": "user", "content": "quote \" backslash \\ tab \t nul \u{0} é 𝄞 a/b"]],
            "tools": [["type": "function", "function": ["name": "f", "parameters": schema]]],
            "stop": NSNull(), "empty": [String: Any](), "none": [Any](), "big": UInt64.max, "negative": -3, "small": Int32(7),
        ]
        let ours = try JSONBody().serialize(object)
        let theirs = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        XCTAssertEqual(try JSONValue.parse([UInt8](ours)), try JSONValue.parse([UInt8](theirs)), String(decoding: ours, as: UTF8.self))
        let text = String(decoding: ours, as: UTF8.self)
        XCTAssertTrue(text.contains(#""additionalProperties":false"#), text)
        XCTAssertTrue(text.contains(#""stream":true"#), text)
        XCTAssertTrue(text.contains("𝄞 a/b\""), "slashes are not escaped: \(text)")
        XCTAssertThrowsError(try JSONBody().serialize(["t": Double.infinity]))
    }
}
