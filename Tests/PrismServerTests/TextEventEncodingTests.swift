// Generate's text events, written by hand on the hot path, against protobuf-c: the same bytes for
// every length around the varint boundaries, multi-byte text and the empty text; a text with a
// NUL is left to protobuf-c.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
@testable import PrismServer
import XCTest

final class TextEventEncodingTests: XCTestCase {
    /// GenerateEvent{text: TextDelta{text}} as protobuf-c packs it.
    private func protobufC(_ text: String) -> [UInt8] {
        let b = ProtoBuilder()
        let e = b.message(prism__v1__generate_event__init)
        let t = b.message(prism__v1__text_delta__init)
        t.pointee.text = b.string(text)
        e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_TEXT
        e.pointee.text = t
        return b.pack(e)
    }

    func testTheSameBytesAsProtobufC() throws {
        var texts = ["", "a", "tok12 ", "héllo 世界 😀"]
        for length in [124, 125, 126, 127, 128, 129, 16_380, 16_383, 16_384, 100_000] {
            texts.append(String(repeating: "x", count: length))
        }
        for text in texts {
            let size = try XCTUnwrap(GenerateService.textEventSize(text))
            var buffer = ByteBuffer()
            GenerateService.writeTextEvent(text, into: &buffer)
            let ours = Array(buffer.readableBytesView)
            XCTAssertEqual(ours.count, size, "announced size for \(text.utf8.count) bytes")
            XCTAssertEqual(ours, protobufC(text), "\(text.utf8.count) bytes")
            XCTAssertEqual(Array(GenerateService.encode(.event(.text(text))).readableBytesView), ours)
        }
    }

    func testATextWithANULTakesProtobufC() {
        XCTAssertNil(GenerateService.textEventSize("a\u{0}b"))
        XCTAssertEqual(Array(GenerateService.encode(.event(.text("a\u{0}b"))).readableBytesView), protobufC("a\u{0}b"))
    }
}
