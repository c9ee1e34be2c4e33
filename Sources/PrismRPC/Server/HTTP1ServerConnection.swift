// The server side of one HTTP/1.1 connection (plaintext after protocol detection, or TLS with
// ALPN http/1.1). Each request becomes a ServerStream dispatched by the same code as HTTP/2:
// gRPC-Web calls, pages, CORS preflights. Responses go out through NIOHTTP1, chunked while a
// call streams. One request at a time (HTTPServerPipelineHandler holds pipelined ones back),
// keep-alive between them. Lives on, and is only touched from, its channel's event loop.
import Logging
import NIOCore
import NIOHTTP1

// Not Sendable: every `var` is touched only on the channel's event loop; the closures that come back
// to it later hold it in a NIOLoopBound, which checks that they do. Handler tasks on other threads
// never reach it: they hold a HandlerSide.
final class HTTP1ServerConnection: ChannelInboundHandler, CallTransport {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let router: Router
    let configuration: ServerConfiguration
    let logger: Logger
    let handlerTasks: HandlerTasks
    let allocator = ByteBufferAllocator()
    private(set) var peerDescription = ""
    /// Set while the handler is in a pipeline: the context holds the handler, so keeping it after
    /// handlerRemoved would make a cycle that leaks the connection (found by the connection fuzz target).
    private var context: ChannelHandlerContext!
    private var loop: EventLoop?

    /// The request being answered; nil between requests and once its response has ended.
    private var stream: ServerStream?
    /// A request whose body is still arriving (its response may have ended already).
    private var readingBody = false
    private var bodyBytes = 0
    private var bodyLimit = 0
    private var version = HTTPVersion.http1_1
    private var keepAlive = true
    private var draining = false
    private var closing = false
    private var flushScheduled = false
    /// The write that ended the last response: a close waits for it, so the answer gets out.
    private var lastResponseEnd: EventLoopFuture<Void>?

    init(router: Router, configuration: ServerConfiguration, logger: Logger, handlerTasks: HandlerTasks) {
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.handlerTasks = handlerTasks
    }

