// The client side of one HTTP/2 connection (for the CLI and tests): opens a stream per call,
// sends its request body from the call's queue, and routes response frames back to it.
import CNGHTTP2
import NIOCore

// Not Sendable: lives on its channel's event loop; RPCClient and its calls hold it in a NIOLoopBound.
final class HTTP2ClientConnection: ChannelInboundHandler, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let eventLoop: EventLoop
    private(set) var session: NGHTTP2Session!
    private var context: ChannelHandlerContext?
    private var calls: [Int32: ClientCall] = [:]
    private var headers: [Int32: [(String, String)]] = [:]
    private var failure: Status?
    let allocator = ByteBufferAllocator()

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session = NGHTTP2Session(server: false, delegate: self, settings: NGHTTP2Session.Settings())
        flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(Status(.unavailable, "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(Status(.unavailable, "connection failed: \(error)"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let rc = session.receive(unwrapInboundIn(data))
        if rc < 0 {
            fail(Status(.internal, "HTTP/2 error: \(NGHTTP2Session.errorString(rc))"))
            context.close(promise: nil)
            return
        }
        flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
    }

    func flush() {
        guard let context, context.channel.isWritable else { return }
        var out = context.channel.allocator.buffer(capacity: 0)
        _ = session.drain(into: &out)
        if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
    }

    /// Opens a stream for `call`. On the event loop.
    func start(_ call: ClientCall, authority: String, metadata: Metadata, timeout: TimeAmount?) {
        eventLoop.preconditionInEventLoop()
        if let failure {
            call.complete(failure, trailers: Metadata())
            return
        }
        var fields = [(":method", "POST"), (":scheme", "http"), (":path", call.path), (":authority", authority),
                      ("content-type", "application/grpc"), ("te", "trailers"),
                      ("grpc-accept-encoding", MessageEncoding.acceptHeader), ("user-agent", "prism-rpc/1")]
        if let timeout { fields.append(("grpc-timeout", GRPCTimeout.encode(timeout))) }
        fields += metadata.wireHeaders()
        let id = session.submitHeaders(streamID: -1, HeaderBlock(nil, fields), withBody: true)
        guard id > 0 else {
            call.complete(Status(.unavailable, "cannot open stream: \(NGHTTP2Session.errorString(Int(id)))"), trailers: Metadata())
            return
        }
        call.streamID = id
        calls[id] = call
        flush()
    }

    private func fail(_ status: Status) {
        failure = failure ?? status
        for call in calls.values { call.complete(status, trailers: Metadata()) }
        calls.removeAll()
    }

    // MARK: - nghttp2 events

    func beginHeaders(streamID: Int32, category: nghttp2_headers_category) {
        headers[streamID] = []
    }

    func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        headers[streamID, default: []].append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return true
    }

    func headersComplete(streamID: Int32, category: nghttp2_headers_category, endStream: Bool) {
        let fields = headers.removeValue(forKey: streamID) ?? []
        calls[streamID]?.receivedHeaders(fields, endStream: endStream || category == NGHTTP2_HCAT_HEADERS)
    }

    func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        session.consume(streamID: streamID, bytes: bytes.count)
        calls[streamID]?.receivedData(bytes)
    }

    func dataEndStream(streamID: Int32) {
        calls[streamID]?.receivedHeaders([], endStream: true)
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        calls.removeValue(forKey: streamID)?.streamClosed(errorCode: errorCode)
    }

    func readData(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        guard let call = calls[streamID] else { return .end(count: 0, trailers: nil) }
        return call.readData(into: buffer)
    }

    func sentEndStream(streamID: Int32) {}
    func pingAcknowledged() {}
    func goawayReceived(lastStreamID: Int32) {}
}
