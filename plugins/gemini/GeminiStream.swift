// Reads a Gemini answer: streamed, `data:` frames (CRLF, no [DONE]) of GenerateContentResponse,
// or whole (generateContent, one GenerateContentResponse). Text parts as deltas, functionCall
// parts whole, inlineData parts as media (Gemini's raw PCM named as the host's audio/L16),
// usageMetadata as a running total (the last counts), finishReason on the final chunk.
import Foundation
import PrismPluginKit

struct GeminiStream: ResponseDecoder {
    let call: ProviderCall
    private var parser = ServerSentEventParser()
    private var status = 0
    private var errorBody = Data()
    private var finishReason: String?
    private var usage: (input: UInt64, output: UInt64)?
    private var streamError: CallFailure?
    private var emittedContent = false
    private var toolCalls = 0

    /// Media go to the host in pieces of this size: a minute of 24 kHz speech is 2.9 MB.
    static let mediaChunkBytes = 64 * 1024

    init(call: ProviderCall) { self.call = call }

    /// Reads a whole (non-streamed) answer and ends the call; `body` is the complete response.
    mutating func answer(_ head: HTTPResponseHead, _ body: Data) throws {
        status = head.status
        if status == 200 {
            _ = handle([UInt8](body))
        } else {
            errorBody = body.prefix(HTTPLimits.maxErrorBodyBytes)
        }
        try end(head)
    }

    mutating func receive(_ head: HTTPResponseHead, _ chunk: UnsafeRawBufferPointer) -> Bool {
        status = head.status
        guard head.status == 200 else {
            if errorBody.count < HTTPLimits.maxErrorBodyBytes { errorBody += chunk.prefix(HTTPLimits.maxErrorBodyBytes - errorBody.count) }
            return true
        }
        for event in parser.feedBytes(chunk) where !handle(event.data) { return false }
        return true
    }

    private mutating func handle(_ data: [UInt8]) -> Bool {
        let chunk: JSONValue
        do { chunk = try JSONValue.parse(data) } catch {
            streamError = CallFailure(.internalError, "gemini sent a frame that is not JSON (\(error))")
            return false
        }
        guard chunk.object != nil else {
            streamError = CallFailure(.internalError, "gemini sent a frame that is not a JSON object")
            return false
        }
        if let error = chunk["error"], error.object != nil {
            streamError = CallFailure(.unavailable, "gemini failed mid-stream: \(error["message"]?.string ?? "")", retryable: true)
            return false
        }
        if let u = chunk["usageMetadata"], u.object != nil {
            usage = (Self.number(u["promptTokenCount"]), Self.number(u["candidatesTokenCount"]) + Self.number(u["thoughtsTokenCount"]))
        }
        if let blocked = chunk["promptFeedback"]?["blockReason"]?.string {
            streamError = CallFailure(.invalidArgument, "gemini blocked the prompt (\(blocked))")
            return false
        }
        guard let candidate = chunk["candidates"]?[0], candidate.object != nil else { return true }
        for part in candidate["content"]?["parts"]?.array ?? [] where part.object != nil {
            if part["thought"]?.bool == true { continue }
            if let text = part["text"]?.string, !text.isEmpty {
                emittedContent = true
                if !call.text(text) { return false }
            }
            if let inline = part["inlineData"] ?? part["inline_data"], let data = inline["data"]?.string {
                guard let bytes = Data(base64Encoded: data) else {
                    streamError = CallFailure(.internalError, "gemini sent inlineData that is not base64")
                    return false
                }
                emittedContent = true
                if !media(Self.hostMimeType(inline["mimeType"]?.string ?? inline["mime_type"]?.string ?? ""), bytes) { return false }
            }
            if let function = part["functionCall"], function.object != nil {
                emittedContent = true
                toolCalls += 1
                // args is a JSON object (a protobuf Struct) that goes on as JSON text, keys in Gemini's order.
                let args = function["args"].flatMap { $0.object != nil ? $0.jsonText : nil } ?? "{}"
                let id = function["id"]?.string ?? "call_\(toolCalls)"
                if !call.toolCall(id: id, name: function["name"]?.string ?? "", argumentsJSON: args) {
                    return false
                }
            }
        }
        if let reason = candidate["finishReason"]?.string { finishReason = reason }
        return true
    }

    mutating func end(_ head: HTTPResponseHead) throws {
        status = head.status
        guard status == 200 else { throw GeminiErrors.failure(status: status, body: errorBody) }
        if let streamError { throw streamError }
        // No [DONE] in Gemini's stream: the final chunk is the one with finishReason.
        guard let finishReason else { throw CallFailure(.unavailable, "gemini's stream ended without a finishReason", retryable: !emittedContent) }
        if let usage { call.usage(input: usage.input, output: usage.output) }
        call.finished(toolCalls > 0 ? .toolUse : Self.stopReason(finishReason))
        if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
        call.finishOK()
    }

    func failure(for error: HTTPTransferError) -> CallFailure {
        streamError ?? VendorFailures.failure(for: error, vendor: "gemini", status: status)
    }

    /// Emits one medium in pieces, the last piece marked.
    private func media(_ mimeType: String, _ bytes: Data) -> Bool {
        var offset = bytes.startIndex
        repeat {
            let end = min(offset + Self.mediaChunkBytes, bytes.endIndex)
            if !call.media(mimeType: mimeType, data: [UInt8](bytes[offset..<end]), last: end == bytes.endIndex) { return false }
            offset = end
        } while offset < bytes.endIndex
        return true
    }

    /// Gemini names its TTS output `audio/L16;codec=pcm;rate=24000` (or `audio/pcm`): 16-bit
    /// little-endian mono PCM, which the host knows as `audio/L16;rate=R;channels=1`.
    static func hostMimeType(_ mime: String) -> String {
        let fields = mime.lowercased().split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let type = fields.first, type == "audio/l16" || type == "audio/pcm" else { return mime }
        let rate = fields.first { $0.hasPrefix("rate=") }.flatMap { Int($0.dropFirst(5)) } ?? 24_000
        return "audio/L16;rate=\(rate);channels=1"
    }

    /// Gemini's finishReason as the ABI's (batch results map theirs the same way).
    static func stopReason(_ reason: String) -> StopReason {
        switch reason {
        case "MAX_TOKENS": return .maxTokens
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": return .refusal
        default: return .endTurn
        }
    }

    private static func number(_ value: JSONValue?) -> UInt64 { value?.uint64 ?? 0 }
}
