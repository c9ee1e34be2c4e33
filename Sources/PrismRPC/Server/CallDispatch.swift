// Turning a request's header block into a running call: HTTP and gRPC validation, routing,
// `grpc-timeout` deadlines, interceptors, and starting the handler in the right shape.
import CNGHTTP2
import NIOCore

// Turning a request's head into a running call, for HTTP/2 and HTTP/1.1 alike: the HTTP
// method (pages, CORS preflight), the wire protocol from the content-type, routing,
// `grpc-timeout` deadlines, interceptors, and starting the handler in the right shape.
import NIOCore

extension CallTransport {
    func dispatch(_ stream: ServerStream) {
        // Once per call, so checked in release builds too: everything below owns loop state.
        eventLoop.preconditionInEventLoop()
        // One copy each, not one per use through the protocol.
        let configuration = self.configuration
        let router = self.router
        if stream.headersTooLarge {
            stream.reject(Status(.resourceExhausted, "request header list exceeds the limit of \(configuration.maxHeaderListBytes) bytes"))
            return
        }
        let request = stream.request
        let (method, path, contentType, encoding, timeout) =
            (request.method, request.path, request.contentType, request.encoding, request.timeout)
        stream.extraHeaders = configuration.cors.responseHeaders(origin: request.origin)
        switch method {
        case "POST":
            break
        case "OPTIONS":
            answerPreflight(stream, origin: request.origin)
            return
        case "GET", "HEAD":
            answerPage(stream, path: path, includeBody: method == "GET",
                       ifNoneMatch: request.metadata.first { $0.0 == "if-none-match" }?.1)
            return
        default:
            stream.respond(httpStatus: 405, body: "HTTP method \(method) is not supported: calls use POST, pages GET\n",
                           fields: [("allow", "GET, HEAD, POST, OPTIONS")])
            return
        }
        guard let wire = WireProtocol(contentType: contentType) else {
            // A bare `curl -d` sends a form's type: for a method we serve, say how to call it.
            var message = Self.unservedContentType(contentType)
            if case .found(let route) = router.lookup(path: path) {
                message = "content-type '\(contentType)' is not served: " + ConnectProtocol.howToCall(path, route.handler)
            }
            stream.reject(Status(.invalidArgument, message), httpStatus: 415)
            return
        }
        guard wire != .grpc || carriesTrailers else {
            stream.reject(Status(.unimplemented, "application/grpc needs HTTP/2 (its status travels in trailers); over HTTP/1.1 use application/grpc-web"), httpStatus: 415)
            return
        }
        stream.wire = wire
        if wire.isConnect && WireProtocol.isJSON(contentType: contentType) {
            guard let codec = router.jsonCodec else {
                stream.reject(Status(.invalidArgument, "Connect's JSON codec is not available in this server; send application/proto"), httpStatus: 415)
                return
            }
            stream.jsonCodec = codec
        }
        let route: Router.Route
        switch router.lookup(path: path) {
        case .found(let r): route = r
        case .unknownService(let service):
            stream.reject(Status(.unimplemented, "unknown service \(service)"))
            return
        case .unknownMethod(let service, let name):
            stream.reject(Status(.unimplemented, "unknown method \(name) for service \(service)"))
            return
        case .malformedPath:
            stream.reject(Status(.unimplemented, "malformed method path '\(path)'"))
            return
        }
        if wire == .connectUnary && !route.handler.isUnary && !route.handler.isBidirectional {
            // Connect unary holds one request and one response message. The method is served in
            // Connect's streaming content-types: 415, with Connect's JSON error saying which.
            let error = Status(.unimplemented, "content-type '\(contentType)' is Connect unary, which carries one request and one response message; " + ConnectProtocol.howToCall(path, route.handler))
            stream.respond(httpStatus: 415, body: ConnectProtocol.errorBody(error),
                           fields: [("accept-post", "application/connect+json, application/connect+proto")], contentType: "application/json")
            return
        }
        // Connect streaming carries a client stream as enveloped messages in one request body, so
        // it serves client-streaming methods (IndexDocument) even over HTTP/1.1; bidirectional
        // ones need both directions open at once: gRPC over HTTP/2.
        guard wire == .grpc || route.handler.isUnaryRequest || (wire == .connectStream && route.handler.isClientStreaming) else {
            stream.reject(Status(.unimplemented, route.handler.isClientStreaming
                ? "\(path) is client-streaming: it needs gRPC over HTTP/2, or Connect streaming (application/connect+json or application/connect+proto, the request messages enveloped in one body); gRPC-Web and Connect unary serve only unary and server-streaming methods"
                : "\(path) is bidirectional: it needs gRPC over HTTP/2; gRPC-Web and Connect serve unary, server-streaming and (Connect streaming) client-streaming methods"))
            return
        }
        if wire.isConnect {
            if let version = request.connectProtocolVersion, version != "1" {
                stream.reject(Status(.invalidArgument, "connect-protocol-version '\(version)' is not supported; send 1"))
                return
            }
        }
        let requestEncoding: MessageEncoding
        // Connect unary compresses whole bodies (content-encoding), Connect streaming and gRPC
        // messages (connect-content-encoding, grpc-encoding).
        let encodingName = wire == .connectUnary ? request.contentEncoding : wire == .connectStream ? request.connectContentEncoding : encoding
        switch encodingName {
        case "", "identity": requestEncoding = .identity
        case "gzip": requestEncoding = .gzip
        default:
            stream.reject(Status(.unimplemented, "message encoding '\(encodingName)' is not supported; use gzip or identity"))
            return
        }
        var deadline: NIODeadline?
        if wire.isConnect, let text = request.connectTimeout {
            guard let amount = ConnectProtocol.parseTimeout(text) else {
                stream.reject(Status(.invalidArgument, "malformed connect-timeout-ms '\(text)'"))
                return
            }
            deadline = .now() + amount
        } else if let timeout {
            guard let amount = GRPCTimeout.parse(timeout) else {
                stream.reject(Status(.invalidArgument, "malformed grpc-timeout '\(timeout)'"))
                return
            }
            deadline = .now() + amount
        }

        let handler = route.handler
        var head = CallHead(path: path, service: route.service, method: route.method,
                            metadata: Metadata.fromWire(request.metadata), peer: peerDescription, deadline: deadline)
        head.callType = route.handler.callType
        stream.request = RequestHeaders()
        stream.interceptors = router.interceptors
        var refusal: Error?
        for interceptor in router.interceptors {
            stream.interceptorsEntered += 1
            do {
                if let authenticator = interceptor as? any CallAuthenticator {
                    head.apiKeyName = try authenticator.authenticate(head)
                } else {
                    try interceptor.accept(head)
                }
            } catch {
                refusal = error
                break
            }
        }
        stream.context = ServerCallContext(head: head, eventLoop: eventLoop)
        if let refusal {
            stream.finish(ServerStream.status(for: refusal, connection: self))
            return
        }

        stream.handler = handler
        stream.deframer = MessageDeframer(maxMessageBytes: configuration.maxReceiveMessageBytes, encoding: requestEncoding)
        switch wire {
        case .grpcWeb(let text):
            // Browsers decompress whole bodies (Content-Encoding); gRPC-Web has no per-message gzip.
            if text { stream.textDecoder = Base64BodyDecoder() }
        case .connectUnary:
            stream.requestEncoding = requestEncoding
        case .connectStream:
            break  // responses are not compressed: Prism's are small deltas
        case .grpc:
            stream.clientAcceptsGzip = request.acceptEncoding.split(separator: ",").contains { $0.filter { $0 != " " } == "gzip" }
        }
        if let deadline {
            // Strong captures here and below: a weak reference would move the object's reference
            // counts to a side table and slow every retain and release. Both are cut when the
            // call ends (the timer is cancelled, `requests` dropped).
            let bound = NIOLoopBound(stream, eventLoop: eventLoop)
            stream.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) {
                bound.value.finish(Status(.deadlineExceeded, "deadline exceeded (\(wire.isConnect ? "connect-timeout-ms \(request.connectTimeout ?? "")" : "grpc-timeout \(timeout ?? "")"))"))
            }
        }
        if !handler.isUnaryRequest { startStreaming(stream) }
    }

    /// Why a content-type is refused, naming what would be served.
    static func unservedContentType(_ contentType: String) -> String {
        "content-type '\(contentType)' is not served; use application/grpc (HTTP/2), application/grpc-web, application/grpc-web-text, or Connect's application/proto, application/json, application/connect+proto, application/connect+json"
    }

    /// A GET for a page of the router (probes, metrics); a gRPC method's path says to POST.
    private func answerPage(_ stream: ServerStream, path: String, includeBody: Bool, ifNoneMatch: String?) {
        let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        if let render = router.page(bare) {
            let page = render()
            let fields = page.headers + (page.etag.map { [("etag", $0)] } ?? [])
            if page.isNotModified(ifNoneMatch: ifNoneMatch) {
                stream.respond(httpStatus: 304, body: "", fields: fields, contentType: page.contentType, includeBody: false)
                return
            }
            stream.respond(httpStatus: page.status, body: page.body, fields: fields, contentType: page.contentType, includeBody: includeBody)
        } else if case .found = router.lookup(path: bare) {
            stream.respond(httpStatus: 405, body: "\(bare) is an RPC method: call it with POST\n", fields: [("allow", "POST, OPTIONS")])
        } else {
            stream.respond(httpStatus: 404, body: "no page or method at \(bare)\n")
        }
    }

    /// A CORS preflight: allowed origins learn what they may send; others get no CORS headers.
    private func answerPreflight(_ stream: ServerStream, origin: String?) {
        guard let origin else {
            stream.respond(httpStatus: 204, body: "", fields: [("allow", "GET, HEAD, POST, OPTIONS")])
            return
        }
        guard let fields = configuration.cors.preflightHeaders(origin: origin) else {
            stream.respond(httpStatus: 403, body: "origin \(origin) is not allowed (see PRISM_CORS_ORIGINS or http.cors_origins)\n")
            return
        }
        stream.respond(httpStatus: 204, body: "", fields: fields)
    }

    /// A unary-request call runs once its single message and END_STREAM have arrived.
    func startUnary(_ stream: ServerStream) {
        guard let handler = stream.handler, let context = stream.context else { return }
        guard let request = stream.unaryRequest else {
            stream.finish(Status(.internal, "a unary call ended without a request message"))
            return
        }
        stream.unaryRequest = nil
        switch handler {
        case .unaryOnEventLoop(let body):
            do {
                stream.complete(response: try body(request, context), error: nil)
            } catch {
                stream.complete(response: nil, error: error)
            }
        case .unary(let body):
            let side = HandlerSide(stream, context: context)
            stream.task = handlerTasks.start {
                do {
                    side.completed(response: try await body(request, context), error: nil)
                } catch {
                    side.completed(response: nil, error: error)
                }
            }
        case .serverStreaming(let body):
            let side = HandlerSide(stream, context: context)
            let writer = stream.makeWriter(for: side)
            stream.task = handlerTasks.start {
                do {
                    try await body(request, context, writer)
                    side.completed(response: nil, error: nil)
                } catch {
                    side.completed(response: nil, error: error)
                }
            }
        case .clientStreaming, .bidirectional:
            preconditionFailure("streaming-request handlers start at dispatch")
        }
    }

    /// A streaming-request call starts at once and reads its messages as they come.
    private func startStreaming(_ stream: ServerStream) {
        guard let handler = stream.handler, let context = stream.context else { return }
        let requests = RequestStream(maxBytes: configuration.perStreamInboundBytes)
        stream.requests = requests
        let side = HandlerSide(stream, context: context)
        switch handler {
        case .clientStreaming(let body):
            stream.task = handlerTasks.start {
                do {
                    side.completed(response: try await body(requests, context), error: nil)
                } catch {
                    side.completed(response: nil, error: error)
                }
            }
        case .bidirectional(let body):
            let writer = stream.makeWriter(for: side)
            stream.task = handlerTasks.start {
                do {
                    try await body(requests, writer, context)
                    side.completed(response: nil, error: nil)
                } catch {
                    side.completed(response: nil, error: error)
                }
            }
        default:
            preconditionFailure("unary-request handlers start at end of stream")
        }
    }
}

