// The `image_generate` operation: POST {base}/images/generations for one image from the request's
// text, whose b64_json answer is decoded and emitted as one MediaChunk (last=true), then usage.
import Foundation
import PrismPluginKit

enum ImageGeneration {
    /// The vendor's prompt limit for GPT image models, in characters (dall-e-2: 1000, dall-e-3: 4000).
    static let maxPromptCharacters = 32_000
    /// Sizes the vendor takes (GPT image models, and dall-e's); "1024x1024" when the request names none.
    static let sizes: Set<String> = ["auto", "1024x1024", "1536x1024", "1024x1536", "256x256", "512x512", "1792x1024", "1024x1792"]
    static let defaultSize = "1024x1024"
    /// One base64 image of 1536×1024 is a few MB; 64 MB leaves room for any size and format.
    static let maxAnswerBytes = 64 * 1024 * 1024

    /// The JSON body: the request's text as the prompt, one image, the `size` option.
    static func body(for request: ProviderRequest) throws -> Data {
        let texts = request.messages.filter { $0.role != .assistant }.flatMap(\.parts).compactMap { part -> String? in
            if case .text(let t) = part { return t }
            return nil
        }
        let prompt = ([request.system] + texts).filter { !$0.isEmpty }.joined(separator: "\n")
        guard prompt.contains(where: { !$0.isWhitespace }) else {
            throw CallFailure(.invalidArgument, "openai image generation needs a text prompt; the request has none")
        }
        guard prompt.count <= maxPromptCharacters else {
            throw CallFailure(.resourceExhausted, "openai image prompts are limited to \(maxPromptCharacters) characters; this one has \(prompt.count)")
        }
        let size = request.options["size"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultSize
        guard sizes.contains(size) else {
            throw CallFailure(.invalidArgument, "size '\(size)' is not one openai generates (\(sizes.sorted().joined(separator: ", ")))")
        }
        var body: [String: Any] = ["model": request.model, "prompt": prompt, "n": 1, "size": size]
        // GPT image models always answer in base64; dall-e models must be asked to.
        if request.model.hasPrefix("dall-e") { body["response_format"] = "b64_json" }
        return try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// Generates the image of `request` and emits it.
    static func serve(_ request: ProviderRequest, settings: OpenAISettings, client: BlockingHTTP, call: ProviderCall) throws {
        let http = OpenAIHTTP.request(settings, "/images/generations", contentType: "application/json",
                                      body: try body(for: request), deadline: request.deadline)
        let answer = try OpenAIHTTP.json(client, http, call: call, maxBytes: maxAnswerBytes, what: "image generation")
        guard let first = (answer["data"] as? [[String: Any]])?.first, let b64 = first["b64_json"] as? String,
              let image = Data(base64Encoded: b64) else {
            throw CallFailure(.internalError, "openai's image generation answer has no base64 image (data[0].b64_json)")
        }
        guard call.media(mimeType: mimeType(of: image, format: answer["output_format"] as? String), data: [UInt8](image), last: true) else {
            throw CallFailure(.cancelled, "cancelled")
        }
        let usage = answer["usage"] as? [String: Any] ?? [:]
        call.usage(input: OpenAIHTTP.number(usage["input_tokens"]), output: OpenAIHTTP.number(usage["output_tokens"]))
        call.finished(.endTurn)
        call.finishOK()
    }

    /// The image's type from its first bytes, else from the answer's output_format (png by default).
    static func mimeType(of image: Data, format: String?) -> String {
        let head = [UInt8](image.prefix(12))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if head.count == 12, head[0..<4] == [0x52, 0x49, 0x46, 0x46], head[8..<12] == [0x57, 0x45, 0x42, 0x50] { return "image/webp" }
        switch format {
        case "jpeg": return "image/jpeg"
        case "webp": return "image/webp"
        default: return "image/png"
        }
    }
}
