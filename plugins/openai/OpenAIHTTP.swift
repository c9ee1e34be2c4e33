// The HTTP exchange the OpenAI endpoints share: building an authorised request, running it with
// the call's cancellation, and turning statuses and transport failures into call failures. The
// answers of transcriptions and image generations are one JSON document, read whole here.
import Foundation
import PrismPluginKit

enum OpenAIHTTP {
    /// A POST to `path` under the base URL, with the key (if any) and the call's deadline.
    static func request(_ settings: OpenAISettings, _ path: String, contentType: String, body: Data,
                        deadline: Date?) -> HTTPRequest {
        var http = HTTPRequest(url: settings.baseURL + path)
        http.headers = [("Content-Type", contentType)]
        if let key = settings.apiKey { http.headers.append(("Authorization", "Bearer \(key)")) }
        http.body = body
        http.deadline = deadline
        return http
    }

    /// Runs `request` and returns the body of a 200 answer. Throws the vendor's failure for any
    /// other status, and a failure naming `what` when the answer is over `maxBytes`.
    static func json(_ client: BlockingHTTP, _ request: HTTPRequest, call: ProviderCall, maxBytes: Int,
                     what: String) throws -> [String: Any] {
        var body = Data()
        var tooLarge = false
        var status = 0
        let head: HTTPResponseHead
        do {
            head = try client.perform(request) { head, chunk in
                status = head.status
                let cap = head.status == 200 ? maxBytes : HTTPLimits.maxErrorBodyBytes
                guard body.count + chunk.count <= cap else {
                    tooLarge = head.status == 200
                    return head.status != 200  // an error body is only cut short, not refused
                }
                body += chunk
                return true
            }
        } catch let error as HTTPTransferError {
            if tooLarge { throw CallFailure(.internalError, "openai's \(what) answer is over \(maxBytes) bytes") }
            throw VendorFailures.failure(for: error, vendor: "openai", status: status)
        }
        guard head.status == 200 else { throw OpenAIErrors.failure(status: head.status, headers: head.headers, body: body) }
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw CallFailure(.internalError, "openai's \(what) answer is not a JSON object")
        }
        return object
    }

    /// A JSON number as UInt64 (0 when absent).
    static func number(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }
}
