// Gemini's error bodies ({"error":{"code","message","status","details"}}, with the RetryInfo hint
// and the API_KEY_INVALID reason read from details) as call failures, by PluginKit's status table.
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
        let retryAfter = VendorFailures.milliseconds(seconds: delay.flatMap { Double($0.hasSuffix("s") ? String($0.dropLast()) : $0) })
        // Gemini's own distinction within 400: a precondition (a region or a setting), not the request.
        if status == 400 && grpcStatus == "FAILED_PRECONDITION" {
            return CallFailure(.failedPrecondition, "gemini refused the request (\(label)): \(message)", httpStatus: http)
        }
        return VendorFailures.failure(vendor: "gemini", status: status, label: label, message: message, retryAfterMilliseconds: retryAfter)
    }
}
