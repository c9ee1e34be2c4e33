// Decoding request bodies into protobuf-c messages and encoding responses, with the gRPC
// status a client should see when a body is not the message it claims to be.
import NIOCore
import PrismProto
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
