// The per-request protocol strategy: which content-types pick gRPC or gRPC-Web, the trailers
// frame gRPC-Web ends a body with, base64 text both ways (request bodies in any split and in
// separately padded chunks), and the CORS answers for allowed and other origins.
import NIOCore
@testable import PrismRPC
import XCTest

final class WireProtocolTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    func testContentTypes() {
        XCTAssertEqual(WireProtocol(contentType: "application/grpc"), .grpc)
        XCTAssertEqual(WireProtocol(contentType: "application/grpc+proto"), .grpc)
        XCTAssertEqual(WireProtocol(contentType: "application/grpc-web"), .grpcWeb(text: false))
        XCTAssertEqual(WireProtocol(contentType: "Application/gRPC-Web+proto; charset=utf-8"), .grpcWeb(text: false))
        XCTAssertEqual(WireProtocol(contentType: "application/grpc-web-text"), .grpcWeb(text: true))
        XCTAssertEqual(WireProtocol(contentType: "application/grpc-web-text+proto"), .grpcWeb(text: true))
        XCTAssertEqual(WireProtocol(contentType: "application/proto"), .connectUnary)
        XCTAssertEqual(WireProtocol(contentType: "application/connect+proto"), .connectStream)
        XCTAssertEqual(WireProtocol(contentType: "application/json"), .connectUnary)
        XCTAssertEqual(WireProtocol(contentType: "application/connect+json"), .connectStream)
        XCTAssertTrue(WireProtocol.isJSON(contentType: "application/json; charset=utf-8"))
        XCTAssertFalse(WireProtocol.isJSON(contentType: "application/connect+proto"))
        XCTAssertNil(WireProtocol(contentType: "application/grpc-web+json"), "only the proto codec is served")
        XCTAssertNil(WireProtocol(contentType: "application/grpcx"))
        XCTAssertNil(WireProtocol(contentType: "text/plain"))
        XCTAssertNil(WireProtocol(contentType: ""))
    }

    func testTrailersFrame() {
        let frame = WireProtocol.trailersFrame([("grpc-status", "0"), ("x-a", "b")], allocator: allocator)
        let block = "grpc-status: 0\r\nx-a: b\r\n"
        XCTAssertEqual(Array(frame.readableBytesView), [0x80, 0, 0, 0, UInt8(block.utf8.count)] + Array(block.utf8))
    }

    func testTextEncodingIsBase64PerFlushAndBinaryIsUntouched() {
        let framed = ByteBuffer(bytes: [0, 0, 0, 0, 1, 0x41])
        XCTAssertEqual(String(buffer: WireProtocol.grpcWeb(text: true).encode(framed, allocator: allocator)), "AAAAAAFB")
        XCTAssertEqual(WireProtocol.grpcWeb(text: false).encode(framed, allocator: allocator), framed)
    }

    func testBase64BodyInAnySplitAndInPaddedChunks() throws {
        let body = Array(("QUJD" + "RA==" + "RUY=" + "Rw==").utf8)  // "ABC", "D", "EF", "G": chunks padded apart
        for split in 0...body.count {
            var decoder = Base64BodyDecoder()
            var out = try body[..<split].withUnsafeBytes { try decoder.decode($0) }
            out += try body[split...].withUnsafeBytes { try decoder.decode($0) }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "ABCDEFG", "split at \(split)")
            XCTAssertTrue(decoder.isComplete)
        }
        var cut = Base64BodyDecoder()
        _ = try Array("QUJDR".utf8).withUnsafeBytes { try cut.decode($0) }
        XCTAssertFalse(cut.isComplete, "a body that ends inside a group is cut short")
        var bad = Base64BodyDecoder()
        XCTAssertThrowsError(try Array("QU*D".utf8).withUnsafeBytes { try bad.decode($0) })
    }

    func testCORSAnswersAllowedOriginsOnly() throws {
        let policy = CORSPolicy(allowedOrigins: ["https://app.example"])
        XCTAssertEqual(policy.responseHeaders(origin: "https://app.example").first { $0.0 == "access-control-allow-origin" }?.1,
                       "https://app.example")
        XCTAssertTrue(policy.responseHeaders(origin: "https://app.example.evil").isEmpty)
        XCTAssertTrue(policy.responseHeaders(origin: nil).isEmpty)
        XCTAssertNil(policy.preflightHeaders(origin: "http://app.example"), "the scheme is part of the origin")
        let preflight = try XCTUnwrap(policy.preflightHeaders(origin: "https://app.example"))
        XCTAssertTrue(preflight.contains { $0.0 == "access-control-allow-headers" && $0.1.contains("x-grpc-web") })
        XCTAssertNotNil(CORSPolicy(allowedOrigins: ["*"]).preflightHeaders(origin: "https://any.example"))
    }

    func testConnectErrorsAndTimeouts() {
        XCTAssertEqual(ConnectProtocol.errorBody(Status(.cancelled, "")), #"{"code":"canceled"}"#)
        XCTAssertEqual(ConnectProtocol.errorBody(Status(.invalidArgument, "say \"hi\"\n\u{1}é")),
                       #"{"code":"invalid_argument","message":"say \"hi\"\n\u0001é"}"#)
        XCTAssertEqual([StatusCode.unauthenticated, .permissionDenied, .notFound, .resourceExhausted, .unimplemented,
                        .unavailable, .deadlineExceeded, .failedPrecondition, .cancelled].map(ConnectProtocol.httpStatus),
                       [401, 403, 404, 429, 501, 503, 504, 400, 499])
        XCTAssertEqual(ConnectProtocol.parseTimeout("1500"), .milliseconds(1500))
        XCTAssertNil(ConnectProtocol.parseTimeout("-1"))
        XCTAssertNil(ConnectProtocol.parseTimeout("12345678901"), "at most 10 digits")
        XCTAssertNil(ConnectProtocol.parseTimeout(""))
    }

    func testConnectEndStreamEnvelope() {
        func json(_ frame: ByteBuffer) -> String {
            XCTAssertEqual(frame.getInteger(at: frame.readerIndex, as: UInt8.self), 0x02)
            XCTAssertEqual(frame.getInteger(at: frame.readerIndex + 1, as: UInt32.self).map(Int.init), frame.readableBytes - 5)
            return String(decoding: frame.readableBytesView.dropFirst(5), as: UTF8.self)
        }
        XCTAssertEqual(json(ConnectProtocol.endStreamFrame(Status(.ok), trailers: Metadata(), allocator: allocator)), "{}")
        var trailers = Metadata()
        trailers.add("x-a", "1")
        trailers.add("x-a", "2")
        XCTAssertEqual(json(ConnectProtocol.endStreamFrame(Status(.notFound, "no"), trailers: trailers, allocator: allocator)),
                       #"{"error":{"code":"not_found","message":"no"},"metadata":{"x-a":["1","2"]}}"#)
    }
}
