// Whole-answer HTTP requests for plugins: the status, headers and the complete body of a
// short exchange (an upload, a status poll, a non-streamed answer), bounded in size.
import Foundation

extension HTTPClient {
    /// Runs `request` and returns its head and whole body. For answers that are useless until
    /// complete; streamed answers use `perform` instead. A body over `maxBodyBytes` stops the
    /// transfer and throws `.transport` naming the limit, so a runaway answer cannot fill memory.
    public func fetch(_ request: HTTPRequest, maxBodyBytes: Int, isCancelled: @escaping () -> Bool) throws -> (HTTPResponseHead, Data) {
        var body = Data()
        var overflow = false
        let head: HTTPResponseHead
        do {
            head = try perform(request, isCancelled: isCancelled) { _, chunk in
                guard body.count + chunk.count <= maxBodyBytes else {
                    overflow = true
                    return false
                }
                body += chunk
                return true
            }
        } catch HTTPTransferError.stopped where overflow {
            throw HTTPTransferError.transport("the answer is over \(maxBodyBytes) bytes")
        }
        return (head, body)
    }
}