extension ServerStream {
    /// Refuses the call before any handler runs: a trailers-only response, or for an HTTP-level
    /// refusal (405, 415) that status with the gRPC status beside it and the message as text.
    func reject(_ status: Status, httpStatus: Int = 200) {
        if httpStatus == 200 {
            finish(status)
            return
        }
        respond(httpStatus: httpStatus, body: status.message + "\n",
                fields: [("grpc-status", String(status.code.rawValue)), ("grpc-message", PercentEncoding.encode(status.message))])
    }

    /// Request body bytes (DATA frames or an HTTP/1.1 body): decoded from base64 for
    /// grpc-web-text, cut into messages and handed to the call.
    func receive(_ bytes: UnsafeRawBufferPointer) {
        eventLoop.assertInEventLoop()
        guard !hasStatus, deframer != nil else { return }
        let allocator = connection.allocator
        if wire == .connectUnary {
            // The body is the message: kept whole, bounded like a gRPC message.
            var bytesBuffer = allocator.buffer(bytes: bytes)
            if connectBody == nil { connectBody = bytesBuffer } else { connectBody!.writeBuffer(&bytesBuffer) }
            if connectBody!.readableBytes > deframer!.maxMessageBytes {
                finish(Status(.resourceExhausted, "request body exceeds the limit of \(deframer!.maxMessageBytes) bytes"))
            }
            return
        }
        do {
            if textDecoder != nil {
                let decoded = try textDecoder!.decode(bytes)
                decoded.withUnsafeBytes { deframer!.append($0, allocator: allocator) }
            } else {
                deframer!.append(bytes, allocator: allocator)
            }
            while var message = try deframer!.next(allocator: allocator) {
                if let jsonCodec, let path = context?.head.path { message = try jsonCodec.request(fromJSON: message, path: path) }
                if let requests {
                    if requests.yield(message) == .acceptedFull { requestsFull = true }
                } else {
                    unaryRequestCount += 1
                    if unaryRequestCount > 1 {
                        throw RPCError(.internal, "a unary call received more than one request message")
                    }
                    unaryRequest = message
                    context?.requestWasCompressed = deframer!.lastWasCompressed
                }
            }
        } catch {
            finish(Self.status(for: error, connection: connection))
        }
    }

