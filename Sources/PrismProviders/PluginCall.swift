// One call into a plugin, as both sides see it: the prism_call handle the plugin emits into and
// finishes (from its worker thread), and the async sequence of events the service reads. The
// bounded buffer between them is the backpressure: emit blocks while the reader is behind.
// A call with streamed input also holds its reader of that input (host->read_input).
// Threads: emit/finish/read_input/is_cancelled on any plugin thread; next() on the reading task;
// cancel on any host thread. Its life is one `State` changed only by `apply` under `condition`.
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

    /// The call's life. Every change is made by `apply`, under `condition`:
    ///
    ///     running ──cancel──▶ cancelled ──grace passed──▶ abandoned
    ///        │  ╲──malformed event──▶ cancelled(malformed) │
    ///        └────────┴──────── finish ───────────────────┴──▶ finished(end)
    enum State: Equatable {
        /// The plugin works; emit is accepted.
        case running
        /// The host stopped the call (the client cancelled, or the plugin emitted bytes that are
        /// not a ProviderEvent: `malformed`, which fails it as INTERNAL); the plugin has not finished.
        case cancelled(malformed: Bool)
        /// Cancelled and unfinished past the grace period: the reader has had its end; the
        /// plugin's finish, whenever it comes, only releases the call.
        case abandoned
        /// The plugin finished. `cancelled`: the host had stopped it first, so buffered events
        /// are dropped and the end is due at once.
        case finished(End, cancelled: Bool)
    }

    /// What happens to a call; `apply` says which change each causes in each state.
    private enum Change {
        case malformedEvent
        case cancel
        case abandon
        case finish(End)
    }

    // All below is guarded by `condition`.
    private let condition = NSCondition()
    private var state = State.running
    /// Why the plugin still needs the handle: start_call not yet returned, finish not yet
    /// called, and each cancel running in the plugin. At zero the call is released (and the
    /// plugin's in-flight count with it), so the library is never unloaded under a running cancel.
    private var pluginHolds = 2
    private var buffer: [ProviderEvent] = []
    private var head = 0
    private var bufferedBytes = 0
    private var waiter: UnsafeContinuation<Step, Never>?
    private var errorDetail: (retryable: Bool, retryAfter: UInt64)?
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
            apply(.malformedEvent)
            condition.unlock()
            condition.broadcast()
            plugin.log(.error, "request \(requestID): emitted bytes that are not a prism.plugin.v1.ProviderEvent; the call fails as INTERNAL")
            return PRISM_STATUS_INVALID_ARGUMENT
        }
        condition.lock()
        if case .finished = state {
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
        while !stopped && (buffer.count - head >= maxEvents || (head < buffer.count && bufferedBytes + event.byteCount > maxBytes)) {
            condition.wait()
        }
        if stopped {
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

    /// host->finish: record the outcome; the reader sees it after the buffered events.
    func finish(status: prism_status, message: String) {
        condition.lock()
        let code = Int32(status.rawValue)
        var end = End(status: code, message: message, retryable: Self.isRetryable(code), retryAfterMilliseconds: 0, abandoned: false)
        if let detail = errorDetail {
            end.retryable = end.retryable || detail.retryable
            end.retryAfterMilliseconds = detail.retryAfter
        }
        guard apply(.finish(end)) else {
            condition.unlock()
            plugin.log(.error, "request \(requestID): finish called twice; the second is ignored")
            return
        }
        // The plugin is done reading: the producer no longer waits for this call.
        input?.close()
        let due = takeDueEnd()
        let release = dropHold()
        condition.unlock()
        condition.broadcast()
        if let due { due.waiter.resume(returning: .end(due.end)) }
        if release { releaseCall() }
    }

    /// host->read_input: blocks the plugin's thread (never an event loop) until input arrives,
    /// ends, or the call is cancelled; see prism_plugin.h for the statuses.
    func readInput(into buffer: UnsafeMutableRawBufferPointer, count: inout Int) -> prism_status {
        count = 0
        let (finished, stopped) = condition.withLock { () -> (Bool, Bool) in
            if case .finished = state { return (true, true) }
            return (false, self.stopped)
        }
        guard !finished, let input else { return PRISM_STATUS_FAILED_PRECONDITION }
        if stopped { return PRISM_STATUS_CANCELLED }
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
    var isCancelled: Bool { condition.withLock { stopped } }

    /// Called by the worker once start_call has returned.
    func startCallReturned() {
        if condition.withLock({ dropHold() }) { releaseCall() }
    }

    /// One reason for the plugin to hold the handle is gone; true when it was the last (the
    /// caller then releases the call, outside the lock). Caller holds the lock.
    private func dropHold() -> Bool {
        precondition(pluginHolds > 0, "a plugin call's handle was released twice")
        pluginHolds -= 1
        return pluginHolds == 0
    }

    /// Finish, start_call's return and any cancel have all happened: the plugin is done with the
    /// handle. This may run on a thread of the plugin's (inside host->finish), so the unloading
    /// this can lead to never runs here: see `LoadedPlugin.callEnded`.
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
        if case .finished(_, cancelled: true) = state { return nil }
        guard head < buffer.count else { return nil }
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
        guard apply(.cancel) else {
            condition.unlock()
            return
        }
        // The plugin's cancel holds the handle (and so the library) until it returns.
        pluginHolds += 1
        condition.unlock()
        condition.broadcast()
        input?.cancel()
        plugin.cancel(self)
        if condition.withLock({ dropHold() }) { releaseCall() }
        DispatchQueue.global().asyncAfter(deadline: .now() + cancelGrace) { [self] in abandonIfUnfinished() }
    }

    private func abandonIfUnfinished() {
        condition.lock()
        guard apply(.abandon) else {
            condition.unlock()
            return
        }
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

    /// The end a reader of an abandoned call gets.
    private static let abandonedEnd = End(status: Int32(PRISM_STATUS_CANCELLED.rawValue), message: "the plugin ignored cancellation and was abandoned",
                                          retryable: false, retryAfterMilliseconds: 0, abandoned: true)

    /// Whether the host stopped the call (emit refused, is_cancelled true). Caller holds the lock.
    private var stopped: Bool {
        switch state {
        case .running, .finished(_, cancelled: false): return false
        case .cancelled, .abandoned, .finished(_, cancelled: true): return true
        }
    }

    /// The one place the state changes; true when `change` applied, false when it is ignored in
    /// the current state (each case says why). Caller holds the lock.
    @discardableResult
    private func apply(_ change: Change) -> Bool {
        switch (state, change) {
        case (.running, .malformedEvent), (.cancelled, .malformedEvent):
            state = .cancelled(malformed: true)
        case (.abandoned, .malformedEvent), (.finished, .malformedEvent):
            // The reader already has its end (abandoned), or the call is over (emit's caller is
            // told FAILED_PRECONDITION/INVALID_ARGUMENT): nothing left to fail.
            return false
        case (.running, .cancel):
            state = .cancelled(malformed: false)
        case (_, .cancel):
            // Cancelled already (at most one plugin cancel per call), or over: nothing to stop.
            return false
        case (.cancelled, .abandon):
            state = .abandoned
        case (_, .abandon):
            // The plugin finished within the grace period (abandon is only armed by cancel).
            return false
        case (.running, .finish(let end)):
            state = .finished(end, cancelled: false)
        case (.cancelled(let malformed), .finish(var end)):
            if malformed {
                end = End(status: Int32(PRISM_STATUS_INTERNAL.rawValue), message: "plugin emitted an event that is not a ProviderEvent",
                          retryable: false, retryAfterMilliseconds: 0, abandoned: false)
            } else if end.status == Int32(PRISM_STATUS_OK.rawValue) {
                end.status = Int32(PRISM_STATUS_CANCELLED.rawValue)
            }
            state = .finished(end, cancelled: true)
        case (.abandoned, .finish):
            // The reader had the abandoned end; the late outcome is discarded.
            state = .finished(Self.abandonedEnd, cancelled: true)
        case (.finished, .finish):
            // A plugin bug (finish twice): the first outcome stands; the caller logs it.
            return false
        }
        return true
    }

    /// The end the reader should see now, if any. Caller holds the lock.
    private func currentEnd() -> End? {
        switch state {
        case .running, .cancelled: return nil
        case .abandoned: return Self.abandonedEnd
        case .finished(let end, let cancelled): return head >= buffer.count || cancelled ? end : nil
        }
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
