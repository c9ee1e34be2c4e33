// The `gemini` provider plugin: the Gemini API behind the Prism plugin ABI, with the key from
// GEMINI_API_KEY (or GOOGLE_API_KEY) and GEMINI_BASE_URL. Generate is streamGenerateContent?alt=sse
// (GeminiRequest.swift, GeminiStream.swift), with media over the inline limit sent through the
// Files API (GeminiFiles.swift) and response schemas converted to the OpenAPI subset
// (GeminiSchema.swift); synthesize is generateContent on a TTS model (GeminiSpeech.swift); batch is
// the Batch API with inline requests (GeminiBatch.swift); embed is batchEmbedContents
// (GeminiEmbeddings.swift).
import Foundation
import PrismPluginKit

@_cdecl("prism_plugin_entry")
public func prismPluginEntry(_ hostABIMajor: UInt32, _ hostABIMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(GeminiProvider.self, hostABIMajor: hostABIMajor)
}

/// Defaults, each with its reason (limits from shared/vendor-apis.md).
enum GeminiDefaults {
    static let baseURL = "https://generativelanguage.googleapis.com/v1beta"
    static let models = ["gemini-2.5-flash", "gemini-2.5-pro"]
    static let ttsModels = ["gemini-2.5-flash-preview-tts"]
    /// Families (ABI 1.3), most specific first: a `gemini-…-tts` id is a voice, any other
    /// `gemini-*` id takes text, images, PDFs, audio and video, so a model newer than this plugin
    /// (or a dated one, gemini-2.0-flash-001) is routable with the rows' limits.
    static let ttsFamilies = ["gemini-*-tts"]
    static let families = ["gemini-*"]
    static let embedModels = ["gemini-embedding-001", "text-embedding-004"]
    /// 3,600 images per request. Images are fitted in 3072×3072: the vendor scales larger ones
    /// down to that before tiling, so more pixels are waste. 20 MB per image: the historical
    /// inline request cap; media over the inline limit go through the Files API anyway.
    static let maxImages: UInt32 = 3600
    static let maxImageBytes: UInt64 = 20 * 1024 * 1024
    static let maxImageLongEdge: UInt32 = 3072
    static let maxImagePixels: UInt64 = 3072 * 3072
    /// Inline media beyond this (as base64, per request) goes through the Files API. The inline
    /// cap was 20 MB for years (100 MB since 2026-01-12): the safe figure, as Google counts it.
    static let inlineLimitBytes = 20_000_000
    /// With the Files API a medium may be up to 2 GB (the per-file cap).
    static let maxFileBytes: UInt64 = 2 * 1024 * 1024 * 1024
    /// 1,000 PDF pages, 50 MB per PDF; 9.5 hours of audio.
    static let maxPDFPages: UInt32 = 1000
    static let maxPDFBytes: UInt64 = 50 * 1024 * 1024
    static let maxAudioSeconds: UInt32 = 34_200
    /// The longest wait between Files polls (they start at 0.1 s and double): rarely enough not
    /// to hammer the API while a video takes minutes to process.
    static let filePollInterval: TimeInterval = 1
    static let fileProcessingTimeout: TimeInterval = 300
    /// The TTS voice when the request names none (the voice of the API's own examples).
    static let voice = "Kore"
    /// List prices, US dollars per million input and output tokens (text, image and video input;
    /// Pro's for prompts up to 200k tokens; the TTS model's output is audio). Batches: half.
    static let prices: [String: ModelPrices.Price] = [
        "gemini-2.5-flash": (0.30, 2.50), "gemini-2.5-pro": (1.25, 10), "gemini-2.5-flash-preview-tts": (0.50, 10),
    ]
}

/// A config the plugin cannot run with; the host lists the plugin as failed with this text.
struct GeminiConfigError: Error, CustomStringConvertible {
    var description: String
}

