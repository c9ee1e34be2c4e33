// The `openai` provider plugin: Chat Completions (and OpenAI-compatible local servers such as
// vLLM, llama.cpp or Ollama), transcriptions, speech and image generation behind the Prism plugin
// ABI, with settings from the OpenAI SDK's environment variables. The chat mapping is in
// ChatRequest.swift and ChatStream.swift, the model rows in OpenAIModels.swift, and each other
// endpoint in its own file (Transcription, Speech, ImageGeneration, and the Batch API in Batch and BatchAPI).
import Foundation
import PrismPluginKit

@_cdecl("prism_plugin_entry")
public func prismPluginEntry(_ hostABIMajor: UInt32, _ hostABIMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(OpenAIProvider.self, hostABIMajor: hostABIMajor)
}

/// Defaults, each with its reason.
enum OpenAIDefaults {
    static let version = "0.2.0"
    static let baseURL = "https://api.openai.com/v1"
    /// Models listed when the config names none: the vision-capable chat models most used.
    static let models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"]
    /// The other endpoints' models, listed by default only with a key (api.openai.com has them; a
    /// keyless local server rarely does, so its config must name them).
    static let audioModels = ["gpt-4o-audio-preview"]
    static let transcribeModels = ["whisper-1"]
    static let speechModels = ["tts-1", "gpt-4o-mini-tts"]
    static let imageModels = ["gpt-image-1"]
    static let embedModels = ["text-embedding-3-small", "text-embedding-3-large"]
    /// The model a keyless local server is listed under when the config names none; such
    /// servers (vLLM, llama.cpp, Ollama) take any model name or the one they serve.
    static let localModel = "local"
    /// Per-image limits of vendor-apis.md: ≤20 MB; for `high` detail the vendor fits the image in
    /// 2048×2048 and then scales its short side to 768, so at most 2048 × 768 pixels reach the
    /// model (the patch models, 4.1-mini/nano and o4-mini, stop at 1536 patches of 32×32: the same
    /// 1,572,864). Fitting to all three here spares the bytes and the vendor's second resize.
    static let maxImageBytes: UInt64 = 20 * 1024 * 1024
    static let maxImageLongEdge: UInt32 = 2048
    static let maxImageShortEdge: UInt32 = 768
    static let maxImagePixels: UInt64 = 2048 * 768
    /// 500 images per request, and ≤50 MB of image bytes: 50 MB / 20 MB per image would allow
    /// only 2, so the count stays the vendor's and the request cap bounds the total.
    static let maxImages: UInt32 = 500
    static let maxRequestBytes: UInt64 = 64 * 1024 * 1024
    /// List prices, US dollars per million input and output tokens (text tokens for the audio
    /// and image models; whisper-1 and tts-1 are priced per minute and per character, so they
    /// have none here). The Batch API: half.
    static let prices: [String: ModelPrices.Price] = [
        "gpt-4o": (2.50, 10), "gpt-4o-mini": (0.15, 0.60), "gpt-4.1": (2, 8), "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4o-audio-preview": (2.50, 10), "gpt-4o-mini-tts": (0.60, 12), "gpt-image-1": (5, 40),
        "text-embedding-3-small": (0.02, 0), "text-embedding-3-large": (0.13, 0),
    ]
}

/// Where and how to reach the API; the key never leaves this struct except in the header.
struct OpenAISettings {
    var baseURL: String
    var apiKey: String?
    /// Whether a base URL or a key was given at all; without either the provider is unconfigured.
    var configured: Bool
    /// Chat models; chat models that also take audio (input_audio parts); transcription, speech
    /// and image generation models. Config keys: models, audio_models, transcribe_models,
    /// speech_models, image_models; embedding models: embed_models.
    var models: [String]
    var audioModels: [String]
    var transcribeModels: [String]
    var speechModels: [String]
    var imageModels: [String]
    var embedModels: [String]
    var vision: Bool
    /// Whether the chat models take PDFs as `file` parts; without, the host sends page images.
    var pdf: Bool
    /// List prices; a keyless local server has only those its config gives.
    var prices: ModelPrices

