// The handler's side of a call: what its task may touch, fixed when the handler starts, and the
// only ways back to the call's event loop: response messages through a HandOff the loop polls,
// and the handler's outcome, which hops there.
import NIOCore
import PrismHandOff

/// What a handler's task holds of its call. Sendable by construction: `let`s only, the call
/// itself in a NIOLoopBound that checks it is only touched on its event loop.
final class HandlerSide: Sendable {
    let eventLoop: EventLoop
    private let stream: NIOLoopBound<ServerStream>
    private let wire: WireProtocol
    private let jsonCodec: (any JSONCodec)?
    private let context: ServerCallContext
    private let allocator: ByteBufferAllocator
    private let clientAcceptsGzip: Bool
    private let serverCompresses: Bool

    /// On the call's event loop, once dispatch has settled the wire protocol, codec and context.
    init(_ stream: ServerStream, context: ServerCallContext) {
        eventLoop = stream.eventLoop
        self.stream = NIOLoopBound(stream, eventLoop: stream.eventLoop)
        wire = stream.wire
        jsonCodec = stream.jsonCodec
        self.context = context
        allocator = stream.connection.allocator
        clientAcceptsGzip = stream.clientAcceptsGzip
        serverCompresses = stream.serverCompresses
    }

    /// The handler's task ended, with its response (unary-response calls) or nil (streaming).
    func completed(response: ByteBuffer?, error: Error?) {
        let stream = self.stream
        eventLoop.execute { stream.value.complete(response: response, error: error) }
    }

    // MARK: - Response messages (ResponseWriter)
    // nonisolated(nonsending): a message is framed and queued on the writer's own executor (the
    // stream's event loop, for a relay), with no executor switch per message.

    nonisolated(nonsending)
    func write(_ message: ByteBuffer, to responses: HandOff<ByteBuffer, Void>) async throws {
        if let jsonCodec {
            let json = try jsonCodec.response(toJSON: message, path: context.head.path)
            return try await push(MessageFramer.frame(json, encoding: .identity, allocator: allocator), to: responses)
        }
        try await push(MessageFramer.frame(message, encoding: responseEncoding(), allocator: allocator), to: responses)
    }

    /// A message serialized straight after its prefix; compressed responses take the usual path.
    nonisolated(nonsending)
    func write(size: Int, to responses: HandOff<ByteBuffer, Void>, _ serialize: (inout ByteBuffer) -> Void) async throws {
        let encoding = responseEncoding()
        var buffer = allocator.buffer(capacity: 5 + size)
        if encoding != .identity || jsonCodec != nil {
            serialize(&buffer)
            return try await write(buffer, to: responses)
        }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(size))
        serialize(&buffer)
        precondition(buffer.readableBytes == 5 + size, "a message serialized to other than its announced size")
        try await push(buffer, to: responses)
    }

    /// Hands a framed message to the loop; suspends while the stream's unsent bytes are over the cap.
    nonisolated(nonsending)
    private func push(_ framed: ByteBuffer, to responses: HandOff<ByteBuffer, Void>) async throws {
        let framed = wire.encode(framed, allocator: allocator)
        if await responses.send(framed) == .refused {
            throw RPCError(.cancelled, "the call has ended")
        }
    }

    /// Decided once per call by the context, so every message and the headers agree.
    private func responseEncoding() -> MessageEncoding {
        context.responseEncoding(clientAcceptsGzip: clientAcceptsGzip, serverDefault: serverCompresses)
    }
}
