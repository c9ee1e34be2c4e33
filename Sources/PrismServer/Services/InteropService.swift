// grpc.testing.TestService, gRPC's interop test service, served with `prism-server --interop`
// so that any gRPC implementation's interop client can prove Prism speaks real gRPC.
// Behaviour follows gRPC's interop test descriptions (sizes, echoed metadata, echoed status).
import NIOCore
import PrismProto
import PrismRPC

enum InteropService {
    static func definition() -> ServiceDefinition {
        var service = ServiceDefinition(name: "grpc.testing.TestService")
        service.add("EmptyCall", .unary { body, context in
            _ = try decodeRequest(grpc__testing__empty__init, body)
            echoMetadata(context)
            return emptyResponse(grpc__testing__empty__init)
        })
        service.add("UnaryCall", .unary(simpleCall))
        service.add("CacheableUnaryCall", .unary(simpleCall))
        service.add("StreamingOutputCall", .serverStreaming { body, context, writer in
            echoMetadata(context)
            let request = try decodeRequest(grpc__testing__streaming_output_call_request__init, body)
            try await respond(to: request, writer: writer)
        })
        service.add("StreamingInputCall", .clientStreaming { requests, context in
            echoMetadata(context)
            var total: Int32 = 0
            for try await body in requests {
                let request = try decodeRequest(grpc__testing__streaming_input_call_request__init, body)
                total += Int32(request.pointee.payload?.pointee.body.len ?? 0)
            }
            let builder = ProtoBuilder()
            let response = builder.message(grpc__testing__streaming_input_call_response__init)
            response.pointee.aggregated_payload_size = total
            return encodeResponse(builder, response)
        })
        service.add("FullDuplexCall", .bidirectional { requests, writer, context in
            echoMetadata(context)
            for try await body in requests {
                let request = try decodeRequest(grpc__testing__streaming_output_call_request__init, body)
                try await respond(to: request, writer: writer)
            }
        })
        service.add("HalfDuplexCall", .bidirectional { requests, writer, context in
            echoMetadata(context)
            var received: [ProtoMessage<Grpc__Testing__StreamingOutputCallRequest>] = []
            for try await body in requests {
                received.append(try decodeRequest(grpc__testing__streaming_output_call_request__init, body))
            }
            for request in received { try await respond(to: request, writer: writer) }
        })
        // UnimplementedCall is deliberately absent: the router answers UNIMPLEMENTED for it.
        return service
    }

    @Sendable
    private static func simpleCall(_ body: ByteBuffer, _ context: ServerCallContext) async throws -> ByteBuffer {
        echoMetadata(context)
        let request = try decodeRequest(grpc__testing__simple_request__init, body)
        if let expect = request.pointee.expect_compressed, expect.pointee.value != 0, !context.requestWasCompressed {
            throw RPCError(.invalidArgument, "expect_compressed is set but the request message was not compressed")
        }
        try throwEchoedStatus(request.pointee.response_status)
        if let compressed = request.pointee.response_compressed {
            context.setResponseCompression(compressed.pointee.value != 0)
        }
        let size = Int(request.pointee.response_size)
        guard size >= 0 else { throw RPCError(.invalidArgument, "response_size must not be negative") }
        let builder = ProtoBuilder()
        let response = builder.message(grpc__testing__simple_response__init)
        response.pointee.payload = payload(size: size, builder)
        return encodeResponse(builder, response)
    }

    /// Sends one response per `response_parameters` entry, then ends with the echoed status.
    private static func respond(to request: ProtoMessage<Grpc__Testing__StreamingOutputCallRequest>,
                                writer: ResponseWriter) async throws {
        let parameters = request.pointee
        // Responses of one size are identical: encode each size once per call.
        var encoded: [Int32: ByteBuffer] = [:]
        for i in 0..<parameters.n_response_parameters {
            let p = parameters.response_parameters[i]!.pointee
            if p.interval_us > 0 { try await Task.sleep(nanoseconds: UInt64(p.interval_us) * 1_000) }
            guard p.size >= 0 else { throw RPCError(.invalidArgument, "response size must not be negative") }
            let body = encoded[p.size] ?? {
                let builder = ProtoBuilder()
                let response = builder.message(grpc__testing__streaming_output_call_response__init)
                response.pointee.payload = payload(size: Int(p.size), builder)
                return encodeResponse(builder, response)
            }()
            encoded[p.size] = body
            try await writer.write(body)
        }
        try throwEchoedStatus(parameters.response_status)
    }

    private static func payload(size: Int, _ builder: ProtoBuilder) -> UnsafeMutablePointer<Grpc__Testing__Payload> {
        let payload = builder.message(grpc__testing__payload__init)
        payload.pointee.body = builder.bytes([UInt8](repeating: 0, count: size))
        return payload
    }

    /// The interop status tests ask the server to fail with a given code and message.
    private static func throwEchoedStatus(_ status: UnsafeMutablePointer<Grpc__Testing__EchoStatus>?) throws {
        guard let status, status.pointee.code != 0 else { return }
        let code = StatusCode(rawValue: Int(status.pointee.code)) ?? .unknown
        throw RPCError(code, String(protoC: status.pointee.message))
    }

    /// `x-grpc-test-echo-initial` comes back as a header, `x-grpc-test-echo-trailing-bin` as a trailer.
    private static func echoMetadata(_ context: ServerCallContext) {
        if let initial = context.metadata["x-grpc-test-echo-initial"] {
            context.addResponseHeader("x-grpc-test-echo-initial", initial)
        }
        if let trailing = context.metadata.binary("x-grpc-test-echo-trailing-bin") {
            context.addTrailer("x-grpc-test-echo-trailing-bin", binary: trailing)
        }
    }
}