    /// The request body ended: a unary-request call starts, a streaming one sees the end.
    func requestDidEnd() {
        eventLoop.assertInEventLoop()
        guard !requestEnded else { return }
        requestEnded = true
        guard !hasStatus, let deframer else { return }
        do {
            try deframer.checkComplete()
            if let textDecoder, !textDecoder.isComplete {
                throw RPCError(.invalidArgument, "the grpc-web-text request body ends inside a base64 group")
            }
        } catch {
            finish(Self.status(for: error, connection: connection))
            return
        }
        if wire == .connectUnary {
            do {
                unaryRequest = try ConnectProtocol.decodeBody(connectBody, encoding: requestEncoding,
                                                              limit: deframer.maxMessageBytes, allocator: connection.allocator)
                if let jsonCodec, let path = context?.head.path {
                    unaryRequest = try jsonCodec.request(fromJSON: unaryRequest!, path: path)
                }
                connectBody = nil
            } catch {
                finish(Self.status(for: error, connection: connection))
                return
            }
        }
        if let requests {
            requests.finish()
        } else {
            connection.startUnary(self)
        }
    }
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
enum GRPCTimeout {
    static func parse(_ text: String) -> TimeAmount? {
        guard let unit = text.last, text.count >= 2, text.count <= 9,
              let value = Int64(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "H": return .hours(value)
        case "M": return .minutes(value)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }

    static func encode(_ amount: TimeAmount) -> String {
        let ns = max(0, amount.nanoseconds)
        if ns < 100_000_000 { return "\(ns)n" }
        if ns / 1_000 < 100_000_000 { return "\(ns / 1_000)u" }
        if ns / 1_000_000 < 100_000_000 { return "\(ns / 1_000_000)m" }
        return "\(ns / 1_000_000_000)S"
    }
}
