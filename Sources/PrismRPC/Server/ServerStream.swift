// One RPC (or plain HTTP request) on a server connection, HTTP/2 or HTTP/1.1: the request's
// headers and messages coming in, the handler's task, and the response messages and status
// going out with backpressure, in the call's wire protocol (gRPC, gRPC-Web or Connect).
// Every stored property is owned by the connection's event loop; the handler's task reaches the
// call only through HandlerSide (messages through a HandOff, the outcome hopping to the loop).
import CNGHTTP2
import NIOCore
import PrismHandOff

// Not Sendable: only on `eventLoop` (the entry points check it); closures that come back to it later
// hold it in a NIOLoopBound, and the handler's task holds a HandlerSide.
final class ServerStream {
    let id: Int32
    let eventLoop: EventLoop
    /// Strong: a handler's task may outlive the connection, and still reaches it here (the
    /// cycle through `connection.streams` is broken when the stream closes).
    let connection: any CallTransport

    // Request side.
    var request = RequestHeaders()
    var headerBytes = 0
    var headersTooLarge = false
    var dispatched = false
    var requestEnded = false
    var deframer: MessageDeframer?
    var requests: RequestStream?
    /// The last request message found the handler behind (its hand-off over budget).
    var requestsFull = false
    /// HTTP/2 credit is held back until the handler drains (`whenRoom` is registered).
    var creditHeld = false
    /// gRPC or gRPC-Web, chosen from the request's content-type at dispatch.
    var wire = WireProtocol.grpc
    /// For `application/grpc-web-text` requests: the body's base64, decoded as it arrives.
    var textDecoder: Base64BodyDecoder?
    /// Connect unary: the request body as it arrives, then the response message.
    var connectBody: ByteBuffer?
    /// Connect with the JSON codec: converts messages both ways.
    var jsonCodec: (any JSONCodec)?
    /// Connect unary: the request body's content-encoding.
    var requestEncoding = MessageEncoding.identity
    /// The single request of a unary-request call, once it has arrived.
    var unaryRequest: ByteBuffer?
    var unaryRequestCount = 0
    /// Received DATA bytes not yet returned to the peer's flow-control window.
    var unconsumedBytes = 0

    // Call.
    var handler: RPCHandler?
    var context: ServerCallContext?
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?
    var startTime = NIODeadline.now()
    /// The router's interceptors, and how many of them saw `accept`; each of those sees `finished`.
    var interceptors: [any ServerInterceptor] = []
    var interceptorsEntered = 0
    /// The client listed gzip in `grpc-accept-encoding`.
    var clientAcceptsGzip = false
    /// The server's default for compressing responses, read once (not per message).
    let serverCompresses: Bool

    // Response side.
    var headersSent = false
    /// Framed bytes the event loop made (a unary response, a status frame, a whole body), and
    /// the handler's messages still queued when the call ended, ahead of the rest; in order.
    var outbound = CircularBuffer<ByteBuffer>()
    /// For handlers that write (streaming responses): their framed messages, within the
    /// per-stream cap, pulled by the loop as nghttp2 (or the HTTP/1.1 socket) can take more.
    private(set) var responses: HandOff<ByteBuffer, Void>?
    var dataDeferred = false
    /// How the response ends once `outbound` is empty; set when the call has a status.
    var pendingEnd: ResponseEnd?
    /// Header fields every response head of this request carries (CORS for a browser's origin).
    var extraHeaders: [(String, String)] = []
    var finalStatus: Status?
    /// Our side is done (trailers or trailers-only sent, or the stream reset).
    var closed = false

    enum ResponseEnd {
        /// HTTP trailers (native gRPC).
        case trailers(HeaderBlock)
        /// The body just ends: its last frame said it all (gRPC-Web, plain responses).
        case endOfBody
    }

    init(id: Int32, eventLoop: EventLoop, connection: any CallTransport) {
        self.id = id
        self.eventLoop = eventLoop
        self.connection = connection
        self.serverCompresses = connection.configuration.compressResponses
    }

    var hasStatus: Bool { finalStatus != nil }

    // MARK: - Response side, on the event loop

