// The plugin-side protobuf encoder: nested messages written in place, with one-byte and
// multi-byte length prefixes, byte for byte what protobuf's wire format says.
import XCTest

@testable import PrismPluginKit

final class ProtoWriterTests: XCTestCase {
    func testShortTextEvent() {
        var w = ProtoWriter(capacity: 16)
        w.message(1) { $0.string(1, "Hi") }
        XCTAssertEqual(w.bytes, [0x0A, 0x04, 0x0A, 0x02, 0x48, 0x69])
    }

    func testLongNestedMessageGetsAVarintLength() {
        let text = String(repeating: "é", count: 100)  // 200 UTF-8 bytes
        var w = ProtoWriter()
        w.uint(7, 1)
        w.message(1) { $0.string(1, text); $0.message(2) { _ in } }
        // Inner: tag 0x0A, length 200 = [0xC8, 0x01], 200 bytes; then tag 0x12, length 0. Total 205.
        XCTAssertEqual(Array(w.bytes.prefix(6)), [0x38, 0x01, 0x0A, 0xCD, 0x01, 0x0A])
        XCTAssertEqual(Array(w.bytes[6..<8]), [0xC8, 0x01])
        XCTAssertEqual(Array(w.bytes[8..<208]), Array(text.utf8))
        XCTAssertEqual(Array(w.bytes[208...]), [0x12, 0x00])
    }

    func testEmptyStringsAreSkippedButEmptyMessagesWritten() {
        var w = ProtoWriter()
        w.message(5) { $0.string(1, "") }
        XCTAssertEqual(w.bytes, [0x2A, 0x00])
    }
}
