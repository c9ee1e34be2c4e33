// Turning a request's header block into a running call: HTTP and gRPC validation, routing,
// `grpc-timeout` deadlines, interceptors, and starting the handler in the right shape.
import CNGHTTP2
import NIOCore

extension HTTP2ServerConnection {
    func dispatch(_ stream: ServerStream) {
        if stream.headersTooLarge {
            stream.reject(Status(.resourceExhausted, "request header list exceeds the limit of \(configuration.maxHeaderListBytes) bytes"))
            return
        }
        let request = stream.request
        let (method, path, contentType, encoding, timeout) =
            (request.method, request.path, request.contentType, request.encoding, request.timeout)
        guard method == "POST" else {
            stream.reject(Status(.unimplemented, "HTTP method \(method) is not supported; gRPC uses POST"), httpStatus: 405)
            return
        }
        guard contentType.hasPrefix("application/grpc"),
              contentType.count == 16 || contentType.dropFirst(16).first == "+" || contentType.dropFirst(16).first == ";" else {
            stream.reject(Status(.invalidArgument, "content-type '\(contentType)' is not gRPC; expected application/grpc"), httpStatus: 415)
            return
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
        let requestEncoding: MessageEncoding
        switch encoding {
        case "", "identity": requestEncoding = .identity
        case "gzip": requestEncoding = .gzip
        default:
            stream.reject(Status(.unimplemented, "message encoding '\(encoding)' is not supported; use gzip or identity"))
            return
        }
        var deadline: NIODeadline?
        if let timeout {
            guard let amount = GRPCTimeout.parse(timeout) else {
                stream.reject(Status(.invalidArgument, "malformed grpc-timeout '\(timeout)'"))
                return
            }
            deadline = .now() + amount
        }

        let handler = route.handler
        let head = CallHead(path: path, service: route.service, method: route.method,
                            metadata: Metadata.fromWire(request.metadata), peer: peerDescription, deadline: deadline)
        stream.request = RequestHeaders()
        stream.context = ServerCallContext(head: head, eventLoop: context.eventLoop)
        do {
            for interceptor in router.interceptors {
                stream.interceptorsEntered += 1
                try interceptor.accept(head)
            }
        } catch {
            stream.finish(ServerStream.status(for: error, connection: self))
            return
        }

        stream.handler = handler
        stream.deframer = MessageDeframer(maxMessageBytes: configuration.maxReceiveMessageBytes, encoding: requestEncoding)
        stream.clientAcceptsGzip = request.acceptEncoding.split(separator: ",").contains { $0.filter { $0 != " " } == "gzip" }
        if let deadline {
            // Strong captures here and below: a weak reference would move the object's reference
            // counts to a side table and slow every retain and release. Both are cut when the
            // call ends (the timer is cancelled, `requests` dropped).
            stream.deadlineTimer = context.eventLoop.scheduleTask(deadline: deadline) {
                stream.finish(Status(.deadlineExceeded, "deadline exceeded (grpc-timeout \(timeout ?? ""))"))
            }
        }
        if !handler.isUnaryRequest { startStreaming(stream) }
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
            stream.task = handlerTasks.start {
                do {
                    stream.handlerCompleted(response: try await body(request, context), error: nil)
                } catch {
                    stream.handlerCompleted(response: nil, error: error)
                }
            }
        case .serverStreaming(let body):
            stream.task = handlerTasks.start {
                do {
                    try await body(request, context, ResponseWriter(stream: stream))
                    stream.handlerCompleted(response: nil, error: nil)
                } catch {
                    stream.handlerCompleted(response: nil, error: error)
                }
            }
        case .clientStreaming, .bidirectional:
            preconditionFailure("streaming-request handlers start at dispatch")
        }
    }

    /// A streaming-request call starts at once and reads its messages as they come.
    private func startStreaming(_ stream: ServerStream) {
        guard let handler = stream.handler, let context = stream.context else { return }
        let loop = self.context.eventLoop
        let requests = RequestStream(onDrained: {
            loop.execute { stream.connection.resumeInbound(stream) }
        })
        stream.requests = requests
        switch handler {
        case .clientStreaming(let body):
            stream.task = handlerTasks.start {
                do {
                    stream.handlerCompleted(response: try await body(requests, context), error: nil)
                } catch {
                    stream.handlerCompleted(response: nil, error: error)
                }
            }
        case .bidirectional(let body):
            stream.task = handlerTasks.start {
                do {
                    try await body(requests, ResponseWriter(stream: stream), context)
                    stream.handlerCompleted(response: nil, error: nil)
                } catch {
                    stream.handlerCompleted(response: nil, error: error)
                }
            }
        default:
            preconditionFailure("unary-request handlers start at end of stream")
        }
    }
}

extension ServerStream {
    /// Refuses the call before any handler runs, with a trailers-only response.
    func reject(_ status: Status, httpStatus: Int = 200) {
        if httpStatus == 200 {
            finish(status)
            return
        }
        guard !hasStatus else { return }
        finalStatus = status
        headersSent = true
        var fields = [(":status", String(httpStatus)), ("content-type", "application/grpc"),
                      ("grpc-status", String(status.code.rawValue))]
        fields.append(("grpc-message", PercentEncoding.encode(status.message)))
        connection.session.submitHeaders(streamID: id, HeaderBlock(nil, fields), withBody: false)
        connection.scheduleFlush()
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