    /// The writer of a handler that streams responses. Its messages go through a hand-off the
    /// loop polls: told when one arrives after a poll found none (once per batch, one hop), and
    /// pulling only as fast as the client reads, so that a writer waits while too many bytes
    /// are unsent and resumes at half of them. Made only for such handlers; a unary call has none.
    func makeWriter(for side: HandlerSide) -> ResponseWriter {
        eventLoop.preconditionInEventLoop()
        let responses = HandOff<ByteBuffer, Void>(maxCount: Int.max, maxBytes: connection.configuration.perStreamBufferBytes,
                                                  size: { $0.readableBytes })
        // Strong, as elsewhere here: `stop` (at the status or the stream's close) releases it.
        let loop = eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        // A producer on this loop is a step of a handler's task (its jobs run as the loop's own
        // tasks, never inside the connection's code): the stream is told at once, sparing a task
        // per message; the flush that sends it is deferred anyway. From elsewhere, one hop.
        responses.consumeByPolling {
            if loop.inEventLoop {
                bound.value.responsesReady()
            } else {
                loop.execute { bound.value.responsesReady() }
            }
        }
        self.responses = responses
        return ResponseWriter(side: side, responses: responses)
    }

    /// Queues a framed message; sends the response headers first if they are still due.
    func enqueue(_ framed: ByteBuffer) {
        eventLoop.assertInEventLoop()
        guard !hasStatus, !closed else { return }
        outbound.append(framed)
        bodyReady()
    }

    /// The handler's task queued messages after the last pull found none.
    private func responsesReady() {
        eventLoop.assertInEventLoop()
        guard !hasStatus, !closed else { return }
        bodyReady()
    }

    /// Body bytes are waiting: the response headers go first if they are still due.
    private func bodyReady() {
        if !headersSent {
            headersSent = true
            connection.sendHeaders(self, responseHeaders(), endStream: false)
        } else {
            connection.resumeData(self)
        }
        connection.scheduleFlush()
    }

    /// Moves the handler's messages due now into `outbound`, about `bytes` of them (one lock for
    /// the batch): called when the transport can take that much. False when there were none.
    func pullResponses(upToBytes bytes: Int) -> Bool {
        guard let responses else { return false }
        return responses.poll(into: &outbound, upToBytes: bytes) > 0
    }

    /// Ends the handler's flow of messages: a writer (now, or waiting for room) gets "the call
    /// has ended". With `keepQueued`, what it queued so far goes out first, ahead of the end.
    private func endResponses(keepQueued: Bool) {
        guard let responses else { return }
        if keepQueued {
            while responses.poll(into: &outbound, upToBytes: Int.max) > 0 {}
        }
        responses.stop()
    }

    /// Ends the call with `status`. The first status wins; later ones (a handler finishing
    /// after its deadline fired) are ignored.
    func finish(_ status: Status, trailers extra: Metadata = Metadata()) {
        eventLoop.preconditionInEventLoop()
        guard !hasStatus, !closed else { return }
        finalStatus = status
        // Messages the handler queued go out before the status once the response has started;
        // a status that comes first (a trailers-only answer) drops them.
        endResponses(keepQueued: headersSent)
        deadlineTimer?.cancel()
        var trailers = context?.responseTrailers ?? Metadata()
        trailers.append(contentsOf: extra)
        var statusFields = [("grpc-status", String(status.code.rawValue))]
        if !status.message.isEmpty { statusFields.append(("grpc-message", PercentEncoding.encode(status.message))) }
        let trailerFields = trailers.wireHeaders()

        if wire == .connectUnary {
            // A whole response: the message, or the error as HTTP status and JSON.
            headersSent = true
            var fields = extraHeaders + (context?.responseHeaders.wireHeaders() ?? [])
            fields += trailers.wireHeaders().map { ("trailer-" + $0.0, $0.1) }
            if status.code == .ok {
                sendWhole(httpStatus: 200, contentType: jsonCodec == nil ? "application/proto" : "application/json",
                          body: connectBody ?? connection.allocator.buffer(capacity: 0), fields: fields)
            } else {
                sendWhole(httpStatus: ConnectProtocol.httpStatus(status.code), contentType: "application/json",
                          body: connection.allocator.buffer(string: ConnectProtocol.errorBody(status)), fields: fields)
            }
            connectBody = nil
        } else if wire == .connectStream {
            // Connect streaming: always a body, whose last envelope holds the status as JSON.
            let frame = ConnectProtocol.endStreamFrame(status, trailers: trailers, allocator: connection.allocator)
            outbound.append(frame)
            pendingEnd = .endOfBody
            if headersSent {
                connection.resumeData(self)
            } else {
                headersSent = true
                connection.sendHeaders(self, responseHeaders(), endStream: false)
            }
        } else if !headersSent {
            // Trailers-only response: one HEADERS frame with END_STREAM.
            headersSent = true
            var headers = responseHeaders()
            headers.fields += statusFields + trailerFields
            connection.sendHeaders(self, headers, endStream: true)
        } else if wire.isWeb {
            // gRPC-Web: the status travels as the body's last frame.
            let frame = wire.encode(WireProtocol.trailersFrame(statusFields + trailerFields, allocator: connection.allocator),
                                    allocator: connection.allocator)
            outbound.append(frame)
            pendingEnd = .endOfBody
            connection.resumeData(self)
        } else {
            let plainOK = status.code == .ok && status.message.isEmpty
            pendingEnd = .trailers(plainOK ? HeaderBlock(FixedHeaders.okTrailers, trailerFields) : HeaderBlock(nil, statusFields + trailerFields))
            connection.resumeData(self)
        }
        if status.code != .ok { task?.cancel() }
        requests?.finish(RPCError(.cancelled, "call already finished"))
        callFinished(status: status)
        connection.scheduleFlush()
    }

