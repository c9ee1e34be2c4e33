// The vendor batch tests' shared support: BatchTestBed runs one vendor plugin in a PluginHost of
// its own against the vendor's fake, and BatchItems builds batch items and reads their results.
import Foundation
import Logging
import PrismProviders
import XCTest

/// One vendor plugin in a PluginHost of its own, pointed at the vendor's fake.
final class BatchTestBed {
    let fake: VendorFake
    let host: PluginHost
    /// The name `submit` gives a batch unless told another.
    let displayName: String
    private let vendor: Vendor
    private let folder: String

    /// Starts `vendor`'s fake requiring `fakeKey`, and a host whose plugin is given `key` (nil =
    /// no key at all) and the plugin config `config` (under the plugin's name, e.g. "gemini").
    init(_ vendor: Vendor, fakeKey: String, key: String?, config: [String: String] = [:], displayName: String) throws {
        self.vendor = vendor
        self.displayName = displayName
        fake = try VendorFake(vendor, key: fakeKey)
        do {
            if let key { setenv(vendor.keyVariable, key, 1) } else { unsetenv(vendor.keyVariable) }
            setenv(vendor.baseURLVariable, fake.baseURL, 1)
            folder = try Plugins.folder()
            try Plugins.install(vendor.plugin, into: folder, as: vendor.plugin)
            var options = PluginHost.Options(directories: [folder])
            options.watch = false
            options.pluginConfig = config
            var logger = Logger(label: "batch-test")
            logger.logLevel = .critical
            host = try PluginHost(options: options, logger: logger)
        } catch {
            fake.stop()
            throw error
        }
        host.start()
    }

    func stop() {
        host.shutdown()
        fake.stop()
        unsetenv(vendor.keyVariable)
        unsetenv(vendor.baseURLVariable)
        try? FileManager.default.removeItem(atPath: folder)
    }

    func model(_ name: String) throws -> ModelCapability {
        try XCTUnwrap(host.capabilityMatrix().first { $0.name == name }, "\(name) not in \(host.capabilityMatrix().map(\.name))")
    }

    /// Submits `items` as one batch named `name`, or `displayName` without one.
    func submit(_ model: ModelCapability, _ items: [(customID: String, request: GenerationRequest)],
                name: String? = nil) async throws -> BatchStatus {
        try await host.batchStatus(model: model, action: .submit(items: items, displayName: name ?? displayName))
    }

    /// The fake's log entries of one kind ("batch-create", "batch-get", ...).
    func logged(_ kind: String) -> [[String: Any]] {
        fake.requests.filter { $0["kind"] as? String == kind }
    }

    /// GETs until the batch leaves RUNNING (at most `polls` times); every status seen, in order.
    func pollUntilDone(_ model: ModelCapability, _ id: String, polls: Int = 5) async throws -> [BatchStatus] {
        var seen: [BatchStatus] = []
        for _ in 0..<polls {
            let status = try await host.batchStatus(model: model, action: .get(vendorBatchID: id))
            seen.append(status)
            if status.state != .running { break }
        }
        return seen
    }

    /// Runs `body`, which must throw a ProviderFailure; returns it.
    func failure(_ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async -> ProviderFailure? {
        do {
            try await body()
            XCTFail("expected a failure", file: file, line: line)
        } catch let failure as ProviderFailure {
            return failure
        } catch {
            XCTFail("expected a ProviderFailure, got \(error)", file: file, line: line)
        }
        return nil
    }
}

/// What a batch test asks of one item, and reads back from its result.
enum BatchItems {
    static func text(_ prompt: String, maxTokens: UInt32 = 0) -> GenerationRequest {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(prompt)])])
        request.maxTokens = maxTokens
        return request
    }

    static func image(_ prompt: String, _ png: Data) -> GenerationRequest {
        GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(prompt), .media(MediaInput(mimeType: "image/png", data: png, name: "dot.png"))])])
    }

    static func tool(_ prompt: String) -> GenerationRequest {
        var request = text(prompt)
        request.tools = [ToolSpec(name: "get_weather", description: "Weather of a city",
                                  inputSchemaJSON: #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#)]
        return request
    }

    static func text(of result: BatchItemResult) -> String {
        result.events.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
    }

    static func toolCalls(of result: BatchItemResult) -> [[String]] {
        result.events.compactMap { if case let .toolCall(id, name, args) = $0 { return [id, name, args] } else { return nil } }
    }

    /// The item's usage event, if it has one.
    static func usage(of result: BatchItemResult) -> Usage? {
        result.events.compactMap { if case .usage(let u) = $0 { return u } else { return nil } }.first
    }

    /// The input and output tokens of the item's usage; none without one.
    static func tokens(of result: BatchItemResult) -> [UInt64] {
        usage(of: result).map { [$0.inputTokens, $0.outputTokens] } ?? []
    }

    static func stopReason(of result: BatchItemResult) -> Int? {
        result.events.compactMap { if case .finished(let reason) = $0 { return reason } else { return nil } }.first
    }
}
