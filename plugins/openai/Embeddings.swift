// The `embed` operation: POST {base}/embeddings with every text part of the request as one input,
// in order; each vector comes back as one MediaChunk of type application/vnd.prism.embedding+f32le
// (little-endian float32, last=true), in the inputs' order, then usage (the prompt tokens).
import Foundation
import PrismPluginKit

enum Embeddings {
    /// The vendor's bound on inputs per request.
    static let maxInputs = 2048
    /// 2048 vectors of 3072 floats as JSON text (about 20 bytes a float) fit in 128 MB.
    static let maxAnswerBytes = 128 * 1024 * 1024

    /// The JSON body: the texts as `input`, floats asked for explicitly (not base64).
    static func body(for request: ProviderRequest) throws -> (Data, Int) {
        let texts = request.messages.filter { $0.role != .assistant }.flatMap(\.parts).compactMap { part -> String? in
            if case .text(let t) = part { return t }
            return nil
        }
        guard !texts.isEmpty else { throw CallFailure(.invalidArgument, "openai embeddings need text inputs; the request has none") }
        guard texts.count <= maxInputs else {
            throw CallFailure(.resourceExhausted, "openai embeds at most \(maxInputs) inputs per request; this one has \(texts.count)")
        }
        let body: [String: Any] = ["model": request.model, "input": texts, "encoding_format": "float"]
        return (try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]), texts.count)
    }

    /// Embeds the request's texts and emits one vector per text.
    static func serve(_ request: ProviderRequest, settings: OpenAISettings, client: BlockingHTTP, call: ProviderCall) throws {
        let (body, count) = try body(for: request)
        let http = OpenAIHTTP.request(settings, "/embeddings", contentType: "application/json", body: body, deadline: request.deadline)
        let answer = try OpenAIHTTP.json(client, http, call: call, maxBytes: maxAnswerBytes, what: "embeddings")
        let items = (answer["data"] as? [[String: Any]] ?? []).sorted { OpenAIHTTP.number($0["index"]) < OpenAIHTTP.number($1["index"]) }
        guard items.count == count else {
            throw CallFailure(.internalError, "openai's embeddings answer has \(items.count) vectors for \(count) inputs")
        }
        for item in items {
            guard let values = item["embedding"] as? [NSNumber] else {
                throw CallFailure(.internalError, "openai's embeddings answer has an item without an embedding array")
            }
            guard call.embedding(values) else { throw CallFailure(.cancelled, "cancelled") }
        }
        let usage = answer["usage"] as? [String: Any] ?? [:]
        call.usage(input: OpenAIHTTP.number(usage["prompt_tokens"]), output: 0)
        call.finished(.endTurn)
        call.finishOK()
    }
}