    private func responseHeaders() -> HeaderBlock {
        let fixed: FixedHeaders
        switch wire {
        case .grpc: fixed = responseEncoding() == .gzip ? FixedHeaders.gzipResponse : FixedHeaders.identityResponse
        case .grpcWeb(let text): fixed = text ? FixedHeaders.webTextResponse : FixedHeaders.webResponse
        case .connectUnary: fixed = FixedHeaders.connectResponse  // unary: `finish` sends it whole
        case .connectStream: fixed = jsonCodec == nil ? FixedHeaders.connectStreamResponse : FixedHeaders.connectStreamJSONResponse
        }
        return HeaderBlock(fixed, extraHeaders + (context?.responseHeaders.wireHeaders() ?? []))
    }

    /// Answers a request that is not a call (a probe, a preflight, a refusal) with a whole
    /// plain response: `fields` beside the usual ones, and `body` as text.
    func respond(httpStatus: Int, body: String, fields: [(String, String)] = [],
                 contentType: String = "text/plain; charset=utf-8", includeBody: Bool = true) {
        eventLoop.preconditionInEventLoop()
        guard !hasStatus, !closed else { return }
        finalStatus = Status(.ok, "")  // answered: nothing else may respond on this stream
        headersSent = true
        sendWhole(httpStatus: httpStatus, contentType: contentType, body: connection.allocator.buffer(string: body),
                  fields: fields + extraHeaders, includeBody: includeBody)
    }

    /// One response with its whole body and its length: plain answers and Connect unary.
    private func sendWhole(httpStatus: Int, contentType: String, body: ByteBuffer, fields: [(String, String)],
                           includeBody: Bool = true) {
        // A 204 carries no body and, by RFC 9110, no content-length either; nor does our 304,
        // whose length would otherwise claim to be the page's.
        let length = httpStatus == 204 || httpStatus == 304 ? [] : [("content-length", String(body.readableBytes))]
        let head = HeaderBlock(nil, [(":status", String(httpStatus)), ("content-type", contentType)] + length + fields)
        if !includeBody || body.readableBytes == 0 {
            connection.sendHeaders(self, head, endStream: true)
        } else {
            outbound.append(body)
            pendingEnd = .endOfBody
            connection.sendHeaders(self, head, endStream: false)
        }
        connection.scheduleFlush()
    }

    /// Tells the interceptors that saw the call start how it ended.
    func callFinished(status: Status) {
        guard let head = context?.head else { return }
        let elapsed = NIODeadline.now() - startTime
        for interceptor in interceptors.prefix(interceptorsEntered) {
            interceptor.finished(head, status: status, elapsed: elapsed)
        }
    }

