// HandOff's contract: order, budgets, blocking, non-blocking and async producers, task and
// polling consumers, cancellation, stop and finish, on real threads.
import Foundation
import PrismHandOff
import XCTest

final class HandOffTests: XCTestCase {
    typealias Queue = HandOff<Int, String>

    private func drain(_ queue: Queue) async -> ([Int], String) {
        var got: [Int] = []
        while true {
            switch await queue.next() {
            case .element(let n): got.append(n)
            case .end(let outcome): return (got, outcome)
            }
        }
    }

    func testElementsArriveInOrderThenTheOutcome() async {
        let queue = Queue(maxCount: 4, maxBytes: 1 << 20, size: { _ in 8 })
        let producer = Thread {
            for n in 0..<1000 { XCTAssertEqual(queue.put(n), .accepted) }
            queue.finish("done")
        }
        producer.start()
        let (got, outcome) = await drain(queue)
        XCTAssertEqual(got, Array(0..<1000))
        XCTAssertEqual(outcome, "done")
    }

    func testBlockingProducerWaitsForRoomAndNeverExceedsTheCount() async {
        let depth = ManagedDepth()
        let queue = Queue(maxCount: 3, maxBytes: 1 << 20, size: { _ in 1 }, onDepth: { depth.record($0) })
        let producer = Thread {
            for n in 0..<200 { queue.put(n) }
            queue.finish("done")
        }
        producer.start()
        // A slow consumer: the producer must wait rather than grow the buffer.
        var got: [Int] = []
        loop: while true {
            switch await queue.next() {
            case .element(let n):
                got.append(n)
                await Task.yield()
            case .end: break loop
            }
        }
        XCTAssertEqual(got.count, 200)
        XCTAssertLessThanOrEqual(depth.peak, 3)
    }

    func testByteBudgetAdmitsAnOversizedElementOnlyIntoAnEmptyBuffer() {
        let queue = Queue(maxCount: 100, maxBytes: 10, size: { $0 })
        XCTAssertEqual(queue.offer(50), .acceptedFull, "an element over the byte budget still goes into an empty buffer")
        XCTAssertEqual(queue.offer(1), .acceptedFull, "offer never blocks; it says the buffer is over budget")
        XCTAssertEqual(queue.offer(1), .acceptedFull)
    }

    func testOfferReportsFullAndWhenRoomFiresOnceTheConsumerHasDrainedHalf() async {
        let queue = Queue(maxCount: 4, maxBytes: 1 << 20, size: { _ in 1 })
        XCTAssertEqual(queue.offer(1), .accepted)
        XCTAssertEqual(queue.offer(2), .accepted)
        XCTAssertEqual(queue.offer(3), .accepted)
        XCTAssertEqual(queue.offer(4), .acceptedFull)
        let fired = ManagedDepth()
        queue.whenRoom { fired.record(1) }
        XCTAssertEqual(fired.peak, 0, "no room yet: the action waits")
        guard case .element(1) = await queue.next() else { return XCTFail("expected 1") }
        XCTAssertEqual(fired.peak, 0, "three buffered of four is not yet half")
        guard case .element(2) = await queue.next() else { return XCTFail("expected 2") }
        XCTAssertEqual(fired.peak, 1, "at half the paused producer is told to go on")
        queue.whenRoom { fired.record(2) }
        XCTAssertEqual(fired.peak, 2, "with room already, the action runs at once")
    }

    func testStopDropsBufferedElementsWakesABlockedProducerAndTheOutcomeFollows() async {
        let queue = Queue(maxCount: 1, maxBytes: 1 << 20, size: { _ in 1 })
        XCTAssertEqual(queue.put(1), .accepted)
        let refused = expectation(description: "the blocked producer is refused")
        let producer = Thread {
            if queue.put(2) == .refused { refused.fulfill() }
        }
        producer.start()
        queue.stop()
        await fulfillment(of: [refused], timeout: 10)
        XCTAssertEqual(queue.offer(3), .refused)
        XCTAssertNil(queue.poll(), "stopped: nothing is due until the outcome")
        queue.finish("cancelled")
        guard case .end("cancelled") = await queue.next() else { return XCTFail("expected the outcome") }
    }

    func testFinishCountsOnceAndAfterStopEndsAtOnce() async {
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        queue.offer(1)
        XCTAssertTrue(queue.finish("first"))
        XCTAssertFalse(queue.finish("second"), "the first outcome stands")
        queue.stop()
        guard case .end("first") = await queue.next() else { return XCTFail("stop after finish drops the rest") }
    }

    func testAWaitingConsumerIsResumedByAProducerOnAnotherThread() async {
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        let waiting = Task { await drain(queue) }
        // The consumer may or may not be suspended yet; either way both elements and the end arrive.
        DispatchQueue.global().async {
            queue.offer(7)
            queue.offer(8)
            queue.finish("end")
        }
        let (got, outcome) = await waiting.value
        XCTAssertEqual(got, [7, 8])
        XCTAssertEqual(outcome, "end")
    }

    // MARK: - Async producers

    func testSendSuspendsWhileFullAndNeverExceedsTheCount() async {
        let depth = ManagedDepth()
        let queue = Queue(maxCount: 4, maxBytes: 1 << 20, size: { _ in 1 }, onDepth: { depth.record($0) })
        let producer = Task {
            for n in 0..<500 {
                let acceptance = await queue.send(n)
                XCTAssertEqual(acceptance, .accepted)
            }
            queue.finish("done")
        }
        var got: [Int] = []
        loop: while true {
            switch await queue.next() {
            case .element(let n):
                got.append(n)
                if n % 3 == 0 { await Task.yield() }  // a consumer slower than the producer now and then
            case .end(let outcome):
                XCTAssertEqual(outcome, "done")
                break loop
            }
        }
        await producer.value
        XCTAssertEqual(got, Array(0..<500))
        XCTAssertLessThanOrEqual(depth.peak, 4, "a suspended sender does not grow the buffer")
    }

