// Reads a streamed Gemini answer: `data:` frames (CRLF, no [DONE]) of GenerateContentResponse,
// text parts as deltas, functionCall parts whole, usageMetadata as a running total (the last
// counts), finishReason on the final chunk; and the error bodies with RetryInfo.
import Foundation
import PrismPluginKit

struct GeminiStream {
    let call: ProviderCall
    private var parser = ServerSentEventParser()
    private var status = 0
    private var errorBody = Data()
    private var finishReason: String?
    private var usage: (input: UInt64, output: UInt64)?
    private var streamError: CallFailure?
    private var emittedContent = false
    private var toolCalls = 0

    init(call: ProviderCall) { self.call = call }

    mutating func receive(_ head: HTTPResponseHead, _ chunk: Data) -> Bool {
        status = head.status
        guard head.status == 200 else {
            if errorBody.count < HTTPLimits.maxErrorBodyBytes { errorBody += chunk.prefix(HTTPLimits.maxErrorBodyBytes - errorBody.count) }
            return true
        }
        for event in parser.feed(chunk) where !handle(event.data) { return false }
        return true
    }

    private mutating func handle(_ data: String) -> Bool {
        guard let chunk = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] else {
            streamError = CallFailure(.internalError, "gemini sent a frame that is not JSON")
            return false
        }
        if let error = chunk["error"] as? [String: Any] {
            streamError = CallFailure(.unavailable, "gemini failed mid-stream: \(error["message"] as? String ?? "")", retryable: true)
            return false
        }
        if let u = chunk["usageMetadata"] as? [String: Any] {
            usage = (Self.number(u["promptTokenCount"]), Self.number(u["candidatesTokenCount"]) + Self.number(u["thoughtsTokenCount"]))
        }
        if let blocked = (chunk["promptFeedback"] as? [String: Any])?["blockReason"] as? String {
            streamError = CallFailure(.invalidArgument, "gemini blocked the prompt (\(blocked))")
            return false
        }
        guard let candidate = (chunk["candidates"] as? [[String: Any]])?.first else { return true }
        for part in (candidate["content"] as? [String: Any])?["parts"] as? [[String: Any]] ?? [] {
            if part["thought"] as? Bool == true { continue }
            if let text = part["text"] as? String, !text.isEmpty {
                emittedContent = true
                if !call.text(text) { return false }
            }
            if let function = part["functionCall"] as? [String: Any] {
                emittedContent = true
                toolCalls += 1
                let args = function["args"].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
                let id = function["id"] as? String ?? "call_\(toolCalls)"
                if !call.toolCall(id: id, name: function["name"] as? String ?? "", argumentsJSON: args.map { String(decoding: $0, as: UTF8.self) } ?? "{}") {
                    return false
                }
            }
        }
        if let reason = candidate["finishReason"] as? String { finishReason = reason }
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
        if let streamError { return streamError }
        switch error {
        case .cancelled, .stopped: return CallFailure(.cancelled, "cancelled")
        case .timedOut: return CallFailure(.deadlineExceeded, "gemini did not answer in time")
        case .transport(let message):
            return CallFailure(.unavailable, status == 0 ? "cannot reach gemini: \(message)" : "gemini's stream broke: \(message)", retryable: true)
        }
    }

    private static func stopReason(_ reason: String) -> StopReason {
        switch reason {
        case "MAX_TOKENS": return .maxTokens
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": return .refusal
        default: return .endTurn
        }
    }

    private static func number(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }
}

/// Gemini's error bodies ({"error":{"code","message","status","details"}}) as call failures.
enum GeminiErrors {
    static func failure(status: Int, body: Data) -> CallFailure {
        let error = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any]
        let grpcStatus = error?["status"] as? String ?? "HTTP \(status)"
        let message = error?["message"] as? String ?? ""
        let details = error?["details"] as? [[String: Any]] ?? []
        let label = "HTTP \(status) \(grpcStatus)"
        let http = UInt32(status)
        // A bad key is a 400 INVALID_ARGUMENT whose ErrorInfo says API_KEY_INVALID.
        if details.contains(where: { ($0["reason"] as? String) == "API_KEY_INVALID" }) || status == 401 || status == 403 {
            return CallFailure(.unauthenticated, "gemini rejected the API key (\(label))", httpStatus: http)
        }
        // The retry hint is in the body: RetryInfo.retryDelay like "34.4s".
        let delay = details.first { ($0["@type"] as? String)?.hasSuffix("google.rpc.RetryInfo") == true }?["retryDelay"] as? String
        let retryAfter = delay.flatMap { Double($0.hasSuffix("s") ? String($0.dropLast()) : $0) }.map { UInt64($0 * 1000) } ?? 0
        switch status {
        case 429:
            return CallFailure(.rateLimited, "gemini quota (\(label)): \(message)", retryable: true, retryAfterMilliseconds: retryAfter, httpStatus: http)
        case 400:
            return CallFailure(grpcStatus == "FAILED_PRECONDITION" ? .failedPrecondition : .invalidArgument, "gemini refused the request (\(label)): \(message)", httpStatus: http)
        case 404:
            return CallFailure(.failedPrecondition, "gemini does not know this model (\(label)): \(message)", httpStatus: http)
        case 413:
            return CallFailure(.resourceExhausted, "gemini says the request is too large (\(label))", httpStatus: http)
        case 504:
            return CallFailure(.deadlineExceeded, "gemini timed out (\(label))", retryable: true, httpStatus: http)
        case 500...599:
            return CallFailure(.unavailable, "gemini is failing or overloaded (\(label)): \(message)", retryable: true, retryAfterMilliseconds: retryAfter, httpStatus: http)
        default:
            return CallFailure(.unknown, "gemini answered \(label): \(message)", httpStatus: http)
        }
    }
}
