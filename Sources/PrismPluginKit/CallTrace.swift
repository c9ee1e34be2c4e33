// The W3C trace context of the call a plugin thread serves (ProviderRequest.traceparent, ABI 1.3),
// bound around `serve` so that every HTTP request the call makes carries it to the vendor.

/// The trace headers of the call being served on this thread. `serve` runs on the host's worker
/// thread outside any Swift task, where a task-local is bound to the thread: each call sees its own.
enum CallTrace {
    /// (name, value) pairs: `traceparent`, and `tracestate` when the host sent one; empty when the
    /// host traces nothing.
    @TaskLocal static var headers: [(String, String)] = []

    /// The headers `request` carries.
    static func headers(of request: ProviderRequest) -> [(String, String)] {
        guard !request.traceparent.isEmpty else { return [] }
        var headers = [("traceparent", request.traceparent)]
        if !request.tracestate.isEmpty { headers.append(("tracestate", request.tracestate)) }
        return headers
    }

    /// `headers` followed by the call's trace headers that `headers` does not already set.
    static func adding(to headers: [(String, String)]) -> [(String, String)] {
        let trace = Self.headers
        if trace.isEmpty { return headers }
        let set = Set(headers.map { $0.0.lowercased() })
        return headers + trace.filter { !set.contains($0.0) }
    }
}