/// The plugin's config (the `gemini` object of the gateway config's plugins.config) over the
/// defaults; GEMINI_BASE_URL wins over `base_url`, as in Google's SDKs. Keys: `base_url`,
/// `upload_url`, `models`, `tts_models`, `embed_models`, `inline_limit_bytes`, `response_schema_field`,
/// `file_poll_interval_ms`, `file_processing_timeout_seconds`; e.g.
///
///     {"plugins": {"config": {"gemini": {"inline_limit_bytes": 5000000, "response_schema_field": "responseJsonSchema"}}}}
struct GeminiSettings {
    var apiKey: String?
    var baseURL: String
    /// POST target of the resumable upload. Gemini serves it on the API's host with `/upload`
    /// before the version: https://host/v1beta → https://host/upload/v1beta/files. Derived from
    /// the base URL (so a fake or a proxy gets it too) unless `upload_url` is given.
    var uploadURL: String
    var models: [String]
    var ttsModels: [String]
    var embedModels: [String]
    /// Media are uploaded, largest first, while the inline part (base64 and text) is over this.
    var inlineLimitBytes: Int
    /// "responseSchema" (default: the documented OpenAPI subset, converted from the client's
    /// JSON Schema) or "responseJsonSchema" (the client's JSON Schema as it is).
    var schemaField: String
    /// The longest wait between polls of an uploaded file, and how long it may stay PROCESSING.
    var filePollInterval: TimeInterval
    var fileProcessingTimeout: TimeInterval
    var prices: ModelPrices
    /// The families declared (ABI 1.3): the config's (`families`, see ModelFamilies), then the defaults.
    var families: [ModelInfo] = []

    init(config: [String: Any], env: (String) -> String?) throws {
        apiKey = env("GEMINI_API_KEY") ?? env("GOOGLE_API_KEY")
        baseURL = (env("GEMINI_BASE_URL") ?? (config["base_url"] as? String) ?? GeminiDefaults.baseURL)
            .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if let url = config["upload_url"] as? String {
            uploadURL = url
        } else {
            guard var parts = URLComponents(string: baseURL), parts.host != nil else {
                throw GeminiConfigError(description: "gemini: base URL '\(baseURL)' is not an absolute URL")
            }
            parts.path = "/upload" + parts.path + "/files"
            uploadURL = parts.string ?? baseURL
        }
        models = (config["models"] as? [String]) ?? GeminiDefaults.models
        ttsModels = (config["tts_models"] as? [String]) ?? GeminiDefaults.ttsModels
        embedModels = (config["embed_models"] as? [String]) ?? GeminiDefaults.embedModels
        inlineLimitBytes = try Self.positive(config, "inline_limit_bytes") ?? GeminiDefaults.inlineLimitBytes
        schemaField = (config["response_schema_field"] as? String) ?? "responseSchema"
        guard ["responseSchema", "responseJsonSchema"].contains(schemaField) else {
            throw GeminiConfigError(description: "gemini: response_schema_field must be responseSchema or responseJsonSchema, not '\(schemaField)'")
        }
        filePollInterval = try Self.positive(config, "file_poll_interval_ms").map { Double($0) / 1000 } ?? GeminiDefaults.filePollInterval
        fileProcessingTimeout = try Self.positive(config, "file_processing_timeout_seconds").map(Double.init) ?? GeminiDefaults.fileProcessingTimeout
        prices = try ModelPrices(defaults: GeminiDefaults.prices, config: config, plugin: "gemini")
        families = try ModelFamilies.configured(
            config, plugin: "gemini", models: models.map(GeminiProvider.generateModel) + ttsModels.map(GeminiProvider.speechModel),
            builtIn: GeminiDefaults.ttsFamilies.map(GeminiProvider.speechModel) + GeminiDefaults.families.map(GeminiProvider.generateModel))
    }

    /// The URL path of `model`'s `method` ("/models/gemini-2.5-flash:generateContent"). The id is
    /// the client's (any id a family matches reaches the plugin as it is), so everything but
    /// RFC 3986's unreserved characters is percent-encoded: no id can leave `/models/` or add a query.
    static func modelPath(_ model: String, _ method: String) -> String {
        var unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        unreserved.insert(charactersIn: "-._~")
        return "/models/" + (model.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "") + ":" + method
    }

    /// Whether `model` only speaks: a listed TTS model, or an unlisted one named like one.
    func isSpeechModel(_ model: String) -> Bool {
        ttsModels.contains(model) || (!models.contains(model) && model.hasSuffix("-tts"))
    }

    private static func positive(_ config: [String: Any], _ key: String) throws -> Int? {
        guard let value = config[key] else { return nil }
        guard let number = value as? NSNumber, number.doubleValue >= 1, number.doubleValue == number.doubleValue.rounded() else {
            throw GeminiConfigError(description: "gemini: \(key) must be a positive whole number, not \(value)")
        }
        return number.intValue
    }
}

final class GeminiProvider: ProviderPlugin, @unchecked Sendable {
    let settings: GeminiSettings

    init(config: [String: Any], log: PluginLog) throws {
        settings = try GeminiSettings(config: config, env: PluginEnvironment.value)
        if settings.apiKey == nil { log(.info, "gemini: not configured (set GEMINI_API_KEY or GOOGLE_API_KEY)") }
    }

