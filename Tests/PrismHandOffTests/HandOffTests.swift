// HandOff's contract: order, budgets, blocking and non-blocking producers, stop and finish, on
// real threads.
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
}

/// A thread-safe maximum, for observing from callbacks.
private final class ManagedDepth: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func record(_ n: Int) { lock.withLock { value = max(value, n) } }
    var peak: Int { lock.withLock { value } }
}
