// Decoding request bodies into protobuf-c messages and encoding responses, with the gRPC
// status a client should see when a body is not the message it claims to be.
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC

/// Decodes a request body, or throws `INVALID_ARGUMENT` naming the expected message type.
func decodeRequest<Message>(_ initializer: ProtoInitializer<Message>, _ body: ByteBuffer) throws -> ProtoMessage<Message> {
    do {
        return try ProtoMessage(initializer, buffer: body)
    } catch let error as ProtoError {
        throw RPCError(.invalidArgument, "request is not a valid message: \(error)")
    }
}

/// Encodes a message built in `builder` into a ByteBuffer ready to send.
func encodeResponse<Message>(_ builder: ProtoBuilder, _ message: UnsafePointer<Message>) -> ByteBuffer {
    var buffer = ByteBuffer()
    builder.pack(message, into: &buffer)
    return buffer
}

/// Encodes a message with no fields set, of the type `initializer` makes.
func emptyResponse<Message>(_ initializer: ProtoInitializer<Message>) -> ByteBuffer {
    let builder = ProtoBuilder()
    return encodeResponse(builder, builder.message(initializer))
}

extension ProtoBuilder {
    /// prism.v1.RouteInfo of the host's RouteInfo (the first event of every answer).
    func routeInfo(_ info: RouteInfo) -> UnsafeMutablePointer<Prism__V1__RouteInfo> {
        let r = message(prism__v1__route_info__init)
        r.pointee.provider = string(info.provider)
        r.pointee.model = string(info.model)
        r.pointee.n_adaptations = info.adaptations.count
        r.pointee.adaptations = strings(info.adaptations)
        r.pointee.attempt = UInt32(info.attempt)
        r.pointee.cache_hit = info.cacheHit ? 1 : 0
        return r
    }

    /// prism.v1.Usage of the host's Usage.
    func usage(_ usage: Usage) -> UnsafeMutablePointer<Prism__V1__Usage> {
        let u = message(prism__v1__usage__init)
        u.pointee.input_tokens = usage.inputTokens
        u.pointee.output_tokens = usage.outputTokens
        u.pointee.image_tokens = usage.imageTokens
        u.pointee.audio_seconds = usage.audioSeconds
        u.pointee.cost_usd_micros = usage.costUSDMicros
        u.pointee.cache_read_tokens = usage.cacheReadTokens
        u.pointee.cache_write_tokens = usage.cacheWriteTokens
        u.pointee.saved_usd_micros = usage.savedUSDMicros
        return u
    }
}
