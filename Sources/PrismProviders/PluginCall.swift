// One call into a plugin, as both sides see it: the prism_call handle the plugin emits into and
// finishes (from its worker thread), and the async sequence of events the service reads. The
// bounded buffer between them is the backpressure: emit blocks while the reader is behind.
// A call with streamed input also holds its reader of that input (host->read_input).
import CPrismPlugin
import Foundation
import Logging

/// A running plugin call. Read it with `next()` until it returns `.end`; cancel it with `cancel()`
/// (the reading task's cancellation does that too).
public final class PluginCall: @unchecked Sendable {
    /// How a call ended.
    public struct End: Sendable, Equatable {
        /// The plugin's prism_status (gRPC numbering); PRISM_STATUS_OK for a complete answer.
        public var status: Int32
        public var message: String
        /// Whether trying again (later, or elsewhere) may succeed.
        public var retryable: Bool
        public var retryAfterMilliseconds: UInt64
        /// The host gave up waiting after a cancel: the plugin ignored it.
        public var abandoned: Bool

        public var isOK: Bool { status == Int32(PRISM_STATUS_OK.rawValue) && !abandoned }
    }

    /// One step of reading a call.
    public enum Step: Sendable {
        case event(ProviderEvent)
        case end(End)
    }

    public let model: ModelCapability
    public let requestID: String
    let plugin: LoadedPlugin
    private let maxEvents: Int
    private let maxBytes: Int
    private let cancelGrace: Double
    private let onAbandon: @Sendable () -> Void
    private let onPeak: @Sendable (Int) -> Void
    /// This call's place in its streamed input; nil for a call whose input is all in the request.
    private let input: StreamedAudio.Reader?

    // All below is guarded by `condition`.
    private let condition = NSCondition()
    private var buffer: [ProviderEvent] = []
    private var head = 0
    private var bufferedBytes = 0
    private var waiter: UnsafeContinuation<Step, Never>?
    private var cancelled = false
    private var finished: End?
    private var abandoned = false
    private var startReturned = false
    private var released = false
    private var errorDetail: (retryable: Bool, retryAfter: UInt64)?
    private var malformedEvent = false
    /// The host's own reference for the plugin's handle, dropped once the call is released.
    private var keepAlive: Unmanaged<PluginCall>?

    init(plugin: LoadedPlugin, model: ModelCapability, requestID: String, maxEvents: Int, maxBytes: Int, cancelGrace: Double,
         input: StreamedAudio? = nil, onAbandon: @escaping @Sendable () -> Void, onPeak: @escaping @Sendable (Int) -> Void) {
        self.input = input?.reader()
        self.plugin = plugin
        self.model = model
        self.requestID = requestID
        self.maxEvents = max(1, maxEvents)
        self.maxBytes = max(1, maxBytes)
        self.cancelGrace = cancelGrace
        self.onAbandon = onAbandon
        self.onPeak = onPeak
        self.keepAlive = Unmanaged.passRetained(self)
    }

