// One call into a plugin, as both sides see it: the prism_call handle the plugin emits into and
// finishes, and the events the service reads. Between them a HandOff is the backpressure: emit
// blocks a plugin thread while the reader is behind, or, on the call's I/O loop (ABI 2.0), pauses
// the call's HTTP exchanges instead. A call with streamed input also holds its reader of it.
// Threads: emit/finish/read_input/is_cancelled on any plugin thread; next() on the reading task;
// cancel on any host thread; the exchange bookkeeping on the call's loop. Its life is one `State`
// changed only by `apply` under `condition`.
import CPrismPlugin
import Foundation
import Logging
import PrismHandOff

/// A running plugin call. Read it with `next()` until it returns `.end`; cancel it with `cancel()`
/// (the reading task's cancellation does that too).
public final class PluginCall: @unchecked Sendable {
    // @unchecked: the `let`s never change; `state`, `pluginHolds`, `errorDetail` and `keepAlive`
    // are guarded by `condition`; `overBudget` and `openExchanges` are touched only on `loop`.
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
    /// The loop a PRISM_CALLS_NONBLOCKING call lives on; nil for calls on a blocking pool.
    let loop: HostIOLoop?
    /// Where host->run_blocking work runs.
    private let blockingPool: WorkerPool
    /// The client's deadline, which ends the call's HTTP exchanges.
    let deadline: Date?
    private let cancelGrace: Double
    private let onAbandon: @Sendable () -> Void
    /// This call's place in its streamed input; nil for a call whose input is all in the request.
    private let input: StreamedAudio.Reader?
    /// The events on their way to the reader, and then the call's end.
    private let events: HandOff<ProviderEvent, End>

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

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var state = State.running
    /// Why the plugin still needs the handle: start_call not yet returned, finish not yet
    /// called, each cancel running in the plugin, each open HTTP exchange and each queued
    /// run_blocking/post work. At zero the call is released (and the plugin's in-flight count with
    /// it), so the library is never unloaded while any of them may still run its code.
    private var pluginHolds = 2
    private var errorDetail: (retryable: Bool, retryAfter: UInt64)?
    /// The host's own reference for the plugin's handle, dropped once the call is released.
    private var keepAlive: Unmanaged<PluginCall>?

    // The loop's own (NONBLOCKING calls).
    /// An event emitted on the loop found the buffer over budget: exchanges pause until it drains.
    private var overBudget = false
    private var openExchanges: [ObjectIdentifier: HTTPExchange] = [:]