    init(environment: [String: String], config: [String: Any]) throws {
        let key = environment["OPENAI_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let base = environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? (config["base_url"] as? String)
        apiKey = key
        baseURL = (base ?? OpenAIDefaults.baseURL).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        configured = key != nil || base != nil
        let local = key == nil
        models = (config["models"] as? [String]) ?? (local ? [OpenAIDefaults.localModel] : OpenAIDefaults.models)
        func listed(_ key: String, _ defaults: [String]) -> [String] { (config[key] as? [String]) ?? (local ? [] : defaults) }
        audioModels = listed("audio_models", OpenAIDefaults.audioModels)
        transcribeModels = listed("transcribe_models", OpenAIDefaults.transcribeModels)
        speechModels = listed("speech_models", OpenAIDefaults.speechModels)
        imageModels = listed("image_models", OpenAIDefaults.imageModels)
        embedModels = listed("embed_models", OpenAIDefaults.embedModels)
        // A keyless local server is text-only unless the config declares it can see (or read PDFs).
        vision = (config["vision"] as? Bool) ?? !local
        pdf = (config["pdf"] as? Bool) ?? !local
        prices = try ModelPrices(defaults: local ? [:] : OpenAIDefaults.prices, config: config, plugin: "openai")
    }
}

final class OpenAIProvider: ProviderPlugin, @unchecked Sendable {
    let settings: OpenAISettings
    /// The families declared (ABI 1.3): the config's, then OpenAIModels.families' own.
    let families: [ModelInfo]

    init(config: [String: Any], log: PluginLog) throws {
        var environment: [String: String] = [:]
        for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL"] { environment[name] = PluginEnvironment.value(name) }
        settings = try OpenAISettings(environment: environment, config: config)
        families = try OpenAIModels.families(settings, config: config)
        if !settings.configured {
            log(.info, "openai: not configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server)")
        }
    }

    var info: ProviderInfo {
        guard settings.configured else {
            return ProviderInfo(name: "openai", version: OpenAIDefaults.version,
                                description: "not configured: set OPENAI_API_KEY, or OPENAI_BASE_URL for a keyless local server", models: [])
        }
        let where_ = settings.apiKey == nil ? "keyless server at \(settings.baseURL)" : "API at \(settings.baseURL)"
        return ProviderInfo(name: "openai", version: OpenAIDefaults.version, description: "OpenAI \(where_)", models: OpenAIModels.rows(settings),
                            families: families)
    }

    func serve(_ request: ProviderRequest, call: ProviderCall) throws {
        switch request.operation ?? .generate {
        case .generate:
            try chat(request, call: call)
        // The other endpoints answer once, or take several requests: written blocking, they run
        // on the host's blocking pool (their exchanges still run on the call's I/O loop).
        case .transcribe:
            call.runBlocking { [settings] http in try Transcription.serve(request, settings: settings, client: http, call: call) }
        case .synthesize:
            call.runBlocking { [settings] http in try Speech.serve(request, settings: settings, client: http, call: call) }
        case .imageGenerate:
            call.runBlocking { [settings] http in try ImageGeneration.serve(request, settings: settings, client: http, call: call) }
        case .embed:
            call.runBlocking { [settings] http in try Embeddings.serve(request, settings: settings, client: http, call: call) }
        case .batch:
            call.runBlocking { [settings] http in try Batch.serve(request, settings: settings, client: http, call: call) }
        case let other:
            throw CallFailure(.unimplemented, "openai does not serve the \(other) operation")
        }
    }

    /// Chat Completions, streamed: a codec on the call's I/O loop.
    private func chat(_ request: ProviderRequest, call: ProviderCall) throws {
        var http = OpenAIHTTP.request(settings, "/chat/completions", contentType: "application/json",
                                      body: try ChatRequest.body(for: request, stream: true), deadline: request.deadline)
        http.headers.append(("Accept", "text/event-stream"))
        call.stream(http, decoding: ChatStream(call: call))
    }
}
