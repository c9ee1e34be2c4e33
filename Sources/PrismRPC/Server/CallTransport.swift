// What a call needs from the connection it arrived on, so one call runtime (ServerStream and
// the dispatch in CallDispatch.swift) serves HTTP/2 (nghttp2) and HTTP/1.1 (NIOHTTP1) alike.
import Logging
import NIOCore

/// A server connection that carries calls. Implemented by `HTTP2ServerConnection` and
/// `HTTP1ServerConnection`; every method is called on the connection's event loop.
protocol CallTransport: AnyObject {
    var router: Router { get }
    var configuration: ServerConfiguration { get }
    var logger: Logger { get }
    /// Usable from any thread (handler tasks frame their messages with it).
    var allocator: ByteBufferAllocator { get }
    /// The server's count of running handler tasks, which shutdown waits for.
    var handlerTasks: HandlerTasks { get }
    var peerDescription: String { get }
    var eventLoop: EventLoop { get }
    /// Whether responses can end with HTTP trailers. Native gRPC needs them; HTTP/1.1 (as
    /// browsers and most proxies speak it) does not have them, so it carries gRPC-Web only.
    var carriesTrailers: Bool { get }

    /// Sends the response head of `stream`; with `endStream` it is the whole response.
    /// Otherwise the body follows from `stream.outbound` until `stream.pendingEnd`.
    func sendHeaders(_ stream: ServerStream, _ headers: HeaderBlock, endStream: Bool)
    /// `stream.outbound` (or its end) has something new to send.
    func resumeData(_ stream: ServerStream)
    /// Writes what is ready at the end of the current event-loop tick.
    func scheduleFlush()
}
