// The request messages of a client-streaming or bidirectional call, as an async sequence.
// The connection fills it on its event loop; the handler drains it from its task. When the
// handler falls behind, the connection stops returning HTTP/2 flow-control credit.
import NIOConcurrencyHelpers
import NIOCore

public final class RequestStream: AsyncSequence, @unchecked Sendable {
    public typealias Element = ByteBuffer

    private let lock = NIOLock()
    // Guarded by `lock`.
    private var buffered = CircularBuffer<ByteBuffer>()
    private var bufferedBytes = 0
    private var ended: Error?? = nil  // .some(nil): clean end; .some(error): failed
    private var waiter: CheckedContinuation<ByteBuffer?, Error>?
    private var wakeBelow: Int?
    /// Called (outside the lock, on the consumer's thread) when the buffer drained below the
    /// mark set by `yield(_:wakeWhenBelow:)`.
    private let onDrained: @Sendable () -> Void

    init(onDrained: @escaping @Sendable () -> Void) {
        self.onDrained = onDrained
    }

    /// Adds a message; returns the bytes now buffered. Called on the event loop.
    @discardableResult
    func yield(_ message: ByteBuffer) -> Int {
        let waiter: CheckedContinuation<ByteBuffer?, Error>? = lock.withLock {
            if let w = self.waiter {
                self.waiter = nil
                return w
            }
            buffered.append(message)
            bufferedBytes += message.readableBytes
            return nil
        }
        waiter?.resume(returning: message)
        return bufferedByteCount
    }

    /// Bytes of messages waiting for the handler.
    var bufferedByteCount: Int { lock.withLock { bufferedBytes } }

    /// Asks for `onDrained` once the buffer holds fewer than `bytes`.
    func wakeWhenBelow(_ bytes: Int) {
        lock.withLock { wakeBelow = bytes }
    }

    /// Ends the sequence, cleanly (`nil`) or with an error the handler's loop will throw.
    func finish(_ error: Error? = nil) {
        let waiter: CheckedContinuation<ByteBuffer?, Error>? = lock.withLock {
            guard ended == nil else { return nil }
            ended = .some(error)
            let w = self.waiter
            self.waiter = nil
            return w
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    fileprivate func next() async throws -> ByteBuffer? {
        enum Take { case message(ByteBuffer, wake: Bool), end(Error?), wait }
        let take: Take = lock.withLock {
            if let message = buffered.popFirst() {
                bufferedBytes -= message.readableBytes
                var wake = false
                if let mark = wakeBelow, bufferedBytes < mark {
                    wakeBelow = nil
                    wake = true
                }
                return .message(message, wake: wake)
            }
            if let ended { return .end(ended) }
            return .wait
        }
        switch take {
        case .message(let message, let wake):
            if wake { onDrained() }
            return message
        case .end(let error):
            if let error { throw error }
            return nil
        case .wait:
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let ready: Take? = lock.withLock {
                        if let message = buffered.popFirst() {
                            bufferedBytes -= message.readableBytes
                            return .message(message, wake: false)
                        }
                        if let ended { return .end(ended) }
                        if Task.isCancelled { return .end(CancellationError()) }
                        waiter = continuation
                        return nil
                    }
                    switch ready {
                    case .message(let m, _): continuation.resume(returning: m)
                    case .end(let e?): continuation.resume(throwing: e)
                    case .end(nil): continuation.resume(returning: nil)
                    default: break
                    }
                }
            } onCancel: {
                let waiter: CheckedContinuation<ByteBuffer?, Error>? = lock.withLock {
                    let w = self.waiter
                    self.waiter = nil
                    return w
                }
                waiter?.resume(throwing: CancellationError())
            }
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
    let stream: ServerStream

    public func write(_ message: ByteBuffer) async throws {
        try await stream.write(message)
    }

    /// Writes a message of exactly `size` bytes that `serialize` appends to the buffer it is
    /// given, which already holds the message's gRPC prefix: one buffer and no copy per message,
    /// for a handler streaming many small ones (Generate's text deltas).
    public func write(size: Int, _ serialize: (inout ByteBuffer) -> Void) async throws {
        try await stream.write(size: size, serialize)
    }
}
