// data: URIs (RFC 2397) for Media.uri: the bytes are in the URI itself, base64 or percent-encoded.
// The media type written in the URI is only a declared type; the adapter sniffs the bytes.
import Foundation

enum DataURI {
    /// The declared type ("" when the URI names none) and the bytes of `uri`, which starts with
    /// "data:". Throws `invalidArgument` for a malformed URI, `resourceExhausted` past `maxBytes`.
    static func decode(_ uri: String, maxBytes: Int) throws -> (mimeType: String, data: Data) {
        let body = uri.utf8.dropFirst("data:".utf8.count)
        guard let comma = body.firstIndex(of: UInt8(ascii: ",")) else {
            throw ProviderFailure(.invalidArgument, "a data: URI needs a ',' before its data (data:[type][;base64],DATA)")
        }
        var parameters = String(decoding: body[..<comma], as: UTF8.self).split(separator: ";").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let base64 = parameters.last?.lowercased() == "base64"
        if base64 { parameters.removeLast() }
        // The type is the first item when it has a slash; the rest are parameters (charset=...).
        let mimeType = parameters.first.map { $0.contains("/") ? $0.lowercased() : "" } ?? ""
        // The URI is already in memory (it came in the request), so decoding it first costs
        // no more than the request did.
        let data = try decoded(body[body.index(after: comma)...], base64: base64)
        guard data.count <= maxBytes else {
            throw ProviderFailure(.resourceExhausted, "the data: URI decodes to \(data.count) bytes, over media.fetch.max_bytes (\(maxBytes))")
        }
        return (mimeType, data)
    }

    /// The payload with %XX escapes decoded and, for base64, the base64 decoded (whitespace
    /// ignored, padding optional).
    private static func decoded(_ payload: Substring.UTF8View.SubSequence, base64: Bool) throws -> Data {
        var bytes = [UInt8]()
        bytes.reserveCapacity(payload.count)
        var i = payload.startIndex
        while i < payload.endIndex {
            let byte = payload[i]
            if byte == UInt8(ascii: "%") {
                let hex = payload[payload.index(after: i)...].prefix(2)
                guard hex.count == 2, let value = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else {
                    throw ProviderFailure(.invalidArgument, "the data: URI has a '%' not followed by two hex digits")
                }
                bytes.append(value)
                i = payload.index(i, offsetBy: 3)
            } else {
                bytes.append(byte)
                i = payload.index(after: i)
            }
        }
        guard base64 else { return Data(bytes) }
        var text = bytes.filter { ![UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n")].contains($0) }
        text += [UInt8](repeating: UInt8(ascii: "="), count: (4 - text.count % 4) % 4)
        guard let data = Data(base64Encoded: Data(text)) else {
            throw ProviderFailure(.invalidArgument, "the data: URI says ;base64 but its data is not base64")
        }
        return data
    }
}
