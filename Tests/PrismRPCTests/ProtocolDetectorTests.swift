// The first handler of a connection, alone on an EmbeddedChannel: which protocol it picks from
// the first bytes (in any split) or from ALPN, that the bytes it read reach the installed
// handlers intact, and that it leaves the pipeline once it has decided.
import NIOCore
import NIOEmbedded
@testable import PrismRPC
import XCTest

final class ProtocolDetectorTests: XCTestCase {
    /// Collects what reaches the handler installed after the detector.
    private final class Sink: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = ByteBuffer()
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
        }
    }

    private func channel(_ decided: @escaping (ProtocolDetectorHandler.HTTPVersion) -> Void, sink: Sink) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ProtocolDetectorHandler(idleTimeout: .minutes(1)) { _, version in
            decided(version)
            return [sink]
        })
        return channel
    }

    func testRequestLineMeansHTTP1AtTheFirstDifferingByte() throws {
        var versions: [ProtocolDetectorHandler.HTTPVersion] = []
        let sink = Sink()
        let channel = try channel({ versions.append($0) }, sink: sink)
        // "P" could still be the preface; "PO" cannot.
        try channel.writeInbound(ByteBuffer(string: "P"))
        XCTAssertTrue(versions.isEmpty)
        try channel.writeInbound(ByteBuffer(string: "OST / HTTP/1.1\r\n"))
        XCTAssertEqual(versions, [.http1])
        XCTAssertEqual(String(buffer: sink.received), "POST / HTTP/1.1\r\n")
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: ProtocolDetectorHandler.self))
        _ = try channel.finish()
    }

    func testPrefaceInPiecesMeansHTTP2() throws {
        var versions: [ProtocolDetectorHandler.HTTPVersion] = []
        let sink = Sink()
        let channel = try channel({ versions.append($0) }, sink: sink)
        let preface = ProtocolDetectorHandler.http2Preface
        for byte in preface.dropLast() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        XCTAssertTrue(versions.isEmpty, "undecided until the whole preface has arrived")
        try channel.writeInbound(ByteBuffer(bytes: [preface.last!, 0, 0, 0]))
        XCTAssertEqual(versions, [.http2])
        XCTAssertEqual(Array(sink.received.readableBytesView), preface + [0, 0, 0])
        _ = try channel.finish()
    }

    func testALPNDecidesBeforeAnyByte() throws {
        for (alpn, expected) in [("h2", ProtocolDetectorHandler.HTTPVersion.http2), ("http/1.1", .http1)] {
            var versions: [ProtocolDetectorHandler.HTTPVersion] = []
            let channel = try channel({ versions.append($0) }, sink: Sink())
            channel.pipeline.fireUserInboundEventTriggered(TLSHandshakeCompleted(applicationProtocol: alpn))
            XCTAssertEqual(versions, [expected], alpn)
            _ = try channel.finish()
        }
    }

    func testShutdownClosesAnUndecidedConnection() throws {
        let channel = try channel({ _ in XCTFail("nothing was sent, nothing to decide") }, sink: Sink())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertTrue(channel.isActive)
        channel.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent())
        XCTAssertFalse(channel.isActive)
    }
}
