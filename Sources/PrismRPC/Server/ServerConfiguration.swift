// The server's tunables, with defaults chosen for a gateway: each limit says why its number.
import NIOCore

public struct ServerConfiguration: Sendable {
    /// Where to listen.
    public var host = "127.0.0.1"
    public var port = 50051
    /// TLS; nil serves plaintext h2c (prior knowledge).
    public var tls: TLSConfiguration?

    /// Largest request message accepted, after decompression. 64 MiB holds a long PDF or a
    /// minute of raw audio in one message; larger media should be streamed in chunks.
    public var maxReceiveMessageBytes = 64 << 20
    /// Concurrent streams a client may open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams: UInt32 = 256
    /// Open connections across the server; more are closed at accept.
    public var maxConnections = 10_000
    /// Total size of one request's header block (names + values + 32 per field, RFC 9113).
    public var maxHeaderListBytes = 16 << 10
    /// Unsent response bytes one stream may hold before its writer waits. 1 MiB keeps a fast
    /// stream busy across a 1 MiB window while bounding what a stalled reader costs.
    public var perStreamBufferBytes = 1 << 20
    /// Request bytes one stream may hold unread by its handler before flow control pushes back.
    public var perStreamInboundBytes = 4 << 20
    /// HTTP/2 flow-control windows we grant the client.
    public var initialStreamWindow: UInt32 = 1 << 20
    public var connectionWindow: Int32 = 16 << 20
    /// A connection with no open streams for this long is closed with GOAWAY.
    public var idleTimeout: TimeAmount = .minutes(5)
    /// PING an otherwise quiet connection this often; close it if no ACK within the timeout.
    public var keepaliveInterval: TimeAmount = .minutes(2)
    public var keepaliveTimeout: TimeAmount = .seconds(20)
    /// On shutdown, calls in flight get this long to finish before connections are closed.
    public var shutdownGracePeriod: TimeAmount = .seconds(10)
    /// Compress response messages with gzip when the client accepts it. Off by default:
    /// most of Prism's responses are small deltas where gzip costs more than it saves.
    /// A handler can decide per call with `ServerCallContext.setResponseCompression`.
    public var compressResponses = false
    /// Browser origins allowed to call cross-origin (gRPC-Web over HTTP/1.1 or HTTP/2).
    public var cors = CORSPolicy()
    /// Largest HTTP/1.1 request body that is not a call (a page, a preflight): they need none.
    public var maxPlainRequestBodyBytes = 64 << 10
    /// Event loops (threads) serving connections; one per core by default.
    public var eventLoopThreads = System.coreCount

    public init() {}
}
