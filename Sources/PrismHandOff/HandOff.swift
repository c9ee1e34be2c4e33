// HandOff: the one bounded hand-off between threads in Prism. Producers on any thread put
// elements (blocking while it is full, offering without blocking and being told when there is
// room again, or awaiting room from a task); one consumer (a task, or a loop that polls and is
// told when something is due) takes them in order and then the end. Counts and bytes bound it.
import Foundation

/// A bounded queue from producers on any thread to one consumer, ending with an `Outcome`.
///
/// Life (every change under `condition`, continuations resumed only after it is released):
///
///     open ──stop──▶ stopped ──finish──▶ ended(drain: false)
///      └───────────── finish ─────────▶ ended(drain: true) ──stop──▶ ended(drain: false)
///
/// - `open`: producers' elements are accepted (within the budgets).
/// - `stopped`: the consumer gave up (or the owner stopped the flow): buffered elements are
///   dropped, producers are refused and woken, the consumer still waits for the end.
/// - `ended`: no more elements; the consumer gets the buffered ones first (`drain`) and then the
///   outcome, or the outcome at once.
///
/// Producers choose their mode per element: `put` blocks the calling thread while the buffer is
/// full (a plugin's own thread, never an event loop); `offer` never blocks and reports that the
/// buffer is over budget, after which `whenRoom` says when to produce again (an I/O loop pausing
/// a socket); `send` is `offer` then `whenRoom` for a task, which suspends instead of blocking.
/// An element larger than the byte budget is still accepted into an empty buffer, so no
/// producer waits forever.
///
/// The async methods are `nonisolated(nonsending)`: they run on their caller's executor (an
/// event loop relaying a stream, say) rather than switching executors at every call.
///
/// One consumer, in one of two modes: a task awaiting `next()` (a second concurrent `next()` is
/// a programming error), or, after `consumeByPolling(onReady:)`, code that is not a task (an event
/// loop pulling as its socket takes more) calling `poll()` and told when to poll again.
public final class HandOff<Element: Sendable, Outcome: Sendable>: @unchecked Sendable {
    // @unchecked: every stored var below is guarded by `condition`. The hot paths are @inlinable
    // (their state @usableFromInline) so that clients specialize them for their element type.

    /// One step of consuming.
    public enum Step: Sendable {
        case element(Element)
        case end(Outcome)
    }

    /// What a producer's element met.
    public enum Acceptance: Sendable, Equatable {
        /// Taken, and there is room for more.
        case accepted
        /// Taken, but the buffer is now at or over a budget: produce no more until `whenRoom`.
        case acceptedFull
        /// Not taken: the hand-off was stopped or has ended.
        case refused
    }

    @usableFromInline enum State {
        case open
        case stopped
        case ended(Outcome, drain: Bool)
    }

    public let maxCount: Int
    public let maxBytes: Int
    @usableFromInline let size: @Sendable (Element) -> Int
    @usableFromInline let onDepth: (@Sendable (Int) -> Void)?

    @usableFromInline let condition = NSCondition()
    @usableFromInline var state = State.open
    @usableFromInline var buffer: [Element] = []
    @usableFromInline var head = 0
    @usableFromInline var bytes = 0
    /// The waiting task consumer; resumed with nil when its task is cancelled (`nextUnlessCancelled`).
    @usableFromInline var consumer: UnsafeContinuation<Step?, Never>?
    @usableFromInline var roomActions: [@Sendable () -> Void] = []
    /// A polling consumer's "something is due" action, set once by `consumeByPolling`, and
    /// whether its last poll found nothing (so the next due step must tell it).
    @usableFromInline var readyAction: (@Sendable () -> Void)?
    @usableFromInline var readyArmed = false

    /// `size` gives an element's bytes for the byte budget; `onDepth` is told the depth after
    /// each buffered element (a gauge's peak), outside no lock it needs.
    public init(maxCount: Int, maxBytes: Int, size: @escaping @Sendable (Element) -> Int, onDepth: (@Sendable (Int) -> Void)? = nil) {
        self.maxCount = max(1, maxCount)
        self.maxBytes = max(1, maxBytes)
        self.size = size
        self.onDepth = onDepth
    }

    // MARK: - Producers (any thread)

    /// Hands `element` over, blocking the calling thread while the buffer is full. Never call it
    /// on an event loop. Returns `.accepted`, or `.refused` once stopped or ended.
    @discardableResult
    public func put(_ element: Element) -> Acceptance {
        let n = size(element)
        condition.lock()
        while case .open = state, isFull(adding: n) {
            condition.wait()
        }
        // The next put waits by itself: a blocking producer has nothing to pause.
        let acceptance = deliver(element, bytes: n)
        return acceptance == .acceptedFull ? .accepted : acceptance
    }

    /// Hands `element` over without blocking, even past the budgets; `.acceptedFull` asks the
    /// producer to pause until `whenRoom` fires.
    @discardableResult
    @inlinable
    public func offer(_ element: Element) -> Acceptance {
        let n = size(element)
        condition.lock()
        return deliver(element, bytes: n)
    }