    var eventLoop: EventLoop { loop! }
    var carriesTrailers: Bool { false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop = context.eventLoop
        peerDescription = context.channel.remoteAddress?.description ?? "unknown"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stream?.streamClosed(reset: true)
        stream = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.streamClosed(reset: true)
        stream = nil
        context.fireChannelInactive()
    }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head)
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            guard bodyBytes <= bodyLimit else {
                bodyTooLarge()
                return
            }
            buffer.withUnsafeReadableBytes { stream?.receive($0) }
        case .end:
            readingBody = false
            stream?.requestDidEnd()
            if stream == nil { afterExchange() }
        }
    }

    private func begin(_ head: HTTPRequestHead) {
        version = head.version
        keepAlive = head.isKeepAlive
        readingBody = true
        bodyBytes = 0
        var request = RequestHeaders()
        request.method = head.method.rawValue
        request.path = head.uri
        for (name, value) in head.headers {
            let name = name.lowercased()
            if Self.hopByHop.contains(name) { continue }
            Array(name.utf8).withUnsafeBytes { n in Array(value.utf8).withUnsafeBytes { v in request.add(name: n, value: v) } }
        }
        let wire = head.method == .POST ? WireProtocol(contentType: request.contentType) : nil
        bodyLimit = Self.bodyLimit(wire, configuration)

        let stream = ServerStream(id: 1, eventLoop: context.eventLoop, connection: self)
        self.stream = stream
        stream.request = request
        stream.dispatched = true
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
            // Refused before reading it; the unread body means the connection cannot be reused.
            keepAlive = false
            stream.extraHeaders = configuration.cors.responseHeaders(origin: request.origin)
            stream.respond(httpStatus: 413, body: "request body of \(length) bytes exceeds the limit of \(bodyLimit) bytes\n")
            return
        }
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .continue))), promise: nil)
            scheduleFlush()
        }
        dispatch(stream)
    }

    /// The body went past its limit: refuse with 413 if the response has not started, and
    /// close the connection once the response is out rather than read the rest.
    private func bodyTooLarge() {
        keepAlive = false
        guard let stream else {
            close()
            return
        }
        if !stream.headersSent {
            stream.respond(httpStatus: 413, body: "request body exceeds the limit of \(bodyLimit) bytes\n")
        } else {
            stream.finish(Status(.resourceExhausted, "request body exceeds the limit of \(bodyLimit) bytes"))
        }
    }

    /// The largest body for a request: one message (plus its prefix, and base64's growth for
    /// grpc-web-text) for a call, `maxPlainRequestBodyBytes` for anything else.
    static func bodyLimit(_ wire: WireProtocol?, _ configuration: ServerConfiguration) -> Int {
        let message = configuration.maxReceiveMessageBytes + 5
        switch wire {
        case .grpcWeb(text: true): return (message + 2) / 3 * 4
        case .grpcWeb(text: false), .grpc, .connectStream: return message
        case .connectUnary: return configuration.maxReceiveMessageBytes
        case nil: return configuration.maxPlainRequestBodyBytes
        }
    }

    /// The handler's bytes taken per pull while the socket is writable (its low water mark).
    static let pullBytes = 64 << 10

    /// Request headers about this connection rather than the call; they never reach metadata.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "expect", "upgrade",
                                        "proxy-connection", "host"]

    // MARK: - Responses (CallTransport)

    func sendHeaders(_ stream: ServerStream, _ block: HeaderBlock, endStream: Bool) {
        guard stream === self.stream, !closing else { return }
        context.eventLoop.assertInEventLoop()
        var status = 200
        var headers = HTTPHeaders()
        for (name, value) in (block.fixed?.pairs ?? []) + block.fields {
            if name == ":status" {
                status = Int(value) ?? 500
            } else {
                headers.add(name: name, value: value)
            }
        }
        if endStream && status != 204 && status != 304 && !headers.contains(name: "content-length") {
            headers.add(name: "content-length", value: "0")
        }
        if !keepAlive || draining { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .init(statusCode: status), headers: headers))),
                      promise: nil)
        if endStream { endResponse() } else { resumeData(stream) }
        scheduleFlush()
    }

    func resumeData(_ stream: ServerStream) {
        guard stream === self.stream, stream.headersSent, !closing else { return }
        context.eventLoop.assertInEventLoop()
        // The handler's messages are pulled only while the socket keeps up: a slow reader makes
        // the handler wait, as flow control does on HTTP/2 (writability resumes the pull).
        repeat {
            while let buffer = stream.outbound.popFirst() {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
        } while context.channel.isWritable && stream.pullResponses(upToBytes: Self.pullBytes)
        if stream.pendingEnd != nil {
            stream.pendingEnd = nil
            endResponse()
        }
        scheduleFlush()
    }

    func scheduleFlush() {
        guard !flushScheduled, context != nil else { return }
        flushScheduled = true
        context.eventLoop.assertInEventLoop()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            bound.value.flushScheduled = false
            bound.value.context?.flush()
        }
    }

    private func endResponse() {
        let ended = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(.end(nil)), promise: ended)
        lastResponseEnd = ended.futureResult
        let finished = stream
        stream = nil
        finished?.streamClosed(reset: false)
        // Done unless the request body is still arriving on a connection worth keeping.
        if !readingBody || !keepAlive { afterExchange() }
    }

    /// Request and response are both over: wait for the next request, or close.
    private func afterExchange() {
        if !keepAlive || draining { close() }
    }

    /// Closes once the last response is out. The output closes first and the input a little
    /// later: closing a socket with request bytes still unread makes the kernel send a reset,
    /// which can destroy the answer in the client's buffers before the client reads it.
    private func close() {
        guard !closing, let context else { return }
        closing = true
        context.flush()
        let written = lastResponseEnd ?? context.eventLoop.makeSucceededVoidFuture()
        // The callbacks below run on this loop (the futures and the timer are its own).
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.whenComplete { _ in
            let halfClosed = bound.value.eventLoop.makePromise(of: Void.self)
            bound.value.close(mode: .output, promise: halfClosed)
            halfClosed.futureResult.whenFailure { _ in bound.value.close(promise: nil) }
            bound.value.eventLoop.scheduleTask(in: Self.lingerTime) { bound.value.close(promise: nil) }
        }
    }

    /// How long a client that is still sending after its answer gets to read that answer before
    /// the connection is closed (it usually closes first, on reading the answer).
    static let lingerTime = TimeAmount.seconds(2)

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let stream { resumeData(stream) }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Errors and events

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parse = error as? HTTPParserError, !closing, stream?.headersSent != true {
            // Bad input from the client: say what was wrong, then close (the parser cannot resync).
            let (status, text): (HTTPResponseStatus, String) = parse == .headerOverflow
                ? (.requestHeaderFieldsTooLarge, "request header fields exceed the limit of \(configuration.maxHeaderListBytes) bytes\n")
                : (.badRequest, "malformed HTTP/1.1 request (\(parse))\n")
            var headers = HTTPHeaders([("content-type", "text/plain; charset=utf-8"), ("connection", "close")])
            headers.add(name: "content-length", value: String(text.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let ended = context.eventLoop.makePromise(of: Void.self)
            context.write(wrapOutboundOut(.end(nil)), promise: ended)
            lastResponseEnd = ended.futureResult
            close()
        } else if !closing {
            logger.debug("HTTP/1.1 connection error from \(peerDescription): \(error)")
            context.close(promise: nil)
        }
        stream?.streamClosed(reset: true)
        stream = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ServerShutdownEvent:
            // Like GOAWAY: the request in progress finishes, no other is taken.
            draining = true
            if stream == nil && !readingBody { context.close(promise: nil) }
        case let idle as IdleStateHandler.IdleStateEvent where idle == .all:
            if stream == nil && !readingBody {
                logger.debug("closing idle HTTP/1.1 connection from \(peerDescription)")
                context.close(promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }
}
