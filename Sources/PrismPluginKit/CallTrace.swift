// The W3C trace context of a call (ProviderRequest.traceparent, ABI 1.3), added to every HTTP
// request the call makes so that the vendor's span joins the host's trace.

enum CallTrace {
    /// (name, value) pairs: `traceparent`, and `tracestate` when the host sent one; empty when the
    /// host traces nothing.
    static func headers(of request: ProviderRequest) -> [(String, String)] {
        guard !request.traceparent.isEmpty else { return [] }
        var headers = [("traceparent", request.traceparent)]
        if !request.tracestate.isEmpty { headers.append(("tracestate", request.tracestate)) }
        return headers
    }

    /// `headers` followed by those of `trace` that `headers` does not already set.
    static func adding(_ trace: [(String, String)], to headers: [(String, String)]) -> [(String, String)] {
        if trace.isEmpty { return headers }
        let set = Set(headers.map { $0.0.lowercased() })
        return headers + trace.filter { !set.contains($0.0) }
    }
}
