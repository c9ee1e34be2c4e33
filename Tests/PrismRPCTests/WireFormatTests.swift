// Unit checks of the gRPC wire details that the interop suite only reaches indirectly:
// message framing in arbitrary splits, size limits before allocation, gzip bombs,
// grpc-message percent-encoding, -bin metadata and grpc-timeout parsing.
import NIOCore
@testable import PrismRPC
import XCTest

final class WireFormatTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    func testDeframerReassemblesMessagesSplitAnywhere() throws {
        var wire = ByteBuffer()
        for text in ["a", "", "hello world", String(repeating: "z", count: 70_000)] {
            var framed = MessageFramer.frame(ByteBuffer(string: text), encoding: .identity, allocator: allocator)
            wire.writeBuffer(&framed)
        }
        let bytes = Array(wire.readableBytesView)
        for chunk in [1, 3, 7, 4096] {
            var deframer = MessageDeframer(maxMessageBytes: 1 << 20, encoding: .identity)
            var lengths: [Int] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                bytes[offset..<end].withUnsafeBytes { deframer.append($0, allocator: allocator) }
                offset = end
                while let message = try deframer.next(allocator: allocator) { lengths.append(message.readableBytes) }
            }
            XCTAssertEqual(lengths, [1, 0, 11, 70_000], "chunk size \(chunk)")
            XCTAssertNoThrow(try deframer.checkComplete())
        }
    }

    func testDeclaredLengthOverLimitIsRefusedBeforeBuffering() {
        var deframer = MessageDeframer(maxMessageBytes: 1000, encoding: .identity)
        ([0, 0xFF, 0xFF, 0xFF, 0xFF] as [UInt8]).withUnsafeBytes { deframer.append($0, allocator: allocator) }
        XCTAssertThrowsError(try deframer.next(allocator: allocator)) { error in
            XCTAssertEqual((error as? RPCError)?.code, .resourceExhausted)
        }
    }

    func testTruncatedMessageIsReportedAtEndOfStream() {
        var deframer = MessageDeframer(maxMessageBytes: 1000, encoding: .identity)
        ([0, 0, 0] as [UInt8]).withUnsafeBytes { deframer.append($0, allocator: allocator) }
        XCTAssertNil(try deframer.next(allocator: allocator))
        XCTAssertThrowsError(try deframer.checkComplete())
    }

    func testGzipRoundTripAndBombIsStopped() throws {
        let plain = ByteBuffer(string: String(repeating: "prism ", count: 10_000))
        let framed = MessageFramer.frame(plain, encoding: .gzip, allocator: allocator)
        XCTAssertLessThan(framed.readableBytes, plain.readableBytes / 10)
        var deframer = MessageDeframer(maxMessageBytes: 1 << 20, encoding: .gzip)
        deframer.append(framed)
        XCTAssertEqual(try deframer.next(allocator: allocator), plain)

        // 8 MiB of zeros compress to a few KiB; a 1 MiB limit must stop the inflation.
        let bomb = MessageFramer.frame(ByteBuffer(repeating: 0, count: 8 << 20), encoding: .gzip, allocator: allocator)
        var small = MessageDeframer(maxMessageBytes: 1 << 20, encoding: .gzip)
        small.append(bomb)
        XCTAssertThrowsError(try small.next(allocator: allocator)) { error in
            XCTAssertEqual((error as? RPCError)?.code, .resourceExhausted)
        }
    }

    func testCompressedFlagWithoutEncodingIsAnError() {
        var deframer = MessageDeframer(maxMessageBytes: 1000, encoding: .identity)
        ([1, 0, 0, 0, 1, 0x41] as [UInt8]).withUnsafeBytes { deframer.append($0, allocator: allocator) }
        XCTAssertThrowsError(try deframer.next(allocator: allocator)) { error in
            XCTAssertEqual((error as? RPCError)?.code, .internal)
        }
    }

    func testPercentEncodingRoundTrip() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n 100%"
        let encoded = PercentEncoding.encode(message)
        XCTAssertTrue(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
        XCTAssertEqual(PercentEncoding.decode(encoded), message)
        XCTAssertEqual(PercentEncoding.decode("bad %zz and %4"), "bad %zz and %4")
    }

    func testBinaryMetadataIsBase64OnTheWire() {
        var metadata = Metadata()
        metadata.add("x-trace-bin", binary: [0, 1, 2, 0xFE, 0xFF])
        metadata.add("x-plain", "value")
        let wire = metadata.wireHeaders()
        XCTAssertEqual(wire.first { $0.0 == "x-trace-bin" }?.1, "AAEC/v8=")
        let back = Metadata.fromWire(wire + [(":path", "/a/b"), ("grpc-timeout", "1S")])
        XCTAssertEqual(back.binary("x-trace-bin"), [0, 1, 2, 0xFE, 0xFF])
        XCTAssertEqual(back["x-plain"], "value")
        XCTAssertNil(back["grpc-timeout"], "reserved headers are not user metadata")
        XCTAssertEqual(Base64.decode("AAEC_v8"), [0, 1, 2, 0xFE, 0xFF], "url-safe, unpadded input is accepted")
    }

    func testGRPCTimeoutParsing() {
        XCTAssertEqual(GRPCTimeout.parse("100m"), .milliseconds(100))
        XCTAssertEqual(GRPCTimeout.parse("2S"), .seconds(2))
        XCTAssertEqual(GRPCTimeout.parse("1H"), .hours(1))
        XCTAssertEqual(GRPCTimeout.parse("99999999n"), .nanoseconds(99_999_999))
        XCTAssertNil(GRPCTimeout.parse("123456789S"), "more than 8 digits")
        XCTAssertNil(GRPCTimeout.parse("10x"))
        XCTAssertNil(GRPCTimeout.parse("S"))
        XCTAssertEqual(GRPCTimeout.parse(GRPCTimeout.encode(.milliseconds(1500))), .milliseconds(1500))
    }
}
