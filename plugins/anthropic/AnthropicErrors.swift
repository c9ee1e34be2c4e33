// Anthropic's error statuses and bodies ({"type":"error","error":{"type","message"}}) as call
// failures: 429/5xx/529 retried with retry-after, 401/403 the gateway's key, the rest final; and
// the HTTP status each error type stands for, for errors that come without one (batch items).
import Foundation
import PrismPluginKit

enum AnthropicErrors {
    static func failure(status: Int, headers: [String: String], body: Data) -> CallFailure {
        let error = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any]
        let kind = error?["type"] as? String ?? "HTTP \(status)"
        let message = error?["message"] as? String ?? ""
        let label = "HTTP \(status) \(kind)"
        let http = UInt32(status)
        let retryAfter = headers["retry-after"].flatMap(Double.init).map { UInt64(max(0, $0) * 1000) } ?? 0
        switch status {
        case 401, 403:
            return CallFailure(.unauthenticated, "anthropic rejected the API key (\(label))", httpStatus: http)
        case 429:
            return CallFailure(.rateLimited, "anthropic rate limit (\(label)): \(message)", retryable: true, retryAfterMilliseconds: retryAfter, httpStatus: http)
        case 413:
            return CallFailure(.resourceExhausted, "anthropic says the request is too large (\(label))", httpStatus: http)
        case 404:
            return CallFailure(.failedPrecondition, "anthropic does not know this model (\(label)): \(message)", httpStatus: http)
        case 402:
            return CallFailure(.failedPrecondition, "anthropic billing problem (\(label))", httpStatus: http)
        case 400..<500:
            return CallFailure(.invalidArgument, "anthropic refused the request (\(label)): \(message)", httpStatus: http)
        case 504:
            return CallFailure(.deadlineExceeded, "anthropic timed out (\(label))", retryable: true, retryAfterMilliseconds: retryAfter, httpStatus: http)
        case 500...599:
            // 529 overloaded_error included.
            return CallFailure(.unavailable, "anthropic is failing or overloaded (\(label)): \(message)", retryable: true,
                               retryAfterMilliseconds: retryAfter, httpStatus: http)
        default:
            return CallFailure(.unknown, "anthropic answered \(label): \(message)", httpStatus: http)
        }
    }

    /// The HTTP status an error type comes with (shared/vendor-apis.md, Errors); 500 for a type
    /// added later.
    static func httpStatus(ofType type: String) -> Int {
        ["invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
         "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
         "timeout_error": 504, "overloaded_error": 529][type] ?? 500
    }

    /// A short exchange (not a stream) that did not complete.
    static func failure(for error: HTTPTransferError) -> CallFailure {
        switch error {
        case .cancelled, .stopped: return CallFailure(.cancelled, "cancelled")
        case .timedOut: return CallFailure(.deadlineExceeded, "anthropic did not answer in time")
        case .transport(let message): return CallFailure(.unavailable, "cannot reach anthropic: \(message)", retryable: true)
        }
    }
}
