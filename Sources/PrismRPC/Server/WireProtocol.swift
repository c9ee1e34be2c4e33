// The per-request protocol strategy (as connect-go does it): the request's content-type picks
// native gRPC, gRPC-Web (binary or base64 text) or Connect (unary or streaming); this file holds what differs
// between them (content-types, the trailers frame, base64), and everything past it is shared.
import NIOCore

/// How a call's messages and status travel.
enum WireProtocol: Equatable {
    /// `application/grpc[+proto]`: status in HTTP/2 trailers.
    case grpc
    /// `application/grpc-web[+proto]` or, with `text`, `application/grpc-web-text[+proto]`:
    /// status in a last body frame flagged 0x80; text bodies are base64 both ways.
    case grpcWeb(text: Bool)
    /// Connect unary with the binary codec (`application/proto`): bare messages, no framing;
    /// the status is the HTTP status and, on error, a JSON body (ConnectProtocol.swift).
    case connectUnary
    /// Connect streaming with the binary codec (`application/connect+proto`), for
    /// server-streaming methods: enveloped messages, the status in a last JSON envelope.
    case connectStream

    /// The protocol for a request's content-type; nil for one Prism does not serve (gRPC-Web
    /// with a codec other than proto, or not gRPC at all).
    init?(contentType: String) {
        // What every gRPC client sends, recognised without allocating.
        if contentType == "application/grpc" || contentType == "application/grpc+proto" {
            self = .grpc
            return
        }
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
            .first.map { $0.filter { $0 != " " }.lowercased() } ?? ""
        switch mediaType {
        case "application/grpc-web", "application/grpc-web+proto": self = .grpcWeb(text: false)
        case "application/grpc-web-text", "application/grpc-web-text+proto": self = .grpcWeb(text: true)
        case "application/proto", "application/json": self = .connectUnary
        case "application/connect+proto", "application/connect+json": self = .connectStream
        default:
            // Native gRPC keeps its historical leniency: any `+codec` suffix; the codec is the
            // handler's business (they all speak proto).
            guard mediaType == "application/grpc" || mediaType.hasPrefix("application/grpc+") else { return nil }
            self = .grpc
        }
    }

    /// gRPC-Web: the status in a body frame.
    var isWeb: Bool { if case .grpcWeb = self { return true } else { return false } }

    /// Whether a Connect request's codec is JSON rather than protobuf binary.
    static func isJSON(contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
            .first.map { $0.filter { $0 != " " }.lowercased() } ?? ""
        return mediaType == "application/json" || mediaType == "application/connect+json"
    }

    /// Connect, unary or streaming: `connect-*` headers, JSON errors.
    var isConnect: Bool { self == .connectUnary || self == .connectStream }

    /// A framed message (or trailers frame) as it goes into the response body.
    func encode(_ framed: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard self == .grpcWeb(text: true) else { return framed }
        // Each flush is base64 with its own padding; the spec lets clients expect that.
        let text = Base64.encode(Array(framed.readableBytesView))
        var out = allocator.buffer(capacity: text.utf8.count)
        out.writeString(text)
        return out
    }

    /// gRPC-Web's trailers frame: flag 0x80, a length, then `name: value\r\n` lines.
    static func trailersFrame(_ fields: [(String, String)], allocator: ByteBufferAllocator) -> ByteBuffer {
        var block = ""
        for (name, value) in fields { block += "\(name): \(value)\r\n" }
        var out = allocator.buffer(capacity: 5 + block.utf8.count)
        out.writeInteger(UInt8(0x80))
        out.writeInteger(UInt32(block.utf8.count))
        out.writeString(block)
        return out
    }
}

/// Decodes a base64 request body (`application/grpc-web-text`) that arrives in pieces of any
/// size. Whole 4-character groups are decoded as they complete, each on its own, so bodies made
/// of separately padded chunks decode too.
struct Base64BodyDecoder {
    private var pending: [UInt8] = []

    /// The bytes decoded from what has arrived so far; throws on a character outside base64.
    mutating func decode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        for byte in bytes where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
            pending.append(byte)
        }
        let whole = pending.count / 4 * 4
        var out: [UInt8] = []
        out.reserveCapacity(whole / 4 * 3)
        var start = 0
        // Runs of groups without padding decode together; a group with '=' ends a run.
        for group in stride(from: 0, to: whole, by: 4) where pending[group + 3] == UInt8(ascii: "=") || group + 4 == whole {
            guard let decoded = Base64.decode(String(decoding: pending[start..<group + 4], as: UTF8.self)) else {
                throw RPCError(.invalidArgument, "the grpc-web-text request body is not valid base64")
            }
            out += decoded
            start = group + 4
        }
        pending.removeFirst(whole)
        return out
    }

    /// Leftover characters at the end of the body mean it was cut short.
    var isComplete: Bool { pending.isEmpty }
}
