// Removes expired response-cache entries on a timer, so answers nobody asks for again do not sit
// on disk until the size bound pushes them out. Runs on its own queue; each sweep is one DELETE.
import Foundation

/// Safe: its only state, `timer`, is set in init and never reassigned; DispatchSource's cancel may be
/// called from any thread, and the sweeps run on the timer's own serial queue.
public final class CacheSweeper: @unchecked Sendable {
    private let timer: DispatchSourceTimer

    /// Sweeps `cache` every `interval` seconds, the first after one interval, until `stop()`.
    public init(_ cache: any ResponseCache, every interval: TimeInterval) {
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "prism.store.cache-sweeper"))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(Int(interval * 100)))
        timer.setEventHandler {
            let done = DispatchSemaphore(value: 0)
            // One sweep at a time: the timer's queue waits for this one (it is not an event loop).
            Task {
                _ = try? await cache.removeExpired()
                done.signal()
            }
            done.wait()
        }
        timer.activate()
    }

    public func stop() { timer.cancel() }
}