    func testASenderWaitingForRoomIsRefusedWhenTheFlowStops() async {
        let queue = Queue(maxCount: 1, maxBytes: 1 << 20, size: { _ in 1 })
        // The one element fills the buffer: the sender waits for room, or finds the flow stopped.
        let sender = Task { await queue.send(1) }
        queue.stop()
        let acceptance = await sender.value
        XCTAssertEqual(acceptance, .refused, "stopped before or while it waited: its element is dropped")
        let late = await queue.send(2)
        XCTAssertEqual(late, .refused)
    }

    // MARK: - A polling consumer

    func testAPollingConsumerIsToldOnceWhenSomethingComesAfterAnEmptyPoll() {
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        let told = ManagedDepth()
        queue.consumeByPolling { told.increment() }
        XCTAssertEqual(told.peak, 0, "nothing due yet")
        queue.offer(1)
        XCTAssertEqual(told.peak, 1)
        queue.offer(2)
        XCTAssertEqual(told.peak, 1, "not told again before it polled")
        guard case .element(1) = queue.poll(), case .element(2) = queue.poll() else { return XCTFail("expected 1, 2") }
        XCTAssertNil(queue.poll())
        queue.offer(3)
        XCTAssertEqual(told.peak, 2, "an empty poll asks to be told")
        guard case .element(3) = queue.poll() else { return XCTFail("expected 3") }
        XCTAssertNil(queue.poll())
        queue.finish("end")
        XCTAssertEqual(told.peak, 3, "the end is due too")
        guard case .end("end") = queue.poll() else { return XCTFail("expected the outcome") }
    }

    func testABatchPollTakesUpToItsBytesInOrderUnderOneCall() {
        let queue = Queue(maxCount: 100, maxBytes: 1 << 20, size: { $0 })
        let told = ManagedDepth()
        queue.consumeByPolling { told.increment() }
        for n in [3, 4, 5, 6] { queue.offer(n) }
        var batch: [Int] = []
        XCTAssertEqual(queue.poll(into: &batch, upToBytes: 7), 2, "3 + 4 bytes reach the limit")
        XCTAssertEqual(queue.poll(into: &batch, upToBytes: 100), 2)
        XCTAssertEqual(batch, [3, 4, 5, 6])
        XCTAssertEqual(queue.poll(into: &batch, upToBytes: 100), 0)
        queue.offer(7)
        XCTAssertEqual(told.peak, 2, "an empty batch poll asks to be told, as poll() does")
    }

    func testStopReleasesThePollingConsumersAction() {
        final class Token: Sendable {}
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        weak var released: Token?
        do {
            let token = Token()
            released = token
            queue.consumeByPolling { _ = token }
        }
        XCTAssertNotNil(released, "held while the flow is open")
        queue.stop()
        XCTAssertNil(released, "stop breaks a cycle through the action")
        XCTAssertEqual(queue.offer(1), .refused)
    }

    func testAnAsyncProducerAndAPollingConsumerOnAnotherThread() async {
        // The response path of a server stream: a task sends, a serial queue (an event loop's
        // stand-in) polls when told and drains what is due.
        let queue = Queue(maxCount: 3, maxBytes: 1 << 20, size: { _ in 1 })
        let loop = DispatchQueue(label: "consumer")
        let got = ManagedList()
        let ended = expectation(description: "the consumer saw the end")
        queue.consumeByPolling {
            loop.async {
                while let step = queue.poll() {
                    switch step {
                    case .element(let n): got.append(n)
                    case .end: ended.fulfill()
                    }
                }
            }
        }
        for n in 0..<300 {
            let acceptance = await queue.send(n)
            XCTAssertEqual(acceptance, .accepted)
        }
        queue.finish("done")
        await fulfillment(of: [ended], timeout: 30)
        XCTAssertEqual(got.values, Array(0..<300))
    }

    // MARK: - Cancellation

    func testACancelledWaitReturnsNilAndFreesTheConsumerSlot() async {
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        let waiting = Task { await queue.nextUnlessCancelled() }
        waiting.cancel()
        let step = await waiting.value
        XCTAssertNil(step, "cancelled before anything was due")
        queue.offer(5)
        guard case .element(5) = await queue.next() else { return XCTFail("a new consumer may wait after the cancelled one") }
    }

    func testAStepAlreadyDueIsReturnedEvenWhenCancelled() async {
        let queue = Queue(maxCount: 8, maxBytes: 1 << 20, size: { _ in 1 })
        queue.offer(9)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await queue.nextUnlessCancelled()
        }
        guard case .element(9)? = await task.value else { return XCTFail("a due element wins over cancellation") }
    }
}

/// A thread-safe list, for collecting from another thread.
private final class ManagedList: @unchecked Sendable {
    // @unchecked: `items` is only touched under `lock`.
    private let lock = NSLock()
    private var items: [Int] = []
    func append(_ n: Int) { lock.withLock { items.append(n) } }
    var values: [Int] { lock.withLock { items } }
}

/// A thread-safe maximum, for observing from callbacks.
private final class ManagedDepth: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func record(_ n: Int) { lock.withLock { value = max(value, n) } }
    func increment() { lock.withLock { value += 1 } }
    var peak: Int { lock.withLock { value } }
}
