// OpenAI's HTTP error statuses and bodies ({"error":{"message","type","param","code"}}) as call
// failures: which are retried, after how long, and which mean the gateway's key is wrong.
import Foundation
import PrismPluginKit

enum OpenAIErrors {
    /// The failure for a non-200 answer. The vendor's message is kept except for 401/403, whose
    /// message can echo part of the key.
    static func failure(status: Int, headers: [String: String], body: Data) -> CallFailure {
        let error = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any]
        let message = (error?["message"] as? String) ?? "HTTP \(status)"
        let code = (error?["code"] as? String) ?? (error?["type"] as? String) ?? ""
        let label = code.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(code)"
        let http = UInt32(status)
        switch status {
        case 401, 403:
            return CallFailure(.unauthenticated, "openai rejected the API key (\(label))", httpStatus: http)
        case 429:
            return CallFailure(.rateLimited, "openai rate limit (\(label)): \(message)", retryable: true,
                               retryAfterMilliseconds: retryAfter(headers), httpStatus: http)
        case 400, 422:
            return CallFailure(.invalidArgument, "openai refused the request (\(label)): \(message)", httpStatus: http)
        case 404:
            return CallFailure(.failedPrecondition, "openai does not know this model (\(label)): \(message)", httpStatus: http)
        case 409:
            return CallFailure(.failedPrecondition, "openai cannot do that now (\(label)): \(message)", httpStatus: http)
        case 413:
            return CallFailure(.resourceExhausted, "openai says the request is too large (\(label))", httpStatus: http)
        case 408:
            return CallFailure(.deadlineExceeded, "openai timed out (\(label))", retryable: true, httpStatus: http)
        case 500...599:
            return CallFailure(.unavailable, "openai is failing or overloaded (\(label)): \(message)", retryable: true,
                               retryAfterMilliseconds: retryAfter(headers), httpStatus: http)
        default:
            return CallFailure(.unknown, "openai answered \(label): \(message)", httpStatus: http)
        }
    }

    /// `retry-after-ms` (the SDKs' own header) or `retry-after` in seconds; 0 when absent.
    static func retryAfter(_ headers: [String: String]) -> UInt64 {
        if let ms = headers["retry-after-ms"].flatMap(Double.init), ms >= 0 { return UInt64(ms) }
        if let s = headers["retry-after"].flatMap(Double.init), s >= 0 { return UInt64(s * 1000) }
        return 0
    }
}
