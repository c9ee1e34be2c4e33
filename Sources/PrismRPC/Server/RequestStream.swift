// The request messages of a client-streaming or bidirectional call, as an async sequence.
// The connection offers them on its event loop into a HandOff; the handler drains it from its
// task. When the handler falls behind, the connection stops returning HTTP/2 flow-control credit.
import NIOCore
import PrismHandOff

public final class RequestStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// Messages in, then the end: nil when the client half-closed, or the error the handler's
    /// loop throws. Budgeted by bytes (the per-stream inbound limit), never blocking the loop.
    let messages: HandOff<ByteBuffer, (any Error)?>

    /// `maxBytes`: buffered bytes above which `yield` answers `.acceptedFull`.
    init(maxBytes: Int) {
        messages = HandOff(maxCount: Int.max, maxBytes: maxBytes, size: { $0.readableBytes })
    }

    /// Adds a message. Called on the event loop; `.acceptedFull` means the handler is behind
    /// (hold back credit, and `whenRoom` says when to return it).
    @discardableResult
    func yield(_ message: ByteBuffer) -> HandOff<ByteBuffer, (any Error)?>.Acceptance {
        messages.offer(message)
    }

    /// Ends the sequence, cleanly (`nil`) or with an error the handler's loop will throw, after
    /// the messages already buffered. The first end stands.
    func finish(_ error: Error? = nil) {
        messages.finish(error)
    }

    fileprivate func next() async throws -> ByteBuffer? {
        switch await messages.nextUnlessCancelled() {
        case .element(let message): return message
        case .end(nil): return nil
        case .end(let error?): throw error
        case nil: throw CancellationError()
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: RequestStream
        public mutating func next() async throws -> ByteBuffer? {
            try await stream.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(stream: self)
    }
}

/// Sends response messages of a streaming call. `write` suspends while the stream's unsent
/// bytes are over the per-stream cap, so a slow reader holds the handler, not memory.
public struct ResponseWriter: Sendable {
    let side: HandlerSide
    let responses: HandOff<ByteBuffer, Void>

    nonisolated(nonsending)
    public func write(_ message: ByteBuffer) async throws {
        try await side.write(message, to: responses)
    }

    /// Writes a message of exactly `size` bytes that `serialize` appends to the buffer it is
    /// given, which already holds the message's gRPC prefix: one buffer and no copy per message,
    /// for a handler streaming many small ones (Generate's text deltas).
    nonisolated(nonsending)
    public func write(size: Int, _ serialize: (inout ByteBuffer) -> Void) async throws {
        try await side.write(size: size, to: responses, serialize)
    }
}