    /// Hands `element` over from a task: suspends (never blocks) while the buffer is over budget
    /// after it, until the consumer has drained to half of both budgets. Returns `.accepted`, or
    /// `.refused` when it was not taken or the flow was stopped while waiting for room (what was
    /// buffered then, this element perhaps among it, was dropped). Not cancellable: the wait ends
    /// when there is room, or the hand-off is stopped or ended. Allocates only when it must wait.
    @inlinable
    nonisolated(nonsending)
    public func send(_ element: Element) async -> Acceptance {
        let acceptance = offer(element)
        guard acceptance == .acceptedFull else { return acceptance }
        await withUnsafeContinuation { (resume: UnsafeContinuation<Void, Never>) in
            whenRoom { resume.resume() }
        }
        return condition.withLock {
            switch state {
            case .open, .ended(_, drain: true): return .accepted
            case .stopped, .ended(_, drain: false): return .refused
            }
        }
    }

    /// Runs `action` once the buffer is under both budgets again, or the hand-off was stopped or
    /// ended (the producer then learns that from its next offer). Runs at once, on this thread,
    /// when there is room already; otherwise on the consumer's thread, outside the lock.
    public func whenRoom(_ action: @escaping @Sendable () -> Void) {
        condition.lock()
        if case .open = state, isFull(adding: 0) {
            roomActions.append(action)
            condition.unlock()
            return
        }
        condition.unlock()
        action()
    }

    /// Ends the flow: the consumer gets the buffered elements, then `outcome`. When already
    /// stopped, the consumer gets `outcome` at once. Returns false when it had ended already
    /// (the first outcome stands).
    @discardableResult
    public func finish(_ outcome: Outcome) -> Bool {
        condition.lock()
        switch state {
        case .open: state = .ended(outcome, drain: true)
        case .stopped: state = .ended(outcome, drain: false)
        case .ended:
            condition.unlock()
            return false
        }
        // A polling consumer that found nothing learns of the end; it is told nothing after this.
        let ready = readyArmed ? readyAction : nil
        readyAction = nil
        readyArmed = false
        unlockAndWake(then: ready)
        return true
    }

    /// Stops the flow (the consumer no longer wants elements): drops what is buffered, refuses
    /// and wakes producers. A task consumer still gets the outcome from `finish`; a polling
    /// consumer is told nothing more (its `onReady` is released here, which breaks any cycle
    /// through it) and sees the outcome from `finish` in its own polls.
    public func stop() {
        condition.lock()
        switch state {
        case .open: state = .stopped
        case .ended(let outcome, drain: true): state = .ended(outcome, drain: false)
        case .stopped, .ended(_, drain: false): break
        }
        buffer.removeAll()
        head = 0
        bytes = 0
        readyAction = nil
        readyArmed = false
        unlockAndWake()
    }

    /// After an end or a stop: takes the consumer now due a step and the room actions, unlocks,
    /// wakes blocked producers, then (outside the lock) resumes the consumer, runs the actions and
    /// `ready`. Caller holds the lock.
    private func unlockAndWake(then ready: (@Sendable () -> Void)? = nil) {
        let wake = takeConsumerIfDue()
        let actions = takeRoomActions()
        condition.unlock()
        condition.broadcast()
        if let (waiting, step) = wake { waiting.resume(returning: step) }
        actions.forEach { $0() }
        ready?()
    }

    /// Whether producers are refused now (stopped or ended).
    public var isClosed: Bool {
        condition.withLock {
            if case .open = state { return false }
            return true
        }
    }

    // MARK: - The consumer (one task)

    /// The next element, or the end. Suspends until one is due. Only one consumer may wait.
    nonisolated(nonsending)
    public func next() async -> Step {
        if let step = poll() { return step }
        // Resumed with nil only by cancellation, which this wait does not install.
        return await wait(cancellable: false)!
    }

    /// The next element, or the end; nil when the consumer's task is cancelled before either is
    /// due (a step already due is returned even then). For consumers that give up waiting (a
    /// timeout racing the next message in a task group).
    nonisolated(nonsending)
    public func nextUnlessCancelled() async -> Step? {
        if let step = poll() { return step }
        return await withTaskCancellationHandler {
            await wait(cancellable: true)
        } onCancel: {
            condition.lock()
            let waiting = consumer
            consumer = nil
            condition.unlock()
            waiting?.resume(returning: nil)
        }
    }

