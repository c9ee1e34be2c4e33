// The Connect protocol (connectrpc.com/docs/protocol), binary codec. Unary: a POST whose body is
// the bare request message (`application/proto`), answered with the bare response message, or
// with an HTTP status and a JSON error naming the code; trailers travel as `trailer-` headers.
// Streaming (`application/connect+proto`): gRPC-style envelopes, ended by a JSON envelope with
// the error and trailers. What differs from gRPC lives here; the call runs as any other.
import NIOCore

enum ConnectProtocol {
    /// The request's `connect-timeout-ms`: up to 10 digits of milliseconds.
    static func parseTimeout(_ text: String) -> TimeAmount? {
        guard !text.isEmpty, text.count <= 10, text.allSatisfy(\.isASCIIDigit), let ms = Int64(text) else { return nil }
        return .milliseconds(ms)
    }

    /// A request body as received, uncompressed when the client sent `content-encoding: gzip`.
    static func decodeBody(_ body: ByteBuffer?, encoding: MessageEncoding, limit: Int,
                           allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let body = body ?? allocator.buffer(capacity: 0)
        guard encoding == .gzip else { return body }
        return try Gzip.decompressCallInput(body, limit: limit, allocator: allocator, what: "request body", corrupt: .invalidArgument)
    }

    /// How to call the method at `path` with curl or fetch: the content-type and body it takes.
    static func howToCall(_ path: String, _ handler: RPCHandler) -> String {
        let envelope = "an envelope: a 0 byte, the message's length as 4 bytes big-endian, then the message (JSON or binary)"
        switch handler {
        case .unary, .unaryOnEventLoop:
            return "\(path) is unary: send its request as JSON with content-type application/json (curl --json '{...}'), or as binary with application/proto; gRPC and gRPC-Web serve it too"
        case .serverStreaming:
            return "\(path) is server-streaming: send content-type application/connect+json (or application/connect+proto) "
                + "with the request in \(envelope); the answer is one envelope per message, then an end-of-stream envelope "
                + "(flag 2) holding the status. gRPC and gRPC-Web serve it too"
        case .clientStreaming:
            return "\(path) is client-streaming: send content-type application/connect+json (or application/connect+proto) "
                + "with each request message in \(envelope), all in one body; or gRPC over HTTP/2"
        case .bidirectional:
            return "\(path) is bidirectional: it needs gRPC over HTTP/2 (content-type application/grpc)"
        }
    }

    /// The HTTP status of an error (google.rpc's mapping, which Connect's spec follows).
    static func httpStatus(_ code: StatusCode) -> Int {
        switch code {
        case .ok: return 200
        case .cancelled: return 499
        case .invalidArgument, .failedPrecondition, .outOfRange: return 400
        case .deadlineExceeded: return 504
        case .notFound: return 404
        case .alreadyExists, .aborted: return 409
        case .permissionDenied: return 403
        case .resourceExhausted: return 429
        case .unimplemented: return 501
        case .unavailable: return 503
        case .unauthenticated: return 401
        case .unknown, .internal, .dataLoss: return 500
        }
    }

    /// Connect's name of a code: gRPC's in lower case, and `canceled` spelled the American way.
    static func codeName(_ code: StatusCode) -> String {
        code == .cancelled ? "canceled" : code.description.lowercased()
    }

    /// Connect streaming's last envelope (flag 0x02): `{"error": {...}, "metadata": {...}}`, the
    /// error absent on success, trailers as metadata (name → list of values).
    static func endStreamFrame(_ status: Status, trailers: Metadata, allocator: ByteBufferAllocator) -> ByteBuffer {
        var members: [String] = []
        if status.code != .ok { members.append("\"error\":" + errorBody(status)) }
        var values: [(String, [String])] = []
        for (name, value) in trailers.wireHeaders() {
            if let i = values.firstIndex(where: { $0.0 == name }) { values[i].1.append(value) } else { values.append((name, [value])) }
        }
        if !values.isEmpty {
            let entries = values.map { jsonString($0.0) + ":[" + $0.1.map(jsonString).joined(separator: ",") + "]" }
            members.append("\"metadata\":{" + entries.joined(separator: ",") + "}")
        }
        let json = "{" + members.joined(separator: ",") + "}"
        var out = allocator.buffer(capacity: 5 + json.utf8.count)
        out.writeInteger(UInt8(0x02))
        out.writeInteger(UInt32(json.utf8.count))
        out.writeString(json)
        return out
    }

    /// The JSON body of an error: `{"code": "...", "message": "..."}`.
    static func errorBody(_ status: Status) -> String {
        var json = "{\"code\":\"\(codeName(status.code))\""
        if !status.message.isEmpty { json += ",\"message\":\(jsonString(status.message))" }
        return json + "}"
    }

    /// `text` as a JSON string literal: quote, backslash and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