    init(plugin: LoadedPlugin, model: ModelCapability, requestID: String, maxEvents: Int, maxBytes: Int, cancelGrace: Double,
         loop: HostIOLoop?, blockingPool: WorkerPool, deadline: Date?,
         input: StreamedAudio? = nil, onAbandon: @escaping @Sendable () -> Void, onPeak: @escaping @Sendable (Int) -> Void) {
        self.input = input?.reader()
        self.plugin = plugin
        self.model = model
        self.requestID = requestID
        self.loop = loop
        self.blockingPool = blockingPool
        self.deadline = deadline
        self.cancelGrace = cancelGrace
        self.onAbandon = onAbandon
        self.events = HandOff(maxCount: maxEvents, maxBytes: maxBytes, size: { $0.byteCount }, onDepth: onPeak)
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

    /// host->emit: decode, then hand over: on the call's loop without blocking (an event over the
    /// budget pauses the call's exchanges), elsewhere waiting for room unless the call was cancelled.
    func emit(_ bytes: UnsafeRawBufferPointer) -> prism_status {
        guard let event = Self.textEvent(bytes) ?? ProviderEvent(serialized: bytes) else {
            condition.lock()
            let stop = apply(.malformedEvent)
            condition.unlock()
            if stop { events.stop() }
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
        condition.unlock()
        if let loop, loop.isCurrent {
            switch events.offer(event) {
            case .accepted: return PRISM_STATUS_OK
            case .acceptedFull:
                overBudget = true
                return PRISM_STATUS_OK
            case .refused: return PRISM_STATUS_CANCELLED
            }
        }
        return events.put(event) == .refused ? PRISM_STATUS_CANCELLED : PRISM_STATUS_OK
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
        guard case .finished(let final, _) = state else { preconditionFailure("finish applied without finishing") }
        let release = dropHold()
        condition.unlock()
        // The plugin is done reading: the producer no longer waits for this call.
        input?.close()
        events.finish(final)
        // An exchange the plugin left open ends now; its on_done still comes (prism_plugin.h).
        // Usually none is: finish comes from the last exchange's on_done, on the loop, after the
        // exchange left `openExchanges`, so no loop wake-up is spent on it.
        if let loop, !(loop.isCurrent && openExchanges.isEmpty) {
            loop.execute { [self] in endExchanges(message: "the call finished before its exchange ended") }
        }
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
        // Never on the call's loop: the read blocks.
        guard !finished, let input, loop?.isCurrent != true else { return PRISM_STATUS_FAILED_PRECONDITION }
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

    // MARK: - Host-owned work of the call (ABI 2.0)

    /// host->http_start: the exchange joins the call (holding it) and starts on its loop.
    func startExchange(_ exchange: HTTPExchange) -> prism_status {
        condition.lock()
        if case .finished = state {
            condition.unlock()
            return PRISM_STATUS_FAILED_PRECONDITION
        }
        if stopped {
            condition.unlock()
            return PRISM_STATUS_CANCELLED
        }
        pluginHolds += 1
        condition.unlock()
        exchange.loop.execute { [self] in
            openExchanges[ObjectIdentifier(exchange)] = exchange
            exchange.start()
        }
        return PRISM_STATUS_OK
    }

    /// Why new exchanges end at once (the call was stopped or is over), or nil. Loop thread.
    var refusesExchanges: String? {
        condition.withLock {
            if case .finished = state { return "the call finished before its exchange started" }
            return stopped ? "the call was cancelled" : nil
        }
    }

    /// An exchange is about to call its on_done: it is no longer open. Loop thread.
    func exchangeEnding(_ exchange: HTTPExchange) {
        openExchanges[ObjectIdentifier(exchange)] = nil
    }

    /// An exchange's on_done has returned: its hold on the call goes. Loop thread.
    func exchangeEnded(_ exchange: HTTPExchange) {
        if condition.withLock({ dropHold() }) { releaseCall() }
    }

    /// Ends every open exchange of the call with on_done CANCELLED. Loop thread.
    private func endExchanges(message: String) {
        for exchange in Array(openExchanges.values) {
            exchange.abort(status: PRISM_STATUS_CANCELLED, message: message)
        }
    }

    /// Whether an event emitted on the loop found the buffer over budget. Loop thread.
    var isOverBudget: Bool { overBudget }

    /// Runs `action` on `loop` once the reader has made room (or the call stopped).
    func whenRoom(on loop: HostIOLoop, _ action: @escaping @Sendable () -> Void) {
        events.whenRoom { [self] in
            loop.execute { [self] in
                overBudget = false
                action()
            }
        }
    }

    /// host->run_blocking and host->post: `work(ctx)` on the blocking pool or the call's loop,
    /// holding the call (and so the library) until it has run.
    func schedule(_ work: @convention(c) (UnsafeMutableRawPointer?) -> Void, _ ctx: UnsafeMutableRawPointer?, onLoop: Bool) -> prism_status {
        if onLoop && loop == nil { return PRISM_STATUS_FAILED_PRECONDITION }
        let admitted = condition.withLock { () -> Bool in
            if case .finished = state { return false }
            pluginHolds += 1
            return true
        }
        guard admitted else { return PRISM_STATUS_FAILED_PRECONDITION }
        let run = { [self] in
            work(ctx)
            if condition.withLock({ dropHold() }) { releaseCall() }
        }
        if let loop, onLoop {
            loop.execute(run)
        } else if !blockingPool.submit(run) {
            if condition.withLock({ dropHold() }) { releaseCall() }
            return PRISM_STATUS_UNAVAILABLE
        }
        return PRISM_STATUS_OK
    }

    // MARK: - The host's side

    /// The next event, or the end. Cancelling the reading task cancels the call.
    nonisolated(nonsending)
    public func next() async -> Step {
        // An event already buffered (the reader fell behind) is taken without suspending.
        if !Task.isCancelled, let step = events.poll() { return Self.step(step) }
        return await withTaskCancellationHandler {
            Self.step(await events.next())
        } onCancel: {
            self.cancel()
        }
    }

    /// Reads the call to its end, passing each event to `body`, and returns the end. Cancelling
    /// the reading task, or `body` throwing, cancels the call (then the error is rethrown). One
    /// cancellation handler covers the whole read, not one per event as with `next()`; the read
    /// and `body` run on the caller's executor (`nonisolated(nonsending)`): no switch per event.
    nonisolated(nonsending)
    public func read(_ body: nonisolated(nonsending) (ProviderEvent) async throws -> Void) async rethrows -> End {
        try await withTaskCancellationHandler {
            do {
                while true {
                    switch await events.next() {
                    case .element(let event): try await body(event)
                    case .end(let end): return end
                    }
                }
            } catch {
                cancel()
                throw error
            }
        } onCancel: {
            self.cancel()
        }
    }

    private static func step(_ step: HandOff<ProviderEvent, End>.Step) -> Step {
        switch step {
        case .element(let event): return .event(event)
        case .end(let end): return .end(end)
        }
    }

    /// Stops the call: emit starts failing, the plugin's cancel runs (on the call's loop for a
    /// NONBLOCKING call, whose exchanges then end), and a plugin that has not finished within the
    /// grace period is abandoned.
    public func cancel() {
        condition.lock()
        guard apply(.cancel) else {
            condition.unlock()
            return
        }
        // The plugin's cancel holds the handle (and so the library) until it returns.
        pluginHolds += 1
        condition.unlock()
        events.stop()
        input?.cancel()
        if let loop {
            loop.execute { [self] in
                plugin.cancel(self)
                endExchanges(message: "the call was cancelled")
                if condition.withLock({ dropHold() }) { releaseCall() }
            }
        } else {
            plugin.cancel(self)
            if condition.withLock({ dropHold() }) { releaseCall() }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + cancelGrace) { [self] in abandonIfUnfinished() }
    }

    private func abandonIfUnfinished() {
        condition.lock()
        guard apply(.abandon) else {
            condition.unlock()
            return
        }
        condition.unlock()
        input?.close()
        events.finish(Self.abandonedEnd)
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

    /// Rate limits, overload and timeouts are worth another try.
    static func isRetryable(_ status: Int32) -> Bool {
        [PRISM_STATUS_RATE_LIMITED, PRISM_STATUS_UNAVAILABLE, PRISM_STATUS_DEADLINE_EXCEEDED].map { Int32($0.rawValue) }.contains(status)
    }
}
