// OpenAI's HTTP error statuses and bodies ({"error":{"message","type","param","code"}}) as call
// failures (the status table is PluginKit's VendorFailures; the body's reading is OpenAI's own).
import Foundation
import PrismPluginKit

enum OpenAIErrors {
    /// The failure for a non-200 answer, by PluginKit's one table (VendorFailures). The
    /// vendor's message is kept except for 401/403, whose message can echo part of the key.
    static func failure(status: Int, headers: [String: String], body: Data) -> CallFailure {
        let error = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any]
        let message = (error?["message"] as? String) ?? ""
        let code = (error?["code"] as? String) ?? (error?["type"] as? String) ?? ""
        let label = code.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(code)"
        return VendorFailures.failure(vendor: "openai", status: status, label: label, message: message,
                                      retryAfterMilliseconds: VendorFailures.retryAfterMilliseconds(headers))
    }
}
