// The `openai` provider plugin: Chat Completions (and OpenAI-compatible local servers such as
// vLLM, llama.cpp or Ollama) behind the Prism plugin ABI, with settings from the OpenAI SDK's
// environment variables. The request mapping is in ChatRequest.swift, the stream in ChatStream.swift.
import Foundation
import PrismPluginKit

@_cdecl("prism_plugin_entry")
public func prismPluginEntry(_ hostABIMajor: UInt32, _ hostABIMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(OpenAIProvider.self, hostABIMajor: hostABIMajor)
}

/// Defaults, each with its reason.
enum OpenAIDefaults {
    static let baseURL = "https://api.openai.com/v1"
    /// Models listed when the config names none: the vision-capable chat models most used.
    static let models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"]
    /// The model a keyless local server is listed under when the config names none; such
    /// servers (vLLM, llama.cpp, Ollama) take any model name or the one they serve.
    static let localModel = "local"
    /// Per-image limits of vendor-apis.md: ≤20 MB, fitted in 2048×2048 for `high` detail.
    static let maxImageBytes: UInt64 = 20 * 1024 * 1024
    static let maxImageLongEdge: UInt32 = 2048
    /// 500 images per request, and ≤50 MB of image bytes: 50 MB / 20 MB per image would allow
    /// only 2, so the count stays the vendor's and the request cap bounds the total.
    static let maxImages: UInt32 = 500
    static let maxRequestBytes: UInt64 = 64 * 1024 * 1024
}

/// Where and how to reach the API; the key never leaves this struct except in the header.
struct OpenAISettings {
    var baseURL: String
    var apiKey: String?
    /// Whether a base URL or a key was given at all; without either the provider is unconfigured.
    var configured: Bool
    var models: [String]
    var vision: Bool

    init(environment: [String: String], config: [String: Any]) {
        let key = environment["OPENAI_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let base = environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? (config["base_url"] as? String)
        apiKey = key
        baseURL = (base ?? OpenAIDefaults.baseURL).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        configured = key != nil || base != nil
        let local = key == nil
        models = (config["models"] as? [String]) ?? (local ? [OpenAIDefaults.localModel] : OpenAIDefaults.models)
        // A keyless local server is text-only unless the config declares it can see.
        vision = (config["vision"] as? Bool) ?? !local
    }
}

final class OpenAIProvider: ProviderPlugin, @unchecked Sendable {
    let settings: OpenAISettings
    let http = HTTPClient()

    init(config: [String: Any], log: PluginLog) throws {
        // getenv, not ProcessInfo's copy: the environment as it is now, when the host loads us.
        var environment: [String: String] = [:]
        for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL"] { environment[name] = getenv(name).map { String(cString: $0) } }
        settings = OpenAISettings(environment: environment, config: config)
        if !settings.configured {
            log(.info, "openai: not configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server)")
        }
    }

    var info: ProviderInfo {
        guard settings.configured else {
            return ProviderInfo(name: "openai", version: "0.1.0",
                                description: "not configured: set OPENAI_API_KEY, or OPENAI_BASE_URL for a keyless local server", models: [])
        }
        let where_ = settings.apiKey == nil ? "keyless server at \(settings.baseURL)" : "Chat Completions at \(settings.baseURL)"
        return ProviderInfo(name: "openai", version: "0.1.0", description: "OpenAI \(where_)", models: settings.models.map(model))
    }

    private func model(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.inputs = settings.vision ? [.text, .image] : [.text]
        m.tools = true
        m.jsonSchema = true
        m.maxRequestBytes = OpenAIDefaults.maxRequestBytes
        if settings.vision {
            m.maxImages = OpenAIDefaults.maxImages
            m.maxImageBytes = OpenAIDefaults.maxImageBytes
            m.maxImageLongEdge = OpenAIDefaults.maxImageLongEdge
            m.imageMimeTypes = ["image/jpeg", "image/png", "image/webp", "image/gif"]
        }
        return m
    }

    func serve(_ request: ProviderRequest, call: ProviderCall) throws {
        guard request.operation == nil || request.operation == .generate else {
            throw CallFailure(.unimplemented, "openai serves generate only in this version")
        }
        var http = HTTPRequest(url: settings.baseURL + "/chat/completions")
        http.headers = [("Content-Type", "application/json"), ("Accept", "text/event-stream")]
        if let key = settings.apiKey { http.headers.append(("Authorization", "Bearer \(key)")) }
        http.body = try ChatRequest.body(for: request)
        http.deadline = request.deadline

        var stream = ChatStream(call: call)
        do {
            let head = try self.http.perform(http, isCancelled: { call.isCancelled }) { head, chunk in
                stream.receive(head, chunk)
            }
            try stream.end(head)
        } catch let error as HTTPTransferError {
            throw stream.failure(for: error)
        }
    }
}
