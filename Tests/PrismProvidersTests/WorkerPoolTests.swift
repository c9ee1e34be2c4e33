// The plugin worker pool: a burst of calls after a quiet spell gets threads of its own rather
// than queueing behind calls that may stream for minutes, and the pool size set in the server's
// settings is the one a gateway runs with (a full pool answers UNAVAILABLE); the host's threads
// carry their names to the kernel.
import Foundation
@testable import PrismProviders
import PrismServer
import XCTest

final class WorkerPoolTests: XCTestCase {
    func testBurstAfterIdleSpellRunsAtOnce() throws {
        let pool = WorkerPool(threads: 4, queueLimit: 0)
        defer { pool.stop() }
        // Two quick items leave two idle threads behind.
        let warm = DispatchGroup()
        for _ in 0..<2 {
            warm.enter()
            XCTAssertTrue(pool.submit { warm.leave() })
        }
        XCTAssertEqual(warm.wait(timeout: .now() + 10), .success)
        let end = Date().addingTimeInterval(10)
        while pool.busyThreads > 0 && Date() < end { usleep(1000) }
        XCTAssertEqual(pool.busyThreads, 0, "the first two threads never went idle")
        // Four long items at once: each must run on a thread of its own, none waits in the queue.
        let running = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        for item in 0..<4 {
            XCTAssertTrue(pool.submit { running.signal(); release.wait() }, "item \(item) refused")
        }
        for item in 0..<4 {
            XCTAssertEqual(running.wait(timeout: .now() + 10), .success, "item \(item) never started")
        }
        // Every thread is busy and nothing may queue: the next item is refused.
        XCTAssertFalse(pool.submit {})
        for _ in 0..<4 { release.signal() }
    }

    func testHostThreadsCarryTheirNamesToTheKernel() throws {
        // What top -H, perf and /proc show: the names the thread map in prism_plugin.h gives.
        let pool = WorkerPool(threads: 1, queueLimit: 0, name: "prism-test-worker-pool")
        defer { pool.stop() }
        let ran = DispatchSemaphore(value: 0)
        XCTAssertTrue(pool.submit { ran.signal() })  // the pool's first thread starts for it
        XCTAssertEqual(ran.wait(timeout: .now() + 10), .success)
        let loops = HostIOLoop.shared  // started on first use
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)
        }
        XCTAssertTrue(names.contains("prism-test-work\n"), "the kernel keeps a name's first 15 bytes: \(names)")
        for index in loops.indices {
            XCTAssertTrue(names.contains("prism-io-\(index)\n"), "no thread prism-io-\(index) among \(names)")
        }
    }

    func testConfiguredPoolSizeReachesTheGateway() async throws {
        let folder = try Plugins.folder()
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        let gateway = try await TestGateway(folder: folder) { settings in
            try! settings.setPluginWorkerThreads(1)
            try! settings.setPluginQueuedCalls(0)
        }
        XCTAssertEqual(gateway.gateway.plugins.options.workerThreads, 1)
        XCTAssertEqual(gateway.gateway.plugins.options.queuedCalls, 0)
        // One slow stream holds the only worker...
        let slow = try await gateway.generate(GenerateRequestBuilder("go").routed(to: "testkit/slow"))
        var iterator = slow.responses.makeAsyncIterator()
        while let reply = try await iterator.next() {
            if case .text = try Event(reply) { break }
        }
        // ...so a second call is refused, saying why.
        let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("hello").routed(to: "testkit/echo"))
        XCTAssertEqual(status.code, .unavailable, status.message)
        XCTAssertTrue(status.message.contains("worker"), status.message)
        slow.cancel()
        _ = await slow.status()
        // The slow model sees the cancellation between ticks; stop only once it has.
        let end = Date().addingTimeInterval(10)
        while gateway.gateway.plugins.plugins().contains(where: { $0.callsInFlight > 0 }) && Date() < end {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        await gateway.stop()
    }
}
