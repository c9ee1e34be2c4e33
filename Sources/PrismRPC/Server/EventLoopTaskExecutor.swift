// A Swift task executor that runs jobs on one NIO event loop. A handler that only relays
// messages to its stream (each step: take an event, encode it, queue it) can prefer it for that
// stretch, so each step runs where the write goes instead of waking a pool thread first.
import NIOCore

/// Runs the jobs of tasks that prefer it (`withTaskExecutorPreference`) on `eventLoop`.
///
/// Only for short, non-blocking steps: anything slow here holds up every connection of the loop.
/// A write from a job running here queues without waking the loop again.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: EventLoop

    public init(_ eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
