// A server connection's handler is freed once its channel closes: a handler that keeps its
// ChannelHandlerContext after removal makes a cycle (the context holds the handler) and leaks
// every connection. The connection fuzz target found it for HTTP/1.1 under LeakSanitizer.
import Logging
import NIOCore
import NIOEmbedded
@testable import PrismRPC
import XCTest

final class ConnectionLifetimeTests: XCTestCase {
    private func connection(_ request: String) throws -> (EmbeddedChannel, ChannelHandler) {
        var router = Router()
        router.page("/healthz") { HTTPPage(body: "ok\n") }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RPCServer.protocolDetector(
            router: router, configuration: ServerConfiguration(), logger: Logger(label: "test"), handlerTasks: HandlerTasks()))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: request))
        channel.embeddedEventLoop.run()
        return (channel, try channel.pipeline.syncOperations.handler(type: HTTP1ServerConnection.self))
    }

    func testHTTP1ConnectionIsFreedAfterItsChannelCloses() throws {
        weak var freed: ChannelHandler?
        try {
            let (channel, handler) = try connection("GET /healthz HTTP/1.1\r\nhost: a\r\n\r\nHEAD /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
            freed = handler
            XCTAssertNotNil(try channel.readOutbound(as: ByteBuffer.self), "the page was answered")
            _ = try channel.finish(acceptAlreadyClosed: true)
            channel.embeddedEventLoop.advanceTime(by: .hours(1))
        }()
        XCTAssertNil(freed, "the HTTP/1.1 connection outlived its channel")
    }
}