    /// nghttp2 pulls body bytes for the DATA frames it is about to send.
    /// What the loop made goes first, then the handler's messages as they are due.
    func readData(into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        eventLoop.assertInEventLoop()
        var written = 0
        while written < buffer.count {
            if outbound.isEmpty {
                guard pullResponses(upToBytes: buffer.count - written) else { break }
            }
            var head = outbound.first!
            let n = min(head.readableBytes, buffer.count - written)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            }
            head.moveReaderIndex(forwardBy: n)
            written += n
            if head.readableBytes == 0 { outbound.removeFirst() } else { outbound[outbound.startIndex] = head }
        }
        if outbound.isEmpty, let end = pendingEnd {
            pendingEnd = nil
            if case .trailers(let trailers) = end { return .end(count: written, trailers: trailers) }
            return .end(count: written, trailers: nil)
        }
        if written == 0 {
            dataDeferred = true
            return .deferred
        }
        return .bytes(written)
    }

    /// The stream is gone (reset by the peer, or fully closed): stop everything.
    func streamClosed(reset: Bool) {
        eventLoop.preconditionInEventLoop()
        closed = true
        deadlineTimer?.cancel()
        if finalStatus == nil {
            finalStatus = Status(.cancelled, "the client cancelled the call")
            callFinished(status: finalStatus!)
        }
        task?.cancel()
        requests?.finish(RPCError(.cancelled, "the client cancelled the call"))
        requests = nil  // breaks stream → requests → drain callback → stream
        deadlineTimer = nil
        endResponses(keepQueued: false)
        outbound.removeAll()
    }

    /// Decided once per call by the context (HandlerSide asks it the same way).
    func responseEncoding() -> MessageEncoding {
        context?.responseEncoding(clientAcceptsGzip: clientAcceptsGzip,
                                  serverDefault: serverCompresses) ?? .identity
    }

    // MARK: - The handler's outcome

    /// On the event loop: send the handler's outcome.
    func complete(response: ByteBuffer?, error: Error?) {
        eventLoop.preconditionInEventLoop()
        if let error {
            finish(Self.status(for: error, connection: connection), trailers: (error as? RPCError)?.trailers ?? Metadata())
            return
        }
        if let response, wire == .connectUnary {
            // Sent whole with the status, by `finish`.
            do {
                connectBody = try jsonCodec.map { try $0.response(toJSON: response, path: context?.head.path ?? "") } ?? response
            } catch {
                finish(Self.status(for: error, connection: connection))
                return
            }
        } else if var response {
            // A single response in a stream (client-streaming, or unary over Connect streaming)
            // is JSON for a JSON client, like every streamed message (`write`).
            var encoding = responseEncoding()
            if let jsonCodec, wire == .connectStream {
                do {
                    response = try jsonCodec.response(toJSON: response, path: context?.head.path ?? "")
                    encoding = .identity
                } catch {
                    finish(Self.status(for: error, connection: connection))
                    return
                }
            }
            let framed = wire.encode(MessageFramer.frame(response, encoding: encoding, allocator: connection.allocator),
                                     allocator: connection.allocator)
            enqueue(framed)
        }
        finish(.ok)
    }

    static func status(for error: Error, connection: any CallTransport) -> Status {
        if let status = Status.of(handlerError: error) { return status }
        connection.logger.error("handler failed: \(error)")
        return Status(.internal, "internal error")
    }
}

extension FixedHeaders {
    static let identityResponse = FixedHeaders([(":status", "200"), ("content-type", "application/grpc"),
                                                ("grpc-accept-encoding", MessageEncoding.acceptHeader)])
    static let gzipResponse = FixedHeaders([(":status", "200"), ("content-type", "application/grpc"),
                                            ("grpc-encoding", "gzip"), ("grpc-accept-encoding", MessageEncoding.acceptHeader)])
    static let okTrailers = FixedHeaders([("grpc-status", "0")])
    static let webResponse = FixedHeaders([(":status", "200"), ("content-type", "application/grpc-web+proto")])
    static let webTextResponse = FixedHeaders([(":status", "200"), ("content-type", "application/grpc-web-text+proto")])
    static let connectResponse = FixedHeaders([(":status", "200"), ("content-type", "application/proto")])
    static let connectStreamResponse = FixedHeaders([(":status", "200"), ("content-type", "application/connect+proto")])
    static let connectStreamJSONResponse = FixedHeaders([(":status", "200"), ("content-type", "application/connect+json")])
}
