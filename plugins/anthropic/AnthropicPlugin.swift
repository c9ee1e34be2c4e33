// The `anthropic` provider plugin: the Messages API with streaming behind the Prism plugin ABI,
// with the key and base URL from the Anthropic SDK's environment variables. The request mapping
// is in MessagesRequest.swift, the event stream in MessagesStream.swift, Message Batches in
// Batches.swift.
import Foundation
import PrismPluginKit

@_cdecl("prism_plugin_entry")
public func prismPluginEntry(_ hostABIMajor: UInt32, _ hostABIMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(AnthropicProvider.self, hostABIMajor: hostABIMajor)
}

/// Defaults, each with its reason (limits from shared/vendor-apis.md).
enum AnthropicDefaults {
    static let baseURL = "https://api.anthropic.com"
    static let version = "2023-06-01"
    static let models = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]
    /// The Messages API requires max_tokens; this is used when the client sets none.
    static let maxTokens = 4096
    /// Families (ABI 1.3): every Claude model takes text, images and PDFs and calls tools, so any
    /// `claude-*` id (a dated snapshot such as claude-sonnet-4-20250514, or a model newer than this
    /// plugin) is routable with the rows' limits; its price is unknown unless the config gives one.
    static let families = ["claude-*"]
    /// 5 MB per image, a cap the API applies to the base64 text: 3/4 of 5 MiB in raw bytes.
    static let maxImageBytes: UInt64 = 5 * 1024 * 1024 * 3 / 4
    /// A long edge over 1568 px, or more than ~1.15 MP (~1,600 tokens), is downscaled by the
    /// vendor before the model sees it, so the gateway fits to both: sending more is wasted bytes
    /// and a second, server-side resize.
    static let maxImageLongEdge: UInt32 = 1568
    static let maxImagePixels: UInt64 = 1_150_000
    /// 100 images per request for 200k-context models (the conservative figure).
    static let maxImages: UInt32 = 100
    /// 100 PDF pages for 200k-context models; the request cap is 32 MB.
    static let maxPDFPages: UInt32 = 100
    static let maxRequestBytes: UInt64 = 32 * 1024 * 1024
    /// List prices, US dollars per million input and output tokens (Message Batches: half).
    static let prices: [String: ModelPrices.Price] = [
        "claude-sonnet-4-5": (3, 15), "claude-haiku-4-5": (1, 5), "claude-opus-4-1": (15, 75),
    ]
}

final class AnthropicProvider: ProviderPlugin, @unchecked Sendable {
    let baseURL: String
    let apiKey: String?
    let models: [String]
    let prices: ModelPrices
    /// The config's families (`families`, see ModelFamilies) before the built-in ones.
    let families: [ModelInfo]

    init(config: [String: Any], log: PluginLog) throws {
        apiKey = PluginEnvironment.value("ANTHROPIC_API_KEY")
        baseURL = (PluginEnvironment.value("ANTHROPIC_BASE_URL") ?? (config["base_url"] as? String) ?? AnthropicDefaults.baseURL)
            .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        models = (config["models"] as? [String]) ?? AnthropicDefaults.models
        prices = try ModelPrices(defaults: AnthropicDefaults.prices, config: config, plugin: "anthropic")
        families = try ModelFamilies.configured(config, plugin: "anthropic", models: models.map(Self.row),
                                                builtIn: AnthropicDefaults.families.map(Self.row))
        if apiKey == nil { log(.info, "anthropic: not configured (set ANTHROPIC_API_KEY)") }
    }

    var info: ProviderInfo {
        guard apiKey != nil else {
            return ProviderInfo(name: "anthropic", version: "0.1.0", description: "not configured: set ANTHROPIC_API_KEY", models: [])
        }
        return ProviderInfo(name: "anthropic", version: "0.1.0", description: "Anthropic Messages API at \(baseURL)",
                            models: prices.priced(models.map(Self.row)), families: prices.priced(families))
    }

    /// What every Claude model can do, for a known id or a family pattern alike.
    static func row(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.inputs = [.text, .image, .pdf]
        m.tools = true
        // A response schema becomes a forced tool (SchemaTool.swift).
        m.jsonSchema = true
        // Message Batches (half price, answered within 24 h): Batches.swift.
        m.batch = true
        m.maxImages = AnthropicDefaults.maxImages
        m.maxImageBytes = AnthropicDefaults.maxImageBytes
        m.maxImageLongEdge = AnthropicDefaults.maxImageLongEdge
        m.maxImagePixels = AnthropicDefaults.maxImagePixels
        m.imageMimeTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"]
        m.maxPDFPages = AnthropicDefaults.maxPDFPages
        m.maxPDFBytes = AnthropicDefaults.maxRequestBytes
        m.maxRequestBytes = AnthropicDefaults.maxRequestBytes
        return m
    }

    func serve(_ request: ProviderRequest, call: ProviderCall) throws {
        guard request.operation == nil || request.operation == .generate || request.operation == .batch else {
            throw CallFailure(.unimplemented, "anthropic serves generate and batch only")
        }
        guard let apiKey else { throw CallFailure(.failedPrecondition, "anthropic is not configured (no ANTHROPIC_API_KEY)") }
        if request.operation == .batch {
            // Several requests written blocking: on the host's blocking pool.
            return call.runBlocking { [baseURL] http in
                try AnthropicBatches(baseURL: baseURL, apiKey: apiKey, http: http, call: call, deadline: request.deadline).serve(request.batch)
            }
        }
        var http = HTTPRequest(url: baseURL + "/v1/messages")
        http.headers = [("content-type", "application/json"), ("accept", "text/event-stream"),
                        ("anthropic-version", AnthropicDefaults.version), ("x-api-key", apiKey)]
        http.body = try MessagesRequest.body(for: request)
        http.deadline = request.deadline
        // The streamed answer: a codec on the call's I/O loop.
        call.stream(http, decoding: MessagesStream(call: call))
    }
}
