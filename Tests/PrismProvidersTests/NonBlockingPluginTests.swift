// A non-blocking (ABI 2.0) plugin written in C, plugins/tests/relay, against the fake OpenAI
// server: host->http_start from C, the answer relayed from the host's I/O loop, flow control when
// nobody reads, cancellation ending the exchange, and a plugin that ignores it being abandoned. C, so that these paths also run under
// ThreadSanitizer (tools/tsan.sh), where Swift plugins cannot load.
import CPrismPlugin
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class NonBlockingPluginTests: XCTestCase {
    /// Events per call the host buffers here. The relay emits one event per received piece.
    private static let budget = 8
    private static let cancelGrace = 0.5
    private var fake: VendorFake?
    private var host: PluginHost?
    private var folder: String?

    private func start() throws -> (PluginHost, ModelCapability) {
        let fake = try VendorFake(.openAI, key: "sk-test")
        self.fake = fake
        setenv("PRISM_RELAY_URL", fake.baseURL + "/chat/completions", 1)
        let folder = try Plugins.folder()
        self.folder = folder
        try Plugins.install("libprismtest-plugin-relay.so", into: folder, as: "libprism-plugin-relay.so")
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        options.bufferedEventsPerCall = Self.budget
        options.cancelGraceSeconds = Self.cancelGrace
        let host = try PluginHost(options: options, logger: Logger(label: "test"))
        self.host = host
        host.start()
        let model = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "local/relay" },
                                  "\(host.plugins().map { "\($0.fileName): \($0.state)" })")
        return (host, model)
    }

    override func tearDown() {
        host?.shutdown()
        fake?.stop()
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
        unsetenv("PRISM_RELAY_URL")
    }

    private func ask(_ host: PluginHost, _ model: ModelCapability, _ text: String) throws -> PluginCall {
        try host.startCall(model: model, operation: .generate, request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(text)])]))
    }

    /// Reads the call to its end: the relayed bytes and the end.
    private func drain(_ call: PluginCall) async -> (text: String, end: PluginCall.End) {
        var text = ""
        while true {
            switch await call.next() {
            case .event(.text(let piece)): text += piece
            case .event: continue
            case .end(let end): return (text, end)
            }
        }
    }

    func testTheAnswerIsRelayedFromTheLoop() async throws {
        let (host, model) = try start()
        let (text, end) = await drain(try ask(host, model, "hello relay"))
        XCTAssertTrue(end.isOK, "\(end)")
        XCTAssertTrue(text.contains("\"content\":\"You said: \""), text)
        XCTAssertTrue(text.contains("data: [DONE]"), text)
        XCTAssertEqual(host.workerPoolUse.busy, 0, "a non-blocking call holds no worker")
    }

    func testAnUnreadCallPausesItsExchangeAndResumes() async throws {
        let (host, model) = try start()
        let call = try ask(host, model, "flood")
        let blocked = try await XCTUnwrap(fake).waitForEntry(seconds: 60) { $0["event"] as? String == "blocked" }
        XCTAssertTrue(blocked, "the server never blocked: the host kept reading a call nobody reads")
        // One event per received piece: the event that fills the budget pauses the next piece.
        XCTAssertLessThanOrEqual(host.statistics.peakBufferedEvents, Self.budget + 1)
        let (text, end) = await drain(call)
        XCTAssertTrue(end.isOK, "\(end)")
        // 16,384 deltas of 4,096 characters, each in a JSON frame of its own.
        XCTAssertGreaterThan(text.utf8.count, 16384 * 4096)
        XCTAssertLessThanOrEqual(host.statistics.peakBufferedEvents, Self.budget + 1)
    }

    func testCancellingEndsTheExchangeAndTheServerSeesTheDisconnect() async throws {
        let (host, model) = try start()
        guard let end = await cancelAfterTheFirstPiece(try ask(host, model, "slow")) else { return }
        XCTAssertEqual(end.status, Int32(PRISM_STATUS_CANCELLED.rawValue), "\(end)")
        let disconnected = try await XCTUnwrap(fake).waitForEntry(seconds: 10) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(disconnected, "the server kept streaming to a cancelled call")
    }

    /// A non-blocking plugin that ignores a cancel: its exchange still ends (the vendor sees the
    /// disconnect), the reader gets the abandoned end after the grace period, the loop goes on
    /// serving, and the plugin's late finish releases the call (and its hold on the library).
    func testACallWhosePluginIgnoresTheCancelIsAbandonedAndReleasedByItsLateFinish() async throws {
        let (host, model) = try start()
        guard let end = await cancelAfterTheFirstPiece(try ask(host, model, "ignore-cancel slow")) else { return }
        XCTAssertTrue(end.abandoned, "\(end)")
        let disconnected = try await XCTUnwrap(fake).waitForEntry(seconds: 10) { $0["event"] as? String == "disconnected" }
        XCTAssertTrue(disconnected, "the host left the exchange of an abandoned call open")
        XCTAssertEqual(inFlight(host), 1, "the abandoned call is held until the plugin finishes it")
        // The next call finishes the abandoned one first, then is relayed as usual.
        let (text, next) = await drain(try ask(host, model, "hello again"))
        XCTAssertTrue(next.isOK, "\(next)")
        XCTAssertTrue(text.contains("data: [DONE]"), text)
        // Polled with a deadline: the second call is released on its loop just after its reader
        // has the end, and nothing announces that.
        let deadline = Date().addingTimeInterval(10)
        while inFlight(host) != 0 && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(inFlight(host), 0, "the late finish did not release the abandoned call")
    }

    /// Waits for the call's first piece, cancels it and reads it to its end; nil (a failure
    /// recorded) when no piece came.
    private func cancelAfterTheFirstPiece(_ call: PluginCall) async -> PluginCall.End? {
        guard case .event = await call.next() else {
            XCTFail("no first piece")
            return nil
        }
        call.cancel()
        return await drain(call).end
    }

    private func inFlight(_ host: PluginHost) -> Int {
        host.plugins().first { $0.fileName == "libprism-plugin-relay.so" }?.callsInFlight ?? -1
    }
}
