// A call cancelled at the moment its plugin finishes, again and again, with the reading task on a
// task executor of its own (as Generate's relay runs on its connection's event loop): every read
// must end. A reader resumed while the call's lock was held could deadlock with the cancellation
// handler, which waits for that lock under the runtime's lock of the task.
import Foundation
import Logging
@testable import PrismProviders
import XCTest

/// Runs jobs on one serial dispatch queue: a stand-in for an event loop.
private final class QueueExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "cancel-race-executor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

final class CancelRaceTests: XCTestCase {
    func testCancellingAsThePluginFinishesAlwaysEnds() async throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        let host = try Plugins.host(folder)
        host.start()
        defer { host.shutdown() }
        let echo = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "testkit/echo" })
        let executor = QueueExecutor()

        for round in 0..<400 {
            let call = try host.startCall(model: echo, operation: .generate,
                                          request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("race \(round)")])]))
            let ended = expectation(description: "round \(round) ended")
            let reader = Task {
                await withTaskExecutorPreference(executor) {
                    while case .event = await call.next() {}
                }
                ended.fulfill()
            }
            // The echo answers within microseconds: cancel around then, a little later each round,
            // from a thread of its own, so that a deadlock fails the test instead of blocking it.
            DispatchQueue.global().async {
                if round % 4 != 0 { usleep(UInt32(round % 40) * 5) }
                reader.cancel()
            }
            await fulfillment(of: [ended], timeout: 10)
        }
    }
}
