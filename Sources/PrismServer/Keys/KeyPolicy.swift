// What a named API key may do, applied to every method of a service: the call is counted and
// checked against the key's quotas when it starts (RESOURCE_EXHAUSTED with `retry-after-ms` over
// one), then runs with the key as the task's Caller, so the Generator keeps to the key's models
// and charges its usage. Calls of unnamed keys, or with auth off, pass untouched.
import PrismProviders
import PrismRPC

struct KeyPolicy: Sendable {
    let keys: KeyRing
    let gate: QuotaGate

    /// `definition` with every handler behind the policy. A handler that runs on the event loop
    /// (`unaryOnEventLoop`, cheap probes) cannot await the counters and is left as it is.
    func wrap(_ definition: ServiceDefinition) -> ServiceDefinition {
        var wrapped = ServiceDefinition(name: definition.name)
        for (method, handler) in definition.methods { wrapped.add(method, wrap(handler)) }
        return wrapped
    }

    private func wrap(_ handler: RPCHandler) -> RPCHandler {
        switch handler {
        case .unary(let body):
            return .unary { request, context in try await admitted(context) { try await body(request, context) } }
        case .unaryOnEventLoop:
            return handler
        case .serverStreaming(let body):
            return .serverStreaming { request, context, writer in try await admitted(context) { try await body(request, context, writer) } }
        case .clientStreaming(let body):
            return .clientStreaming { requests, context in try await admitted(context) { try await body(requests, context) } }
        case .bidirectional(let body):
            return .bidirectional { requests, writer, context in try await admitted(context) { try await body(requests, writer, context) } }
        }
    }

    /// Runs `body` for the call's key once its quotas admit the call.
    func admitted<T>(_ context: ServerCallContext, _ body: () async throws -> T) async throws -> T {
        guard let name = context.head.apiKeyName, let key = keys.named(name) else { return try await body() }
        do {
            try await gate.admit(key)
        } catch let refusal as QuotaRefusal {
            context.addTrailer("retry-after-ms", "\(refusal.retryAfterMilliseconds)")
            throw RPCError(.resourceExhausted, refusal.message)
        }
        return try await Caller.$current.withValue(key.caller) { try await body() }
    }
}
