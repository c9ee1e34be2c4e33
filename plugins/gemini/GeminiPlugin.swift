// The `gemini` provider plugin: streamGenerateContent?alt=sse of the Gemini API behind the Prism
// plugin ABI, with the key from GEMINI_API_KEY (or GOOGLE_API_KEY) and GEMINI_BASE_URL. Request
// mapping and the stream are in GeminiRequest.swift and GeminiStream.swift.
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
    /// 3,600 images per request; inline data up to 20 MB per request historically (the safe figure).
    static let maxImages: UInt32 = 3600
    static let maxInlineBytes: UInt64 = 20 * 1024 * 1024
    /// 1,000 PDF pages; 9.5 hours of audio.
    static let maxPDFPages: UInt32 = 1000
    static let maxAudioSeconds: UInt32 = 34_200
}

final class GeminiProvider: ProviderPlugin, @unchecked Sendable {
    let baseURL: String
    let apiKey: String?
    let models: [String]
    let http = HTTPClient()

    init(config: [String: Any], log: PluginLog) throws {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        apiKey = env("GEMINI_API_KEY") ?? env("GOOGLE_API_KEY")
        baseURL = (env("GEMINI_BASE_URL") ?? (config["base_url"] as? String) ?? GeminiDefaults.baseURL)
            .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        models = (config["models"] as? [String]) ?? GeminiDefaults.models
        if apiKey == nil { log(.info, "gemini: not configured (set GEMINI_API_KEY or GOOGLE_API_KEY)") }
    }

    var info: ProviderInfo {
        guard apiKey != nil else {
            return ProviderInfo(name: "gemini", version: "0.1.0", description: "not configured: set GEMINI_API_KEY or GOOGLE_API_KEY", models: [])
        }
        return ProviderInfo(name: "gemini", version: "0.1.0", description: "Gemini API at \(baseURL)", models: models.map { id in
            var m = ModelInfo(id: id)
            m.inputs = [.text, .image, .pdf, .audio, .video]
            m.tools = true
            m.jsonSchema = true
            m.maxImages = GeminiDefaults.maxImages
            m.maxImageBytes = GeminiDefaults.maxInlineBytes
            m.imageMimeTypes = ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"]
            m.maxPDFPages = GeminiDefaults.maxPDFPages
            m.maxPDFBytes = GeminiDefaults.maxInlineBytes
            m.maxAudioSeconds = GeminiDefaults.maxAudioSeconds
            m.maxAudioBytes = GeminiDefaults.maxInlineBytes
            m.maxRequestBytes = GeminiDefaults.maxInlineBytes
            return m
        })
    }

    func serve(_ request: ProviderRequest, call: ProviderCall) throws {
        guard request.operation == nil || request.operation == .generate else {
            throw CallFailure(.unimplemented, "gemini serves generate only in this version")
        }
        guard let apiKey else { throw CallFailure(.failedPrecondition, "gemini is not configured (no GEMINI_API_KEY)") }
        var http = HTTPRequest(url: baseURL + "/models/\(request.model):streamGenerateContent?alt=sse")
        http.headers = [("content-type", "application/json"), ("x-goog-api-key", apiKey)]
        http.body = try GeminiRequest.body(for: request)
        http.deadline = request.deadline
        var stream = GeminiStream(call: call)
        do {
            let head = try self.http.perform(http, isCancelled: { call.isCancelled }) { head, chunk in stream.receive(head, chunk) }
            try stream.end(head)
        } catch let error as HTTPTransferError {
            throw stream.failure(for: error)
        }
    }
}