    var info: ProviderInfo {
        guard settings.apiKey != nil else {
            return ProviderInfo(name: "gemini", version: "0.2.0", description: "not configured: set GEMINI_API_KEY or GOOGLE_API_KEY", models: [])
        }
        let description = "Gemini API at \(settings.baseURL); media over \(settings.inlineLimitBytes) inline bytes go through the Files API"
        return ProviderInfo(name: "gemini", version: "0.2.0", description: description,
                            models: settings.prices.priced(settings.models.map(Self.generateModel) + settings.ttsModels.map(Self.speechModel)
                                                                      + settings.embedModels.map(ModelInfo.embedder)),
                            families: settings.prices.priced(settings.families))
    }

    static func generateModel(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.inputs = [.text, .image, .pdf, .audio, .video]
        m.tools = true
        m.jsonSchema = true
        // The Batch API (half price, within 24 h), inline requests: GeminiBatch.swift.
        m.batch = true
        m.maxImages = GeminiDefaults.maxImages
        m.maxImageBytes = GeminiDefaults.maxImageBytes
        m.maxImageLongEdge = GeminiDefaults.maxImageLongEdge
        m.maxImagePixels = GeminiDefaults.maxImagePixels
        m.imageMimeTypes = ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"]
        m.maxPDFPages = GeminiDefaults.maxPDFPages
        m.maxPDFBytes = GeminiDefaults.maxPDFBytes
        m.maxAudioSeconds = GeminiDefaults.maxAudioSeconds
        m.maxAudioBytes = GeminiDefaults.maxFileBytes
        m.maxRequestBytes = GeminiDefaults.maxFileBytes
        return m
    }

    /// A TTS row: text in, 24 kHz PCM out, answered whole (generateContent), no tools or system prompt.
    static func speechModel(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.operations = [.synthesize]
        m.inputs = [.text]
        m.outputs = [.audio]
        m.streaming = false
        m.systemPrompt = false
        return m
    }

    func serve(_ request: ProviderRequest, call: ProviderCall) throws {
        guard let apiKey = settings.apiKey else { throw CallFailure(.failedPrecondition, "gemini is not configured (no GEMINI_API_KEY)") }
        switch request.operation {
        case nil, .generate?:
            guard !settings.isSpeechModel(request.model) else {
                throw CallFailure(.invalidArgument, "gemini model \(request.model) only synthesizes speech")
            }
            try generate(request, call: call, apiKey: apiKey)
        case .synthesize?:
            guard settings.isSpeechModel(request.model) else {
                throw CallFailure(.invalidArgument, "gemini model \(request.model) is not a TTS model (those are: \(settings.ttsModels.joined(separator: ", ")))")
            }
            call.runBlocking { [settings] http in try GeminiSpeech(settings: settings, apiKey: apiKey, http: http).synthesize(request, call: call) }
        case .embed?:
            call.runBlocking { [settings] http in try GeminiEmbeddings(settings: settings, apiKey: apiKey, http: http).embed(request, call: call) }
        case .batch?:
            call.runBlocking { [settings] http in
                try GeminiBatch(settings: settings, apiKey: apiKey, http: http, call: call, deadline: request.deadline).serve(request.batch)
            }
        case let other?:
            throw CallFailure(.unimplemented, "gemini does not serve \(other)")
        }
    }

    /// streamGenerateContent as a codec on the call's I/O loop. Media too large to send inline
    /// are uploaded first (the Files API, several blocking requests) on the host's blocking pool,
    /// which then starts the stream.
    private func generate(_ request: ProviderRequest, call: ProviderCall, apiKey: String) throws {
        let settings = settings
        func stream(uploaded: [MediaPosition: UploadedFile]) throws {
            var http = HTTPRequest(url: settings.baseURL + GeminiSettings.modelPath(request.model, "streamGenerateContent") + "?alt=sse")
            http.headers = [("content-type", "application/json"), ("x-goog-api-key", apiKey)]
            http.body = try GeminiRequest.body(for: request, files: uploaded, schemaField: settings.schemaField)
            http.deadline = request.deadline
            call.stream(http, decoding: GeminiStream(call: call))
        }
        guard GeminiFiles.inlineSize(of: request) > settings.inlineLimitBytes else { return try stream(uploaded: [:]) }
        call.runBlocking { http in
            let files = GeminiFiles(settings: settings, apiKey: apiKey, http: http, call: call, deadline: request.deadline)
            try stream(uploaded: try files.uploadOversized(request))
        }
    }
}
