// Anthropic's error bodies ({"type":"error","error":{"type","message"}}) as call failures (the
// status table is PluginKit's VendorFailures: 429/5xx/529 retried with retry-after); and
// the HTTP status each error type stands for, for errors that come without one (batch items).
import Foundation
import PrismPluginKit

enum AnthropicErrors {
    /// The failure for a non-200 answer, by PluginKit's one table (VendorFailures).
    static func failure(status: Int, headers: [String: String], body: Data) -> CallFailure {
        let error = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any]
        let kind = error?["type"] as? String ?? "HTTP \(status)"
        let message = error?["message"] as? String ?? ""
        return VendorFailures.failure(vendor: "anthropic", status: status, label: "HTTP \(status) \(kind)", message: message,
                                      retryAfterMilliseconds: VendorFailures.retryAfterMilliseconds(headers))
    }

    /// The HTTP status an error type comes with (shared/vendor-apis.md, Errors); 500 for a type
    /// added later.
    static func httpStatus(ofType type: String) -> Int {
        ["invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
         "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
         "timeout_error": 504, "overloaded_error": 529][type] ?? 500
    }
}
