// The request header fields the call runtime acts on (method, path, content-type, encodings,
// timeouts, origin), picked out of HTTP/2 or HTTP/1.1 headers as they arrive; the rest become
// the call's metadata.
#if canImport(Glibc)
import Glibc
#endif

/// The request header fields the runtime acts on, picked out as they arrive; the rest are
/// kept for the handler's metadata.
struct RequestHeaders {
    var method = ""
    var path = ""
    var contentType = ""
    var encoding = ""
    var acceptEncoding = ""
    var timeout: String?
    /// The browser origin of a cross-origin request (CORS).
    var origin: String?
    /// Connect unary: the whole body's compression, the timeout, the protocol version.
    var contentEncoding = ""
    /// Connect streaming: the compression of the messages flagged compressed.
    var connectContentEncoding = ""
    var connectTimeout: String?
    var connectProtocolVersion: String?
    var metadata: [(String, String)] = []

    /// Files one field; gRPC's own and HTTP's hop-by-hop fields never reach the metadata.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        func text() -> String { String(decoding: value, as: UTF8.self) }
        func named(_ literal: StaticString) -> Bool {
            name.count == literal.utf8CodeUnitCount
                && memcmp(name.baseAddress!, literal.utf8Start, name.count) == 0
        }
        guard let first = name.first else { return }
        if first == UInt8(ascii: ":") {
            if named(":method") { method = text() } else if named(":path") { path = text() }
            return
        }
        if named("content-type") { contentType = text() }
        else if named("grpc-encoding") { encoding = text() }
        else if named("grpc-accept-encoding") { acceptEncoding = text() }
        else if named("grpc-timeout") { timeout = text() }
        else if named("origin") { origin = text() }
        else if named("content-encoding") { contentEncoding = text() }
        else if named("connect-timeout-ms") { connectTimeout = text() }
        else if named("connect-content-encoding") { connectContentEncoding = text() }
        else if named("connect-protocol-version") { connectProtocolVersion = text() }
        else if named("te") || named("user-agent") || named("content-length") { return }
        else { metadata.append((String(decoding: name, as: UTF8.self), text())) }
    }
}
