// Flow control of a non-blocking (ABI 2.0) vendor call against the fake OpenAI server: while
// nobody reads the call's events, the host stops reading the vendor's response (so the vendor's
// socket fills), holds no more than the call's budget plus one received chunk, and reads on,
// losing nothing, once the events are taken.
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class VendorFlowControlTests: XCTestCase {
    /// The fake's flood scenario (tools/fakes/openai_fake.py): deltas and bytes per delta.
    private static let floodDeltas = 16384
    private static let floodDeltaBytes = 4096
    /// Events per call the host buffers here, and what one received chunk may add past it: curl
    /// hands over at most 16 KiB at once, about four of the flood's 4 KiB frames.
    private static let budget = 16
    private static let chunkOvershoot = 8

    func testAnUnreadCallPausesTheVendorAndResumesWithNothingLost() async throws {
        let fake = try VendorFake(.openAI, key: "sk-test")
        defer { fake.stop() }
        setenv("OPENAI_API_KEY", "sk-test", 1)
        setenv("OPENAI_BASE_URL", fake.baseURL, 1)
        defer { unsetenv("OPENAI_API_KEY"); unsetenv("OPENAI_BASE_URL") }
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install("libprism-plugin-openai.so", into: folder, as: "libprism-plugin-openai.so")
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        options.bufferedEventsPerCall = Self.budget
        let host = try PluginHost(options: options, logger: Logger(label: "test"))
        host.start()
        defer { host.shutdown() }
        let model = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "openai/gpt-4o" })
        let call = try host.startCall(model: model, operation: .generate,
                                      request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("flood")])]))

        // Nothing reads the call: the host must stop reading the vendor, whose socket then fills.
        let blocked = try await fake.waitForEntry(seconds: 60) { $0["event"] as? String == "blocked" }
        XCTAssertTrue(blocked, "the vendor never blocked: the host kept reading a call nobody reads")
        let sent = fake.log().first { $0["event"] as? String == "blocked" }?["sent"] as? Int ?? Self.floodDeltas
        XCTAssertLessThan(sent, Self.floodDeltas)
        XCTAssertLessThanOrEqual(host.statistics.peakBufferedEvents, Self.budget + Self.chunkOvershoot,
                                 "an unread call buffered past its budget plus one chunk")

        // Reading resumes the exchange; every byte arrives, in order, and the call ends OK.
        var bytes = 0
        loop: while true {
            switch await call.next() {
            case .event(.text(let text)):
                XCTAssertTrue(text.allSatisfy { $0 == "f" || $0 == " " }, "a delta was corrupted")
                bytes += text.utf8.count
            case .event:
                continue
            case .end(let end):
                XCTAssertTrue(end.isOK, "\(end)")
                break loop
            }
        }
        XCTAssertEqual(bytes, Self.floodDeltas * Self.floodDeltaBytes)
        XCTAssertLessThanOrEqual(host.statistics.peakBufferedEvents, Self.budget + Self.chunkOvershoot)
        let completed = try await fake.waitForEntry { $0["event"] as? String == "completed" }
        XCTAssertTrue(completed, "the fake did not finish sending")
    }
}
