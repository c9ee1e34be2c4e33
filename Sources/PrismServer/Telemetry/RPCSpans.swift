// A server span around every call of a traced service (`prism.v1.Prism/Generate`), child of the
// client's W3C `traceparent` from the request metadata, whichever protocol carried it (gRPC,
// gRPC-Web, Connect): the spans of planning, adaptation and provider calls nest inside it.
import PrismRPC
import Tracing

enum RPCSpans {
    /// `definition` with each handler run inside a server span; unchanged when no tracer is
    /// bootstrapped, so untraced servers pay nothing per call.
    static func traced(_ definition: ServiceDefinition) -> ServiceDefinition {
        guard TraceExport.isBootstrapped else { return definition }
        var traced = ServiceDefinition(name: definition.name)
        for (method, handler) in definition.methods {
            traced.add(method, wrap(handler))
        }
        return traced
    }

    private static func wrap(_ handler: RPCHandler) -> RPCHandler {
        switch handler {
        case .unary(let run):
            return .unary { body, call in try await span(call) { try await run(body, call) } }
        case .unaryOnEventLoop(let run):
            return .unaryOnEventLoop { body, call in try syncSpan(call) { try run(body, call) } }
        case .serverStreaming(let run):
            return .serverStreaming { body, call, writer in try await span(call) { try await run(body, call, writer) } }
        case .clientStreaming(let run):
            return .clientStreaming { requests, call in try await span(call) { try await run(requests, call) } }
        case .bidirectional(let run):
            return .bidirectional { requests, writer, call in try await span(call) { try await run(requests, writer, call) } }
        }
    }

    /// Runs `body` as the current span of a new server span for `call`, ended with its outcome.
    private static func span<T>(_ call: ServerCallContext, _ body: () async throws -> T) async throws -> T {
        let span = start(call)
        defer { span.end() }
        do {
            let result = try await ServiceContext.withValue(span.context) { try await body() }
            finish(span, .ok)
            return result
        } catch {
            finish(span, Status.of(handlerError: error) ?? Status(.internal, "internal error"))
            throw error
        }
    }

    private static func syncSpan<T>(_ call: ServerCallContext, _ body: () throws -> T) throws -> T {
        let span = start(call)
        defer { span.end() }
        do {
            let result = try ServiceContext.withValue(span.context) { try body() }
            finish(span, .ok)
            return result
        } catch {
            finish(span, Status.of(handlerError: error) ?? Status(.internal, "internal error"))
            throw error
        }
    }

    /// A server span named after the method, as OpenTelemetry's RPC conventions ask, whose parent
    /// is the caller's span when the request carried a W3C trace context.
    private static func start(_ call: ServerCallContext) -> any Span {
        var parent = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(call.metadata, into: &parent, using: MetadataExtractor())
        let head = call.head
        let span = InstrumentationSystem.tracer.startSpan("\(head.service)/\(head.method)", context: parent, ofKind: .server)
        span.attributes["rpc.system"] = "grpc"
        span.attributes["rpc.service"] = head.service
        span.attributes["rpc.method"] = head.method
        span.attributes["prism.rpc.peer"] = head.peer  // NIO's text of the remote address, as in the logs
        // The call's log line is written on the event loop after the span: it gets the ids here.
        let ids = ServiceContext.withValue(span.context) { TraceExport.logMetadata.get() }
        for key in ["trace_id", "span_id"] {
            if let id = ids[key] { head.logFields.set(key, "\(id)") }
        }
        return span
    }

    /// The call's status on its span: `rpc.grpc.status_code` always, and an error status for the
    /// codes the RPC conventions count as server errors (a client's bad request is not one).
    private static func finish(_ span: any Span, _ status: Status) {
        span.attributes["rpc.grpc.status_code"] = status.code.rawValue
        switch status.code {
        case .unknown, .deadlineExceeded, .unimplemented, .internal, .unavailable, .dataLoss:
            span.setStatus(SpanStatus(code: .error, message: "\(status.code): \(status.message)"))
        default:
            break
        }
    }
}

/// Reads W3C trace fields (`traceparent`, `tracestate`) from a call's request metadata.
struct MetadataExtractor: Extractor {
    func extract(key: String, from carrier: Metadata) -> String? {
        carrier[key]
    }
}
