// Which browser origins may call the server cross-origin, and the CORS headers that tell them
// so: on every response to an allowed origin, and on preflights (OPTIONS). Origins not listed
// get no CORS headers at all, so their browsers refuse the response.

/// The allowed origins (`PRISM_CORS_ORIGINS`, `http.cors_origins`); empty allows none.
public struct CORSPolicy: Sendable {
    /// Exact origins (`https://app.example.com`, scheme and port included); `*` allows any.
    public var allowedOrigins: [String]

    /// What gRPC-Web and Connect clients send beyond the CORS-safelisted headers.
    static let allowedRequestHeaders = "content-type, authorization, x-grpc-web, x-user-agent, grpc-timeout, "
        + "connect-protocol-version, connect-timeout-ms, connect-content-encoding, connect-accept-encoding"
    /// Response headers a browser script may read: the call's outcome in a trailers-only answer.
    static let exposedHeaders = "grpc-status, grpc-message, grpc-status-details-bin"
    /// How long (seconds) a browser may cache a preflight's answer.
    static let preflightMaxAgeSeconds = 7200

    public init(allowedOrigins: [String] = []) {
        self.allowedOrigins = allowedOrigins
    }

    func allows(_ origin: String) -> Bool {
        allowedOrigins.contains(origin) || allowedOrigins.contains("*")
    }

    /// The headers every response to a request from `origin` carries (none for other origins).
    func responseHeaders(origin: String?) -> [(String, String)] {
        guard let origin, allows(origin) else { return [] }
        return [("access-control-allow-origin", origin), ("access-control-expose-headers", Self.exposedHeaders),
                ("vary", "origin")]
    }

    /// A preflight's extra answer for `origin`, or nil when the origin is not allowed.
    func preflightHeaders(origin: String) -> [(String, String)]? {
        guard allows(origin) else { return nil }
        return [("access-control-allow-methods", "POST, GET, OPTIONS"),
                ("access-control-allow-headers", Self.allowedRequestHeaders),
                ("access-control-max-age", String(Self.preflightMaxAgeSeconds))]
    }
}