    nonisolated(nonsending)
    private func wait(cancellable: Bool) async -> Step? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Step?, Never>) in
            condition.lock()
            if let step = takeStep() {
                let actions = takeRoomActionsIfRoom()
                condition.unlock()
                condition.broadcast()
                continuation.resume(returning: step)
                actions.forEach { $0() }
                return
            }
            // Checked under the lock: a cancellation after this finds `consumer` set.
            if cancellable && Task.isCancelled {
                condition.unlock()
                continuation.resume(returning: nil)
                return
            }
            precondition(consumer == nil, "HandOff has one consumer; a second next() ran concurrently")
            precondition(readyAction == nil, "HandOff has one consumer; this one polls (consumeByPolling)")
            consumer = continuation
            condition.unlock()
        }
    }

    /// Makes the consumer one that polls rather than awaits (an event loop pulling as its
    /// socket can take more). `onReady` runs whenever an element or the end becomes due after
    /// a `poll()` found nothing, and at once if something is due already: on the thread of the
    /// producer that made it due (`offer`, `send`, `put`, `finish`), outside the lock, so it
    /// should only schedule the poll. Set once, before the first poll; no `next()` after it.
    public func consumeByPolling(onReady: @escaping @Sendable () -> Void) {
        condition.lock()
        precondition(readyAction == nil && consumer == nil, "HandOff has one consumer, set once")
        switch state {
        case .open: break
        case .stopped:
            condition.unlock()
            return
        case .ended:
            condition.unlock()
            onReady()
            return
        }
        let due = head < buffer.count
        readyAction = onReady
        readyArmed = !due
        condition.unlock()
        if due { onReady() }
    }

    /// The next element or the end if one is due now, without waiting. For a polling consumer,
    /// finding nothing asks for `onReady` when something comes.
    @inlinable
    public func poll() -> Step? {
        condition.lock()
        guard let step = takeStep() else {
            if readyAction != nil { readyArmed = true }
            condition.unlock()
            return nil
        }
        let actions = takeRoomActionsIfRoom()
        condition.unlock()
        condition.broadcast()
        actions.forEach { $0() }
        return step
    }

    /// For a polling consumer that moves elements on in batches (a loop filling a frame): appends
    /// the elements due now to `batch`, in order, until `maxBytes` are taken or none is left, under
    /// one lock rather than one per element. Returns how many; none asks for `onReady` as `poll`
    /// does. The end is left for `poll()`.
    @inlinable
    public func poll<Batch: RangeReplaceableCollection>(into batch: inout Batch, upToBytes maxBytes: Int) -> Int
    where Batch.Element == Element {
        condition.lock()
        var taken = 0
        var takenBytes = 0
        while head < buffer.count && takenBytes < maxBytes {
            let element = buffer[head]
            head += 1
            let n = size(element)
            bytes -= n
            takenBytes += n
            batch.append(element)
            taken += 1
        }
        guard taken > 0 else {
            if readyAction != nil { readyArmed = true }
            condition.unlock()
            return 0
        }
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
        let actions = takeRoomActionsIfRoom()
        condition.unlock()
        condition.broadcast()
        actions.forEach { $0() }
        return taken
    }

    // MARK: - Under the lock

    @inlinable func isFull(adding n: Int) -> Bool {
        let count = buffer.count - head
        return count >= maxCount || (count > 0 && bytes + n > maxBytes)
    }

    /// Buffers (or hands straight to a waiting consumer) and unlocks. Caller holds the lock.
    @inlinable func deliver(_ element: Element, bytes n: Int) -> Acceptance {
        guard case .open = state else {
            condition.unlock()
            return .refused
        }
        if let waiting = consumer {
            consumer = nil
            condition.unlock()
            waiting.resume(returning: .element(element))
            return .accepted
        }
        buffer.append(element)
        bytes += n
        let depth = buffer.count - head
        let full = isFull(adding: 0)
        let ready = readyArmed ? readyAction : nil
        readyArmed = false
        condition.unlock()
        onDepth?(depth)
        ready?()
        return full ? .acceptedFull : .accepted
    }

    /// The step due for the consumer now, taken out of the buffer. Caller holds the lock.
    @inlinable func takeStep() -> Step? {
        if case .ended(let outcome, drain: false) = state { return .end(outcome) }
        if head < buffer.count {
            let element = buffer[head]
            head += 1
            bytes -= size(element)
            if head > 64 && head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return .element(element)
        }
        if case .ended(let outcome, drain: true) = state { return .end(outcome) }
        return nil
    }

    /// The waiting consumer and the step now due to it, if any. Caller holds the lock.
    @inlinable func takeConsumerIfDue() -> (UnsafeContinuation<Step?, Never>, Step)? {
        guard let waiting = consumer, let step = takeStep() else { return nil }
        consumer = nil
        return (waiting, step)
    }

    @inlinable func takeRoomActions() -> [@Sendable () -> Void] {
        defer { roomActions = [] }
        return roomActions
    }

    /// Room actions, taken only once the buffer has fallen to half of both budgets, so that a
    /// paused producer resumes in batches rather than per element. Caller holds the lock.
    @inlinable func takeRoomActionsIfRoom() -> [@Sendable () -> Void] {
        guard !roomActions.isEmpty else { return [] }
        let count = buffer.count - head
        guard count <= maxCount / 2 && bytes <= maxBytes / 2 else { return [] }
        return takeRoomActions()
    }
}
