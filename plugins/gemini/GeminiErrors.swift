// Gemini's failures as call failures: error bodies ({"error":{"code","message","status","details"}},
// with the RetryInfo hint and the API_KEY_INVALID reason read from details) and broken transfers.
import Foundation
import PrismPluginKit

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

    /// A transfer that did not complete; `status` is the HTTP status seen so far (0: none).
    static func failure(for error: HTTPTransferError, status: Int, what: String) -> CallFailure {
        switch error {
        case .cancelled, .stopped: return CallFailure(.cancelled, "cancelled")
        case .timedOut: return CallFailure(.deadlineExceeded, "\(what) did not answer in time")
        case .transport(let message):
            return CallFailure(.unavailable, status == 0 ? "cannot reach \(what): \(message)" : "\(what) broke off: \(message)", retryable: true)
        }
    }
}
