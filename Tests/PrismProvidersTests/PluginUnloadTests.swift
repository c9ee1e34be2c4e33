// A plugin that finishes its last call from a thread of its own while it drains (removed or
// replaced): shutdown and dlclose must run on the host's unload queue, not inside that finish.
// The testkit's shutdown joins its threads and aborts when called on one of them.
import CPrismPlugin
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class PluginUnloadTests: XCTestCase {
    /// How long the unload may take once the last call has ended.
    private let unloadDeadline: TimeInterval = 5

    private func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(unloadDeadline)
        while !condition() {
            guard Date() < deadline else { return XCTFail("timed out waiting for: \(what)") }
            usleep(1000)
        }
    }

    private func runDetachedCallThroughDrain(replace: Bool) async throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        let host = try Plugins.host(folder)
        host.start()
        defer { host.shutdown() }
        let detached = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "testkit/detached" })

        let call = try host.startCall(model: detached, operation: .generate,
                                      request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("wait")])]))
        // The plugin drains with the call in flight: its finish, from the plugin's thread, ends it.
        if replace {
            try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        } else {
            unlink(file)
        }
        host.rescan()
        let draining = host.plugins().filter { if case .draining = $0.state { return true } else { return false } }
        XCTAssertEqual(draining.map(\.callsInFlight), [1], "the old library drains with its call in flight")

        call.cancel()
        guard case .end(let end) = await call.next() else { return XCTFail("a cancelled detached call emits nothing") }
        XCTAssertEqual(end.status, Int32(PRISM_STATUS_CANCELLED.rawValue))
        XCTAssertEqual(end.message, "cancelled on the plugin's own thread")

        // Unloaded (shutdown joined the plugin's thread, then dlclose) and the process still runs.
        try waitUntil("the drained library unloaded") {
            !host.plugins().contains { if case .draining = $0.state { return true } else { return false } }
        }
        XCTAssertEqual(host.plugins().map(\.state), replace ? [.loaded] : [])
    }

    func testFinishingOnThePluginsOwnThreadWhileRemovedUnloadsOnTheHostQueue() async throws {
        try await runDetachedCallThroughDrain(replace: false)
    }

    func testFinishingOnThePluginsOwnThreadWhileReplacedUnloadsOnTheHostQueue() async throws {
        try await runDetachedCallThroughDrain(replace: true)
    }

}
