// Wake-ups between the batch scheduler and the batch RPCs of one process: a version per key (a
// batch id, or `work` for the scheduler) bumped on every change, and waiters resumed when it moves.
// A waiter reads the version before it looks at the store and waits only if it has not moved
// since, so a change between the look and the wait is never missed. Waits are bounded, so a change
// made by another process (which cannot signal this one) is seen at the latest after the timeout.
import Foundation

/// Safe: `lock` guards `versions` and `waiters`; continuations are resumed outside it.
final class BatchSignals: @unchecked Sendable {
    /// The scheduler's key: new items, a freed slot, a cancel.
    static let work = ""

    private let lock = NSLock()
    // Guarded by `lock`. A key's version only grows; keys stay (a batch id costs a few bytes).
    private var versions: [String: UInt64] = [:]
    private var waiters: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]

    func version(_ key: String) -> UInt64 {
        lock.withLock { versions[key, default: 0] }
    }

    /// Bumps `key`'s version and resumes everyone waiting on it.
    func notify(_ key: String) {
        let woken: [CheckedContinuation<Void, Never>] = lock.withLock {
            versions[key, default: 0] &+= 1
            return Array((waiters.removeValue(forKey: key) ?? [:]).values)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns once `key`'s version differs from `seen`, after `timeout` seconds, or when the task
    /// is cancelled, whichever is first.
    func wait(_ key: String, seen: UInt64, timeout: TimeInterval) async {
        let id = UUID()
        let timer = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1_000_000_000))
            self?.resume(key, id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready: Bool = lock.withLock {
                    if versions[key, default: 0] != seen || Task.isCancelled { return true }
                    waiters[key, default: [:]][id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            resume(key, id)
        }
    }

    private func resume(_ key: String, _ id: UUID) {
        let continuation: CheckedContinuation<Void, Never>? = lock.withLock {
            let c = waiters[key]?.removeValue(forKey: id)
            if waiters[key]?.isEmpty == true { waiters.removeValue(forKey: key) }
            return c
        }
        continuation?.resume()
    }
}
