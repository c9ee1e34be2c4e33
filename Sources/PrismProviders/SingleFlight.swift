// Concurrent identical requests make one vendor call: the first to ask for a key leads (calls the
// model), later ones wait for its stored answer. Bounded: past `maxWaiters` a request makes its
// own call, and when the leader ends without a cacheable answer every waiter makes its own.
// Waiters are resumed after the lock is released.
import Foundation

/// Safe: `lock` guards `flights` and `nextID`; `maxWaiters` is immutable.
final class SingleFlight: @unchecked Sendable {
    /// What `join` decided.
    enum Joined {
        /// Call the model, then `finish(key, with:)` with the answer (or nil) in every case.
        case lead
        /// The leader's answer, encoded.
        case answer(Data)
        /// Make an own call without leading: too many waiters, the leader failed, or cancelled.
        case alone
    }

    let maxWaiters: Int
    private let lock = NSLock()
    // Guarded by `lock`: the waiters of each key being led, by id (for cancellation).
    private var flights: [Data: [UInt64: CheckedContinuation<Data?, Never>]] = [:]
    private var nextID: UInt64 = 0

    init(maxWaiters: Int) {
        self.maxWaiters = maxWaiters
    }

    func join(_ key: Data) async -> Joined {
        enum Decision { case lead, alone, wait(UInt64) }
        let decision: Decision = lock.withLock {
            guard let waiters = flights[key] else {
                flights[key] = [:]
                return .lead
            }
            guard waiters.count < maxWaiters else { return .alone }
            nextID += 1
            return .wait(nextID)
        }
        let id: UInt64
        switch decision {
        case .lead: return .lead
        case .alone: return .alone
        case .wait(let waiter): id = waiter
        }
        let answer: Data? = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Data?, Never>) in
                let registered: Bool = lock.withLock {
                    // The leader may have finished (or this task been cancelled) in between.
                    guard flights[key] != nil, !Task.isCancelled else { return false }
                    flights[key]![id] = continuation
                    return true
                }
                if !registered { continuation.resume(returning: nil) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Data?, Never>? = lock.withLock { flights[key]?.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
        return answer.map { .answer($0) } ?? .alone
    }

    /// The leader of `key` is done: waiters get `answer`, or nil to make their own calls.
    func finish(_ key: Data, with answer: Data?) {
        let waiters = lock.withLock { flights.removeValue(forKey: key) } ?? [:]
        for waiter in waiters.values { waiter.resume(returning: answer) }
    }

    /// Requests waiting on `key` (tests).
    func waiting(_ key: Data) -> Int { lock.withLock { flights[key]?.count ?? 0 } }
}
