// A multipart/form-data body (RFC 7578) for vendor endpoints that take file uploads, such as
// OpenAI's audio transcriptions: text fields and files, in order, with a boundary that the
// content never contains.
import Foundation

/// Builds one multipart/form-data body. Add fields in the order the vendor should read them,
/// then send `body` with the `contentType` header (which carries the boundary).
public struct MultipartForm: Sendable {
    private enum Part: Sendable {
        case field(name: String, value: String)
        case file(name: String, filename: String, contentType: String, data: Data)
    }

    private var parts: [Part] = []

    public init() {}

    /// A text field. Repeat a name for arrays (OpenAI spells them `name[]`).
    public mutating func add(_ name: String, _ value: String) {
        parts.append(.field(name: name, value: value))
    }

    /// A file field; vendors often infer the format from `filename`'s extension.
    public mutating func addFile(_ name: String, filename: String, contentType: String, data: Data) {
        parts.append(.file(name: name, filename: filename, contentType: contentType, data: data))
    }

    /// The body and its Content-Type header value, `multipart/form-data; boundary=…`.
    public func encoded() -> (body: Data, contentType: String) {
        var boundary = Self.newBoundary()
        // A random 32-hex-digit boundary inside the content is all but impossible; still, check.
        while contains(boundary) { boundary = Self.newBoundary() }
        var body = Data()
        for part in parts {
            body += Data("--\(boundary)\r\n".utf8)
            switch part {
            case let .field(name, value):
                body += Data("Content-Disposition: form-data; name=\"\(Self.quoted(name))\"\r\n\r\n".utf8)
                body += Data(value.utf8)
            case let .file(name, filename, contentType, data):
                body += Data("Content-Disposition: form-data; name=\"\(Self.quoted(name))\"; filename=\"\(Self.quoted(filename))\"\r\n".utf8)
                body += Data("Content-Type: \(Self.headerValue(contentType))\r\n\r\n".utf8)
                body += data
            }
            body += Data("\r\n".utf8)
        }
        body += Data("--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    private func contains(_ boundary: String) -> Bool {
        let needle = Data(boundary.utf8)
        return parts.contains { part in
            switch part {
            case let .field(name, value): return name.contains(boundary) || value.contains(boundary)
            case let .file(_, filename, _, data): return filename.contains(boundary) || data.range(of: needle) != nil
            }
        }
    }

    private static func newBoundary() -> String {
        "prism-" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// A header value without line breaks: a content type that came with a client's media (a
    /// declared MIME type) must not add header lines to the part. Found by the multipart fuzz target.
    static func headerValue(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
    }

    /// RFC 7578 §4.2: a quoted name escapes `"` and line breaks (as browsers do, percent-encoded).
    private static func quoted(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "%22").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }
}
