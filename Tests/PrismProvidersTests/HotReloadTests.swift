// Hot reload against a running server: a plugin copied into the watched folder appears in
// ListProviders within a second, a removed one disappears, and one replaced mid-stream drains
// (the call in flight finishes on the old code) while new calls go to the new file.
import Foundation
import PrismProto
import PrismRPC
import XCTest

final class HotReloadTests: XCTestCase {
    func testCopyInRemoveAndReplaceMidStream() async throws {
        let folder = try Plugins.folder()
        let gateway = try await TestGateway(folder: folder)
        do {
            let initial = try await gateway.providers()
            XCTAssertTrue(initial.isEmpty)

            // Copy in: loaded without a restart, within a second.
            try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
            try await gateway.waitFor(seconds: 1, "testkit loaded") { $0.contains { $0.plugin == "libprism-plugin-testkit.so" && $0.state == PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED } }

            // Replace mid-stream: the slow call keeps streaming from the old code.
            let call = try await gateway.generate(GenerateRequestBuilder("go").routed(to: "testkit/slow"))
            var iterator = call.responses.makeAsyncIterator()
            _ = try await iterator.next()  // routed
            _ = try await iterator.next()  // tick 0
            try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
            try await gateway.waitFor(seconds: 1, "old version draining, new one loaded") { providers in
                providers.contains { $0.state == PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_DRAINING && $0.reason.contains("replaced") }
                    && providers.contains { $0.state == PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED }
            }
            // A new call goes to the new version while the old one drains.
            let (_, fresh) = try await gateway.generateAll(GenerateRequestBuilder("new code").routed(to: "testkit/echo"))
            XCTAssertEqual(fresh.code, .ok)
            var ticks = 1
            while let reply = try await iterator.next() {
                if case .text = try Event(reply) { ticks += 1 }
            }
            let finalStatus = await call.status()
        XCTAssertEqual(finalStatus.code, .ok, finalStatus.message)
            XCTAssertEqual(ticks, 400, "the call in flight finished on the old code")
            try await gateway.waitFor(seconds: 1, "old version unloaded") { providers in
                providers.count == 1 && providers[0].state == PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED
            }

            // Remove: gone within a second; Generate then says nothing is loaded.
            unlink("\(folder)/libprism-plugin-testkit.so")
            try await gateway.waitFor(seconds: 1, "testkit removed") { $0.isEmpty }
            let (_, status) = try await gateway.generateAll(GenerateRequestBuilder("anyone?"))
            XCTAssertEqual(status.code, .failedPrecondition)
            XCTAssertTrue(status.message.contains("no provider plugin is loaded"), status.message)
        } catch {
            await gateway.stop()
            throw error
        }
        await gateway.stop()
    }
}
