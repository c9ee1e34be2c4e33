// JSONBody: bodies with base64 media spliced in must be byte for byte what JSONSerialization
// makes of the same object with the base64 strings in place, whatever the order of the media.
import Foundation
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

    func testWithoutMediaItIsThePlainSerialization() throws {
        let object: [String: Any] = ["z": 1, "a": ["x/y", true]]
        XCTAssertEqual(try JSONBody().serialize(object), try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
