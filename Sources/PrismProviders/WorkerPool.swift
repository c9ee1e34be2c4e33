// A bounded pool of threads for plugin calls, which may block for as long as a vendor takes;
// they must never run on a network event loop or tie up Swift's cooperative threads.
import Foundation

/// Runs blocking work on at most `threads` threads, queueing at most `queueLimit` items.
///
/// Threads are started on demand and kept; a call that never returns (a hung plugin) holds its
/// thread forever, which `busyThreads` shows. Thread-safe.
final class WorkerPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [() -> Void] = []
    private var started = 0
    private var idle = 0
    private var stopping = false
    private let maxThreads: Int
    private let queueLimit: Int
    private let name: String

    init(threads: Int, queueLimit: Int, name: String = "prism-worker") {
        self.maxThreads = max(1, threads)
        self.queueLimit = max(0, queueLimit)
        self.name = name
    }

    /// Threads currently running work.
    var busyThreads: Int { condition.withLock { started - idle } }

    /// Threads running work, items waiting for one, and the two bounds, read together (/metrics).
    var use: PluginHost.WorkerPoolUse {
        condition.withLock { PluginHost.WorkerPoolUse(busy: started - idle, queued: queue.count, threads: maxThreads, queueLimit: queueLimit) }
    }

    /// Queues `work`; false when the pool is stopping or its queue is full (the caller answers
    /// UNAVAILABLE rather than waiting without bound).
    func submit(_ work: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        // `idle` counts threads still asleep; each queued item already has one of them on its
        // way. Only when every idle thread is spoken for does this item need a new thread, or
        // it would wait behind a call that may stream for minutes.
        if queue.count >= idle && started < maxThreads {
            started += 1
            NamedThread.start(name) { self.loop() }
        } else if queue.count >= queueLimit + idle {
            return false
        }
        queue.append(work)
        condition.signal()
        return true
    }

    /// Lets idle threads exit; work already queued still runs.
    func stop() {
        condition.withLock { stopping = true }
        condition.broadcast()
    }

    private func loop() {
        condition.lock()
        while true {
            while queue.isEmpty && !stopping {
                idle += 1
                condition.wait()
                idle -= 1
            }
            if queue.isEmpty {
                started -= 1
                condition.unlock()
                return
            }
            let work = queue.removeFirst()
            condition.unlock()
            work()
            condition.lock()
        }
    }
}
