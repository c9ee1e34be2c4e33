// One table for every vendor plugin from an HTTP error status, or a transfer that did not
// complete, to a call failure: which code, whether the host retries it, and the wording.
// Each vendor parses its own error body and passes what it read (label, message, retry hint).
import Foundation

/// How the vendor plugins map HTTP statuses and broken transfers to call failures. The table
/// (the same for OpenAI, Anthropic and Gemini, so a fallback chain sees one vocabulary):
///
/// | HTTP status | failure | retried |
/// |---|---|---|
/// | 401, 403 | UNAUTHENTICATED: the gateway's key (the vendor's message is dropped: it can echo the key; the client sees FAILED_PRECONDITION) | no |
/// | 402 | FAILED_PRECONDITION: billing | no |
/// | 404 | FAILED_PRECONDITION: the model is unknown to the vendor | no |
/// | 408, 504 | DEADLINE_EXCEEDED: the vendor timed out | yes |
/// | 409 | FAILED_PRECONDITION: not possible in the resource's current state | no |
/// | 413 | RESOURCE_EXHAUSTED: the request is too large | no |
/// | 429 | RATE_LIMITED, with the vendor's retry hint | yes |
/// | 400, 422, any other 4xx | INVALID_ARGUMENT: the vendor refused the request as sent | no |
/// | 5xx (529 overloaded included) | UNAVAILABLE, with the vendor's retry hint | yes |
/// | anything else | UNKNOWN | no |
///
/// A transfer that did not complete: cancelled → CANCELLED, timed out → DEADLINE_EXCEEDED, a
/// transport error → UNAVAILABLE (retried), worded "cannot reach" before any answer and
/// "broke off" once the vendor had started answering.
public enum VendorFailures {
    /// The failure for an HTTP error answer. `label` says what the vendor answered
    /// ("HTTP 429 rate_limit_error"), `message` is the vendor's own message ("" when none),
    /// `retryAfterMilliseconds` its retry hint (0: none).
    public static func failure(vendor: String, status: Int, label: String, message: String,
                               retryAfterMilliseconds: UInt64 = 0) -> CallFailure {
        let http = UInt32(clamping: max(0, status))
        let detail = message.isEmpty ? "" : ": \(message)"
        switch status {
        case 401, 403:
            return CallFailure(.unauthenticated, "\(vendor) rejected the API key (\(label))", httpStatus: http)
        case 402:
            return CallFailure(.failedPrecondition, "\(vendor) billing problem (\(label))\(detail)", httpStatus: http)
        case 404:
            return CallFailure(.failedPrecondition, "\(vendor) does not know this model (\(label))\(detail)", httpStatus: http)
        case 408, 504:
            return CallFailure(.deadlineExceeded, "\(vendor) timed out (\(label))", retryable: true,
                               retryAfterMilliseconds: retryAfterMilliseconds, httpStatus: http)
        case 409:
            return CallFailure(.failedPrecondition, "\(vendor) cannot do that now (\(label))\(detail)", httpStatus: http)
        case 413:
            return CallFailure(.resourceExhausted, "\(vendor) says the request is too large (\(label))", httpStatus: http)
        case 429:
            return CallFailure(.rateLimited, "\(vendor) rate limit (\(label))\(detail)", retryable: true,
                               retryAfterMilliseconds: retryAfterMilliseconds, httpStatus: http)
        case 400..<500:
            return CallFailure(.invalidArgument, "\(vendor) refused the request (\(label))\(detail)", httpStatus: http)
        case 500..<600:
            return CallFailure(.unavailable, "\(vendor) is failing or overloaded (\(label))\(detail)", retryable: true,
                               retryAfterMilliseconds: retryAfterMilliseconds, httpStatus: http)
        default:
            return CallFailure(.unknown, "\(vendor) answered \(label)\(detail)", httpStatus: http)
        }
    }

    /// The failure for a transfer that did not complete. `status` is the HTTP status already
    /// received (0: none): a transfer cut after its head broke off, it was not unreachable.
    public static func failure(for error: HTTPTransferError, vendor: String, status: Int) -> CallFailure {
        switch error {
        case .cancelled, .stopped:
            return CallFailure(.cancelled, "cancelled")
        case .timedOut:
            return CallFailure(.deadlineExceeded, "\(vendor) did not answer in time")
        case .transport(let message):
            return CallFailure(.unavailable, status == 0 ? "cannot reach \(vendor): \(message)" : "\(vendor)'s answer broke off: \(message)",
                               retryable: true)
        }
    }

    /// The retry hint in an error answer's headers: `retry-after-ms` (OpenAI's SDK header) or
    /// `retry-after` in seconds; 0 when absent or not a number.
    public static func retryAfterMilliseconds(_ headers: [String: String]) -> UInt64 {
        if let ms = headers["retry-after-ms"].flatMap(Double.init), ms.isFinite, ms >= 0 { return milliseconds(seconds: ms / 1000) }
        return milliseconds(seconds: headers["retry-after"].flatMap(Double.init))
    }

    /// A retry hint in seconds as milliseconds: 0 for none, a negative, NaN or infinite value
    /// (a vendor's "inf" or "-1" must not trap the conversion), at most `maxRetryAfterSeconds`.
    public static func milliseconds(seconds: Double?) -> UInt64 {
        guard let seconds, seconds.isFinite, seconds > 0 else { return 0 }
        return UInt64(min(seconds, maxRetryAfterSeconds) * 1000)
    }

    /// The longest retry hint taken from a vendor: a day. Longer is no hint a call can wait for.
    public static let maxRetryAfterSeconds = 86_400.0
}
