// BatchSignals, the wake-ups between the batch scheduler and the batch streams: a wait returns on a
// notify of its key, on its timeout, at once when the key moved since it looked,
// and when its task is cancelled.
import Foundation
import XCTest
@testable import PrismServer

final class BatchSignalsTests: XCTestCase {
    /// Longer than any wait below should take; a wait that lasts this long failed to wake.
    private let long: TimeInterval = 30

    func testANotifyWakesTheWaiterOfItsKey() async {
        let signals = BatchSignals()
        let seen = signals.version("a")
        let started = Date()
        let waiter = Task { await signals.wait("a", seen: seen, timeout: long) }
        signals.notify("b")
        // Notified until it wakes (it may register after the first notify): no fixed sleep.
        let notifier = Task {
            while !Task.isCancelled {
                signals.notify("a")
                try? await Task.sleep(nanoseconds: 1_000_000)
            }
        }
        await waiter.value
        notifier.cancel()
        XCTAssertLessThan(Date().timeIntervalSince(started), long / 2, "the waiter slept to its timeout")
        XCTAssertEqual(signals.version("b"), 1)
    }

    func testAChangeBeforeTheWaitIsNotMissed() async {
        let signals = BatchSignals()
        let seen = signals.version("a")
        signals.notify("a")  // between the look at the store and the wait
        let started = Date()
        await signals.wait("a", seen: seen, timeout: long)
        XCTAssertLessThan(Date().timeIntervalSince(started), long / 2)
    }

    func testAWaitEndsAtItsTimeout() async {
        let signals = BatchSignals()
        let started = Date()
        await signals.wait("a", seen: signals.version("a"), timeout: 0.05)
        XCTAssertLessThan(Date().timeIntervalSince(started), long / 2)
    }

    func testACancelledWaitEnds() async {
        let signals = BatchSignals()
        let waiter = Task { await signals.wait("a", seen: signals.version("a"), timeout: long) }
        waiter.cancel()
        let started = Date()
        await waiter.value
        XCTAssertLessThan(Date().timeIntervalSince(started), long / 2)
    }
}