    /// The opaque handle the plugin sees: this object, kept alive by the host until the call
    /// has both finished and returned from start_call.
    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ handle: OpaquePointer?) -> PluginCall? {
        guard let handle else { return nil }
        return Unmanaged<PluginCall>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    // MARK: - The plugin's side (any thread)

    /// host->emit: decode, then wait for room unless the call was cancelled.
    func emit(_ bytes: UnsafeRawBufferPointer) -> prism_status {
        guard let event = Self.textEvent(bytes) ?? ProviderEvent(serialized: bytes) else {
            condition.lock()
            if finished == nil { malformedEvent = true; cancelled = true }
            condition.unlock()
            condition.broadcast()
            plugin.log(.error, "request \(requestID): emitted bytes that are not a prism.plugin.v1.ProviderEvent; the call fails as INTERNAL")
            return PRISM_STATUS_INVALID_ARGUMENT
        }
        condition.lock()
        guard finished == nil else {
            condition.unlock()
            return PRISM_STATUS_FAILED_PRECONDITION
        }
        if case let .error(_, retryable, retryAfter, _) = event {
            errorDetail = (retryable, retryAfter)
            condition.unlock()
            return PRISM_STATUS_OK
        }
        // Backpressure: wait while the buffer is full. An oversized event still goes through
        // when the buffer is empty, so it cannot block forever.
        while !cancelled && (buffer.count - head >= maxEvents || (head < buffer.count && bufferedBytes + event.byteCount > maxBytes)) {
            condition.wait()
        }
        if cancelled {
            condition.unlock()
            return PRISM_STATUS_CANCELLED
        }
        let reader = waiter
        if reader != nil {
            waiter = nil
        } else {
            buffer.append(event)
            bufferedBytes += event.byteCount
            onPeak(buffer.count - head)
        }
        condition.unlock()
        // Resumed after the lock is released (see takeDueEnd): never resume a reader holding it.
        reader?.resume(returning: .event(event))
        return PRISM_STATUS_OK
    }

    /// A ProviderEvent that is just a text delta, `{text: {text: "…"}}` (fields 1 and 1, the
    /// bytes every Swift plugin writes for one), decoded without protobuf-c's allocations; nil
    /// for any other bytes, and for text that is not valid UTF-8 or holds a NUL: those take the
    /// full decoder, so that its rules stay the only ones.
    static func textEvent(_ bytes: UnsafeRawBufferPointer) -> ProviderEvent? {
        /// A varint at `i` of at most 4 bytes (256 MiB, more than any event), and the index after it.
        func varint(_ i: Int) -> (value: Int, next: Int)? {
            var value = 0
            for k in 0..<4 where i + k < bytes.count {
                let b = bytes[i + k]
                value |= Int(b & 0x7F) << (7 * k)
                if b < 0x80 { return (value, i + k + 1) }
            }
            return nil
        }
        guard bytes.count >= 2, bytes[0] == 0x0A, let outer = varint(1), outer.next + outer.value == bytes.count else { return nil }
        if outer.value == 0 { return .text("") }
        guard bytes[outer.next] == 0x0A, let inner = varint(outer.next + 1), inner.next + inner.value == bytes.count else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: bytes[inner.next...])
        guard memchr(text.baseAddress!, 0, text.count) == nil, let string = String(validating: text.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else { return nil }
        return .text(string)
    }

    /// host->finish: record the outcome; the reader sees it after the buffered events.
    func finish(status: prism_status, message: String) {
        condition.lock()
        guard finished == nil else {
            condition.unlock()
            plugin.log(.error, "request \(requestID): finish called twice; the second is ignored")
            return
        }
        let code = Int32(status.rawValue)
        var end = End(status: code, message: message, retryable: Self.isRetryable(code), retryAfterMilliseconds: 0, abandoned: false)
        if let detail = errorDetail {
            end.retryable = end.retryable || detail.retryable
            end.retryAfterMilliseconds = detail.retryAfter
        }
        if malformedEvent {
            end = End(status: Int32(PRISM_STATUS_INTERNAL.rawValue), message: "plugin emitted an event that is not a ProviderEvent",
                      retryable: false, retryAfterMilliseconds: 0, abandoned: false)
        } else if code == Int32(PRISM_STATUS_OK.rawValue) && cancelled && !abandoned {
            end.status = Int32(PRISM_STATUS_CANCELLED.rawValue)
        }
        finished = end
        // The plugin is done reading: the producer no longer waits for this call.
        input?.close()
        let due = takeDueEnd()
        let release = startReturned && !released
        if release { released = true }
        condition.unlock()
        condition.broadcast()
        if let due { due.waiter.resume(returning: .end(due.end)) }
        if release { releaseCall() }
    }

    /// host->read_input: blocks the plugin's thread (never an event loop) until input arrives,
    /// ends, or the call is cancelled; see prism_plugin.h for the statuses.
    func readInput(into buffer: UnsafeMutableRawBufferPointer, count: inout Int) -> prism_status {
        count = 0
        let state = condition.withLock { (finished == nil, cancelled) }
        guard state.0, let input else { return PRISM_STATUS_FAILED_PRECONDITION }
        if state.1 { return PRISM_STATUS_CANCELLED }
        guard buffer.count > 0, buffer.baseAddress != nil else { return PRISM_STATUS_INVALID_ARGUMENT }
        switch input.read(into: buffer) {
        case .bytes(let n):
            count = n
            return PRISM_STATUS_OK
        case .ended:
            return PRISM_STATUS_OK
        case .cancelled:
            return PRISM_STATUS_CANCELLED
        }
    }

    /// host->is_cancelled.
    var isCancelled: Bool { condition.withLock { cancelled } }

    /// Called by the worker once start_call has returned.
    func startCallReturned() {
        condition.lock()
        startReturned = true
        let release = finished != nil && !released
        if release { released = true }
        condition.unlock()
        if release { releaseCall() }
    }

    /// Both finish and start_call's return have happened: the plugin is done with the handle.
    private func releaseCall() {
        plugin.callEnded()
        let keep = condition.withLock { () -> Unmanaged<PluginCall>? in
            defer { keepAlive = nil }
            return keepAlive
        }
        keep?.release()
    }

    // MARK: - The host's side

    /// The next event, or the end. Cancelling the reading task cancels the call.
    public func next() async -> Step {
        // An event already buffered (the reader fell behind) is taken without suspending.
        if !Task.isCancelled, let event = condition.withLock({ takeBuffered() }) {
            condition.broadcast()
            return .event(event)
        }
        return await withTaskCancellationHandler {
            // Unsafe rather than checked: the waiter is resumed exactly once, by whoever takes it
            // out under the lock, and the checked kind costs an allocation per event.
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Step, Never>) in
                condition.lock()
                if let event = takeBuffered() {
                    condition.unlock()
                    condition.broadcast()
                    continuation.resume(returning: .event(event))
                } else if let end = currentEnd() {
                    condition.unlock()
                    continuation.resume(returning: .end(end))
                } else {
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            self.cancel()
        }
    }

    /// The first buffered event, unless the call was cancelled and has ended. Caller holds the
    /// lock, and broadcasts after releasing it when this returned an event (there is room now).
    private func takeBuffered() -> ProviderEvent? {
        guard head < buffer.count && !(cancelled && finished != nil) else { return nil }
        let event = buffer[head]
        head += 1
        bufferedBytes -= event.byteCount
        if head > 64 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
        return event
    }

    /// Stops the call: emit starts failing, the plugin's cancel runs, and a plugin that has not
    /// finished within the grace period is abandoned.
    public func cancel() {
        condition.lock()
        guard !cancelled, finished == nil else {
            condition.unlock()
            return
        }
        cancelled = true
        condition.unlock()
        condition.broadcast()
        input?.cancel()
        plugin.cancel(self)
        DispatchQueue.global().asyncAfter(deadline: .now() + cancelGrace) { [self] in abandonIfUnfinished() }
    }

    private func abandonIfUnfinished() {
        condition.lock()
        guard finished == nil, !abandoned else {
            condition.unlock()
            return
        }
        abandoned = true
        input?.close()
        buffer.removeAll()
        head = 0
        bufferedBytes = 0
        let due = takeDueEnd()
        condition.unlock()
        if let due { due.waiter.resume(returning: .end(due.end)) }
        plugin.log(.warning, "request \(requestID): ignored cancellation for \(cancelGrace)s; abandoned (its result will be discarded)")
        onAbandon()
    }

    /// The end the reader should see now, if any. Caller holds the lock.
    private func currentEnd() -> End? {
        if abandoned {
            return End(status: Int32(PRISM_STATUS_CANCELLED.rawValue), message: "the plugin ignored cancellation and was abandoned",
                       retryable: false, retryAfterMilliseconds: 0, abandoned: true)
        }
        guard let finished, head >= buffer.count || cancelled else { return nil }
        return finished
    }

    /// The waiting reader and the end it is due, taken out of the call; nil while the end is not
    /// due or nobody waits. Caller holds the lock, and resumes the reader after releasing it.
    ///
    /// Never resume the reader with the lock held: the runtime runs the reading task's
    /// cancellation handler (which calls `cancel()` and so waits for this lock) under the task's
    /// status lock, which resuming that task (with an executor preference) may need too. An event
    /// loop cancelling a call at the moment its plugin finishes, both on the call's deadline,
    /// could then deadlock with the plugin's thread. The rest of the host resumes unlocked too.
    private func takeDueEnd() -> (waiter: UnsafeContinuation<Step, Never>, end: End)? {
        guard let waiter, let end = currentEnd() else { return nil }
        self.waiter = nil
        return (waiter, end)
    }

    /// Rate limits, overload and timeouts are worth another try.
    static func isRetryable(_ status: Int32) -> Bool {
        [PRISM_STATUS_RATE_LIMITED, PRISM_STATUS_UNAVAILABLE, PRISM_STATUS_DEADLINE_EXCEEDED].map { Int32($0.rawValue) }.contains(status)
    }
}
