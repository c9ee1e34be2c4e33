// The plugin host against real shared objects: the example plugin dlopened and described, and the
// plugins it must refuse (world-writable folder, group-writable file, wrong ABI, failing init)
// listed as failed with their reason while the good ones keep serving.
import Foundation
import Logging
@testable import PrismProviders
import XCTest

final class PluginLoadingTests: XCTestCase {
    private func host(_ folder: String) throws -> PluginHost { try Plugins.host(folder) }

    func testExamplePluginLoadsAndDescribesItsModels() throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-example.so")
        let host = try host(folder)
        host.start()
        defer { host.shutdown() }

        let plugins = host.plugins()
        XCTAssertEqual(plugins.map(\.fileName), ["libprism-plugin-example.so"])
        XCTAssertEqual(plugins.first?.state, .loaded)
        XCTAssertEqual(plugins.first?.provider?.name, "local")
        let matrix = host.capabilityMatrix()
        XCTAssertEqual(matrix.map(\.name), ["local/mediainfo", "local/mediainfo-lite"])
        XCTAssertEqual(matrix[0].inputs, [.text, .image, .pdf, .audio, .video])
        XCTAssertEqual(matrix[1].limits.maxImageLongEdge, 768)
        XCTAssertEqual(matrix[1].limits.imageMimeTypes, ["image/jpeg", "image/png"])
    }

    func testUnsafeOrBrokenPluginsAreListedAsFailedAndTheRestServe() throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-example.so")
        try Plugins.install(Plugins.badABI, into: folder, as: "libprism-plugin-badabi.so")
        let writable = try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-writable.so")
        chmod(writable, 0o775)
        // Not plugin names: ignored entirely.
        try Plugins.install(Plugins.testkit, into: folder, as: "libprismtest-plugin-testkit.so")
        try Plugins.install(Plugins.example, into: folder, as: "libexample.so")
        setenv("PRISM_TESTKIT_FAIL_INIT", "1", 1)
        defer { unsetenv("PRISM_TESTKIT_FAIL_INIT") }
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")

        let host = try host(folder)
        host.start()
        defer { host.shutdown() }
        let byName = Dictionary(uniqueKeysWithValues: host.plugins().map { ($0.fileName, $0.state) })
        XCTAssertEqual(byName.keys.sorted(), ["libprism-plugin-badabi.so", "libprism-plugin-example.so", "libprism-plugin-testkit.so", "libprism-plugin-writable.so"])
        XCTAssertEqual(byName["libprism-plugin-example.so"], .loaded)
        guard case .failed(let abi)? = byName["libprism-plugin-badabi.so"],
              case .failed(let initFailure)? = byName["libprism-plugin-testkit.so"],
              case .failed(let mode)? = byName["libprism-plugin-writable.so"] else {
            return XCTFail("expected failures, got \(byName)")
        }
        XCTAssertTrue(abi.contains("plugin ABI 99.0 is not supported"), abi)
        XCTAssertTrue(initFailure.contains("asked to fail by PRISM_TESTKIT_FAIL_INIT"), initFailure)
        XCTAssertTrue(mode.contains("writable by group or others"), mode)
        XCTAssertEqual(host.capabilityMatrix().map(\.name), ["local/mediainfo", "local/mediainfo-lite"])
    }

    /// Also the 2.0 host's fallback: a 1.x plugin refuses entry(2, 0) and loads with 1.3.
    func testBatchIsOfferedOnlyByPluginsBuiltForABI12() async throws {
        setenv("PRISM_TESTKIT_BATCH", "1", 1)
        defer { unsetenv("PRISM_TESTKIT_BATCH"); unsetenv("PRISM_TESTKIT_ABI") }
        for (version, offered) in [("2.0", true), ("1.2", true), ("1.1", false)] {
            setenv("PRISM_TESTKIT_ABI", version, 1)
            let folder = try Plugins.folder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
            let host = try host(folder)
            host.start()
            defer { host.shutdown() }
            let echo = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "testkit/echo" })
            XCTAssertEqual(echo.features.batch, offered, "ABI \(version)")
            // The call runs (on the blocking pool) whichever version the plugin was loaded with.
            let call = try host.startCall(model: echo, operation: .generate, request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("hi")])]))
            var text = ""
            loop: while true {
                switch await call.next() {
                case .event(.text(let t)): text += t
                case .event: continue
                case .end(let end):
                    XCTAssertTrue(end.isOK, "ABI \(version): \(end)")
                    break loop
                }
            }
            XCTAssertFalse(text.isEmpty, "ABI \(version): testkit/echo answered")
            if !offered {
                XCTAssertThrowsError(try host.startBatchCall(model: echo, action: .get(vendorBatchID: "b"))) { error in
                    XCTAssertEqual((error as? ProviderFailure)?.code, .failedPrecondition)
                    XCTAssertEqual((error as? ProviderFailure)?.message, "testkit/echo has no batch API")
                }
            }
        }
    }

    func testWorldWritableFolderIsRefused() throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.example, into: folder, as: "libprism-plugin-example.so")
        chmod(folder, 0o777)
        let host = try host(folder)
        host.start()
        defer { host.shutdown() }
        guard case .failed(let reason)? = host.plugins().first?.state else { return XCTFail("expected the plugin to be refused") }
        XCTAssertTrue(reason.contains("folder \(folder) is writable by group or others"), reason)
        XCTAssertTrue(host.capabilityMatrix().isEmpty)
    }

    func testEncodedRequestReachesThePluginAndEventsComeBack() async throws {
        let folder = try Plugins.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        let host = try host(folder)
        host.start()
        defer { host.shutdown() }
        let echo = try XCTUnwrap(host.capabilityMatrix().first { $0.name == "testkit/echo" })
        let call = try host.startCall(model: echo, operation: .generate,
                                      request: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("hello plugin")])]))
        var events: [ProviderEvent] = []
        loop: while true {
            switch await call.next() {
            case .event(let event): events.append(event)
            case .end(let end): XCTAssertTrue(end.isOK, "\(end)"); break loop
            }
        }
        XCTAssertEqual(events.first, .text("hello plugin\n"))
        XCTAssertEqual(events.last, .finished(stopReason: 1))
    }
}
