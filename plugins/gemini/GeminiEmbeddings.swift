// The `embed` operation: models/{model}:batchEmbedContents with every text part of the request as
// one request, in order; each `embeddings[i].values` comes back as one MediaChunk of type
// application/vnd.prism.embedding+f32le (little-endian float32, last=true), in the inputs' order.
import Foundation
import PrismPluginKit

struct GeminiEmbeddings {
    let settings: GeminiSettings
    let apiKey: String
    let http: BlockingHTTP

    /// batchEmbedContents takes at most 100 requests.
    static let maxInputs = 100
    /// 100 vectors of 3072 floats as JSON text (about 20 bytes a float) fit in 16 MB.
    static let maxAnswerBytes = 16 * 1024 * 1024

    func embed(_ request: ProviderRequest, call: ProviderCall) throws {
        let texts = request.messages.filter { $0.role != .assistant }.flatMap(\.parts).compactMap { part -> String? in
            if case .text(let t) = part { return t } else { return nil }
        }
        guard !texts.isEmpty else { throw CallFailure(.invalidArgument, "gemini embeddings need text inputs; the request has none") }
        guard texts.count <= Self.maxInputs else {
            throw CallFailure(.resourceExhausted, "gemini embeds at most \(Self.maxInputs) inputs per request; this one has \(texts.count)")
        }
        let body: [String: Any] = ["requests": texts.map { ["model": "models/\(request.model)", "content": ["parts": [["text": $0]]]] }]
        var http = HTTPRequest(url: settings.baseURL + "/models/\(request.model):batchEmbedContents")
        http.headers = [("content-type", "application/json"), ("x-goog-api-key", apiKey)]
        http.body = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        http.deadline = request.deadline
        let head: HTTPResponseHead, data: Data
        do {
            (head, data) = try self.http.fetch(http, maxBodyBytes: Self.maxAnswerBytes)
        } catch let error as HTTPTransferError {
            throw VendorFailures.failure(for: error, vendor: "gemini", status: 0)
        }
        guard head.status == 200 else { throw GeminiErrors.failure(status: head.status, body: data) }
        let embeddings = (((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["embeddings"] as? [[String: Any]]) ?? []
        guard embeddings.count == texts.count else {
            throw CallFailure(.internalError, "gemini's batchEmbedContents answer has \(embeddings.count) embeddings for \(texts.count) inputs")
        }
        for embedding in embeddings {
            guard let values = embedding["values"] as? [NSNumber] else {
                throw CallFailure(.internalError, "gemini's batchEmbedContents answer has an embedding without values")
            }
            guard call.embedding(values) else { throw CallFailure(.cancelled, "cancelled") }
        }
        call.finished(.endTurn)
        call.finishOK()
    }
}
