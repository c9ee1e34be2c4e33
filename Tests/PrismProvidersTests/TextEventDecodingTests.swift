// The plugin host's fast decode of a text event against protobuf-c's: the same event for every
// text a plugin can send, and nothing decoded by hand that protobuf-c should judge.
import Foundation
import PrismProto
@testable import PrismProviders
import XCTest

final class TextEventDecodingTests: XCTestCase {
    private func packed(_ build: (ProtoBuilder, UnsafeMutablePointer<Prism__Plugin__V1__ProviderEvent>) -> Void) -> [UInt8] {
        let b = ProtoBuilder()
        let e = b.message(prism__plugin__v1__provider_event__init)
        build(b, e)
        return b.pack(e)
    }

    private func textEvent(_ text: String) -> [UInt8] {
        packed { b, e in
            let t = b.message(prism__plugin__v1__text_delta__init)
            t.pointee.text = b.string(text)
            e.pointee.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT
            e.pointee.text = t
        }
    }

    private func fast(_ bytes: [UInt8]) -> ProviderEvent? { bytes.withUnsafeBytes { PluginCall.textEvent($0) } }
    private func full(_ bytes: [UInt8]) -> ProviderEvent? { bytes.withUnsafeBytes { ProviderEvent(serialized: $0) } }

    func testTextEventsDecodeAsProtobufCDecodesThem() {
        for text in ["", "a", "tok12 ", "héllo 世界 😀", String(repeating: "y", count: 127), String(repeating: "y", count: 128),
                     String(repeating: "z", count: 70_000)] {
            let bytes = textEvent(text)
            XCTAssertEqual(fast(bytes), .text(text), "\(text.utf8.count) bytes")
            XCTAssertEqual(fast(bytes), full(bytes))
        }
    }

    func testAnythingElseIsLeftToProtobufC() {
        let usage = packed { b, e in
            let u = b.message(prism__plugin__v1__usage__init)
            u.pointee.input_tokens = 3
            e.pointee.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_USAGE
            e.pointee.usage = u
        }
        XCTAssertNil(fast(usage))
        let hi = textEvent("hi")
        XCTAssertNil(fast(Array(hi.dropLast())), "truncated")
        XCTAssertNil(fast(hi + [0x08, 0x01]), "a field after the text")
        XCTAssertNil(fast([0x0A, 0x03, 0x0A, 0x01, 0xFF]), "not UTF-8")
        XCTAssertNil(fast([0x0A, 0x04, 0x0A, 0x02, 0x61, 0x00]), "a NUL")
        XCTAssertNil(fast([]))
    }
}
