// The server side of one HTTP/2 connection: feeds received bytes to nghttp2, turns request
// streams into calls (validation, routing, deadlines, interceptors), and writes what nghttp2
// produces. Lives on, and is only touched from, its channel's event loop.
import CNGHTTP2
import Logging
import NIOCore

// Not Sendable: every `var` (and nghttp2's session) is touched only on the channel's event loop;
// the closures that come back to it later hold it in a NIOLoopBound, which checks that they do.
// Handler tasks on other threads never reach it: they hold a HandlerSide.
final class HTTP2ServerConnection: ChannelInboundHandler, NGHTTP2SessionDelegate, CallTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let router: Router
    let configuration: ServerConfiguration
    let logger: Logger
    private(set) var session: NGHTTP2Session!
    private(set) var context: ChannelHandlerContext!
    private var streams: [Int32: ServerStream] = [:]
    /// The stream whose header block is arriving: saves a lookup per header field.
    private var headerStream: ServerStream?
    private var flushScheduled = false
    private var inRead = false
    private var closing = false
    private var draining = false
    private var lastActivity = NIODeadline.now()
    /// When the last stream closed (or the connection opened): the idle timeout counts from
    /// here, so frames without streams (our keepalive PINGs' ACKs) do not keep a connection open.
    private var idleSince = NIODeadline.now()
    private var pingOutstanding: NIODeadline?
    private var timer: RepeatedTask?
    private(set) var peerDescription = ""
    /// Usable from any thread (handler tasks frame their messages with it).
    let allocator = ByteBufferAllocator()

    /// The server's count of running handler tasks, which shutdown waits for.
    let handlerTasks: HandlerTasks

    init(router: Router, configuration: ServerConfiguration, logger: Logger, handlerTasks: HandlerTasks = HandlerTasks()) {
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.handlerTasks = handlerTasks
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        peerDescription = context.channel.remoteAddress?.description ?? "unknown"
        var settings = NGHTTP2Session.Settings()
        settings.maxConcurrentStreams = configuration.maxConcurrentStreams
        settings.initialWindowSize = configuration.initialStreamWindow
        settings.connectionWindowSize = configuration.connectionWindow
        settings.maxHeaderListSize = UInt32(configuration.maxHeaderListBytes)
        session = NGHTTP2Session(server: true, delegate: self, settings: settings)
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        flushNow()
        // One coarse timer drives idle and keepalive checks. It holds the connection strongly
        // (a weak reference would slow every retain and release of it) until it is cancelled
        // when the channel goes away.
        let tick = TimeAmount.seconds(1)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.checkTimers()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        for stream in streams.values { stream.streamClosed(reset: true) }
        streams.removeAll()
        headerStream = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        for stream in streams.values { stream.streamClosed(reset: true) }
        streams.removeAll()
        headerStream = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        pingOutstanding = nil
        inRead = true
        let rc = session.receive(buffer)
        inRead = false
        if rc < 0 {
            // Bad preface, a flood, a protocol error: nghttp2 has queued a GOAWAY where it can.
            logger.info("closing connection from \(peerDescription): \(NGHTTP2Session.errorString(rc))")
            flushNow()
            close()
            return
        }
        flushNow()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushNow() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error from \(peerDescription): \(error)")
        close()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerShutdownEvent { beginDrain() } else { context.fireUserInboundEventTriggered(event) }
    }

    // MARK: - Writing

    /// Flushes at the end of the current event-loop tick, so writes from many tasks coalesce.
    func scheduleFlush() {
        guard !flushScheduled, !inRead, context != nil else { return }
        context.eventLoop.assertInEventLoop()
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.flushNow() }
    }

    private func flushNow() {
        flushScheduled = false
        guard let context, !closing else { return }
        // A channel that cannot take more keeps nghttp2's frames (and our per-stream
        // buffers, bounded) until it drains.
        guard context.channel.isWritable else { return }
        var out = context.channel.allocator.buffer(capacity: 0)
        let rc = session.drain(into: &out)
        if out.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        if rc < 0 {
            close()
            return
        }
        if !session.wantsRead && !session.wantsWrite { close() }
        if draining && streams.isEmpty { close() }
    }

    private func close() {
        guard !closing, let context else { return }
        closing = true
        context.close(promise: nil)
    }

    // MARK: - Timers and shutdown

    private func checkTimers() {
        let now = NIODeadline.now()
        if let sent = pingOutstanding, now - sent > configuration.keepaliveTimeout {
            logger.info("closing connection from \(peerDescription): keepalive PING not acknowledged")
            session.goAway()
            flushNow()
            close()
            return
        }
        if streams.isEmpty, now - idleSince > configuration.idleTimeout {
            logger.debug("closing idle connection from \(peerDescription)")
            beginDrain()
            return
        }
        if pingOutstanding == nil, now - lastActivity > configuration.keepaliveInterval {
            pingOutstanding = now
            session.ping()
            flushNow()
        }
    }

    /// GOAWAY: accepted streams finish, new ones are refused; the connection closes when idle.
    func beginDrain() {
        guard !draining else { return }
        draining = true
        session.goAway()
        flushNow()
    }

    // MARK: - nghttp2 events

    func beginHeaders(streamID: Int32, category: nghttp2_headers_category) {
        guard category == NGHTTP2_HCAT_REQUEST else { return }
        let stream = ServerStream(id: streamID, eventLoop: context.eventLoop, connection: self)
        streams[streamID] = stream
        headerStream = stream
    }

    func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        let stream = headerStream?.id == streamID ? headerStream : streams[streamID]
        guard let stream, !stream.dispatched else { return true }  // client trailers: ignored
        stream.headerBytes += name.count + value.count + 32
        if stream.headerBytes > configuration.maxHeaderListBytes {
            stream.headersTooLarge = true
            stream.request = RequestHeaders()
            return true
        }
        if !stream.headersTooLarge { stream.request.add(name: name, value: value) }
        return true
    }

    func headersComplete(streamID: Int32, category: nghttp2_headers_category, endStream: Bool) {
        headerStream = nil
        guard let stream = streams[streamID] else { return }
        if !stream.dispatched {
            stream.dispatched = true
            dispatch(stream)
        }
        if endStream { stream.requestDidEnd() }
    }

    func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            // DATA for a stream we already forgot: still give the connection window back.
            nghttp2_session_consume_connection(session.session, bytes.count)
            return
        }
        stream.unconsumedBytes += bytes.count
        stream.receive(bytes)
        returnCredit(stream)
    }

    func dataEndStream(streamID: Int32) {
        streams[streamID]?.requestDidEnd()
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.streamClosed(reset: errorCode != NGHTTP2_NO_ERROR.rawValue)
        if streams.isEmpty { idleSince = .now() }
        if draining && streams.isEmpty { scheduleFlush() }
    }

    func readData(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        guard let stream = streams[streamID] else { return .end(count: 0, trailers: nil) }
        return stream.readData(into: buffer)
    }

    func sentEndStream(streamID: Int32) {
        // Our response is complete; if the client is still sending, tell it to stop (RFC 9113 8.1).
        if let stream = streams[streamID], !stream.requestEnded, session.isRemoteOpen(streamID: streamID) {
            session.resetStream(streamID: streamID, errorCode: NGHTTP2_NO_ERROR)
        }
    }

    func pingAcknowledged() { pingOutstanding = nil }
    func goawayReceived(lastStreamID: Int32) {}

    // MARK: - Calls

    /// Returns flow-control credit unless the handler has fallen behind on a streaming call
    /// (its request hand-off over `perStreamInboundBytes`); then it waits for the handler.
    private func returnCredit(_ stream: ServerStream) {
        if stream.requestsFull, let requests = stream.requests, !stream.hasStatus {
            if !stream.creditHeld {
                stream.creditHeld = true
                // On the handler's thread once it has drained to half, or at the hand-off's end.
                let loop = eventLoop
                let (bound, held) = (NIOLoopBound(self, eventLoop: loop), NIOLoopBound(stream, eventLoop: loop))
                requests.messages.whenRoom { loop.execute { bound.value.resumeInbound(held.value) } }
            }
            return
        }
        session.consume(streamID: stream.id, bytes: stream.unconsumedBytes)
        stream.unconsumedBytes = 0
    }

    /// The handler drained its backlog: return the credit we held back.
    private func resumeInbound(_ stream: ServerStream) {
        eventLoop.assertInEventLoop()
        guard streams[stream.id] === stream else { return }
        stream.requestsFull = false
        stream.creditHeld = false
        session.consume(streamID: stream.id, bytes: stream.unconsumedBytes)
        stream.unconsumedBytes = 0
        scheduleFlush()
    }

    // MARK: - CallTransport

    var eventLoop: EventLoop { context.eventLoop }
    var carriesTrailers: Bool { true }

    func sendHeaders(_ stream: ServerStream, _ headers: HeaderBlock, endStream: Bool) {
        context.eventLoop.assertInEventLoop()
        session.submitHeaders(streamID: stream.id, headers, withBody: !endStream)
    }

    func resumeData(_ stream: ServerStream) {
        context.eventLoop.assertInEventLoop()
        guard stream.dataDeferred else { return }
        stream.dataDeferred = false
        session.resumeData(streamID: stream.id)
    }
}

/// Sent down every connection's pipeline when the server begins a graceful shutdown.
struct ServerShutdownEvent {}
