// The hand-off of response messages from a handler's task to its stream's event loop. Writes
// append under a lock and only the first write of a batch schedules a hop, so a handler
// streaming many small messages costs one event-loop task per batch, not one per message.
// It also keeps the per-stream cap: a writer waits while too many bytes are unsent.
import NIOConcurrencyHelpers
import NIOCore

final class ResponseQueue: @unchecked Sendable {
    // Everything below is guarded by `lock`.
    private let lock = NIOLock()
    private var messages: [ByteBuffer] = []
    private var drainScheduled = false
    /// Bytes written and not yet handed to nghttp2 (queued here or in the stream's outbound).
    private var unsentBytes = 0
    private var waiter: CheckedContinuation<Void, Error>?
    private var ended: RPCError?
    /// Unsent bytes above which writers wait; they resume below half of it.
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Queues a framed message. Returns whether the caller must schedule a drain on the event
    /// loop (first message of a batch) and whether it must then wait for the cap.
    func push(_ framed: ByteBuffer) throws -> (scheduleDrain: Bool, overCapacity: Bool) {
        try lock.withLock {
            if let ended { throw ended }
            messages.append(framed)
            unsentBytes += framed.readableBytes
            let schedule = !drainScheduled
            drainScheduled = true
            return (schedule, unsentBytes > capacity)
        }
    }

    /// Suspends until the unsent bytes fall to half the capacity (or the call ends).
    func waitForRoom() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let outcome: Result<Void, Error>? = lock.withLock {
                if let ended { return .failure(ended) }
                if unsentBytes <= capacity / 2 { return .success(()) }
                waiter = continuation  // one writer per stream: handlers do not write concurrently
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// On the event loop: every message queued so far, in order.
    func takeAll() -> [ByteBuffer] {
        lock.withLock {
            let batch = messages
            messages = []
            drainScheduled = false
            return batch
        }
    }

    /// Counts bytes queued on the event loop directly (a unary response).
    func added(_ bytes: Int) {
        lock.withLock { unsentBytes += bytes }
    }

    /// On the event loop: `bytes` went to nghttp2; wakes a waiting writer if there is room.
    func sent(_ bytes: Int) {
        let ready: CheckedContinuation<Void, Error>? = lock.withLock {
            unsentBytes -= bytes
            guard unsentBytes <= capacity / 2, let waiter else { return nil }
            self.waiter = nil
            return waiter
        }
        ready?.resume()
    }

    /// The call is over: queued messages are dropped, a waiting or later writer gets `error`.
    func end(_ error: RPCError) {
        let waiting: CheckedContinuation<Void, Error>? = lock.withLock {
            guard ended == nil else { return nil }
            ended = error
            messages = []
            let w = waiter
            waiter = nil
            return w
        }
        waiting?.resume(throwing: error)
    }
}
