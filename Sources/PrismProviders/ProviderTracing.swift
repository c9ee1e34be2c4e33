// Trace spans of the provider layer (planning, each adaptation step, each provider call) through
// the swift-distributed-tracing API, named and attributed as OpenTelemetry's GenAI conventions say.
// They cost next to nothing until the server bootstraps a tracer (OTLP export, see README).
import Tracing

/// The spans the generator and the adapter open, and the W3C trace context a plugin call carries.
enum ProviderTracing {
    /// A provider call's span, as the GenAI conventions name it (`chat gpt-4o`): a client span,
    /// child of the current one (the RPC's), with the request's `gen_ai.*` attributes. The caller
    /// ends it, after `record(usage:)` and `failed(_:)` as they apply.
    static func startCall(_ model: ModelCapability, operation: Operation) -> any Span {
        let name = operationName(operation)
        let span = InstrumentationSystem.tracer.startSpan("\(name) \(model.id)", context: ServiceContext.current ?? .topLevel, ofKind: .client)
        guard span.isRecording else { return span }
        span.attributes["gen_ai.operation.name"] = name
        span.attributes["gen_ai.system"] = model.provider
        span.attributes["gen_ai.request.model"] = model.id
        return span
    }

    /// The token counts of a call's usage event on its span.
    static func record(usage: Usage, on span: any Span) {
        guard span.isRecording else { return }
        span.attributes["gen_ai.usage.input_tokens"] = Int(clamping: usage.inputTokens)
        span.attributes["gen_ai.usage.output_tokens"] = Int(clamping: usage.outputTokens)
        if usage.costUSDMicros > 0 { span.attributes["prism.usage.cost_usd_micros"] = Int(clamping: usage.costUSDMicros) }
    }

    /// Marks a span failed with the message the client will see (its gRPC code is the RPC span's).
    static func failed(_ span: any Span, _ failure: ProviderFailure) {
        span.attributes["error.type"] = "\(failure.code)"
        span.setStatus(SpanStatus(code: .error, message: failure.message))
    }

    /// `gen_ai.operation.name` of an operation: the conventions' well-known names where one fits.
    static func operationName(_ operation: Operation) -> String {
        switch operation {
        case .generate: return "chat"
        case .embed: return "embeddings"
        case .imageGenerate: return "image_generation"
        case .transcribe: return "transcription"
        case .synthesize: return "speech"
        case .ocr: return "ocr"
        }
    }

    /// The W3C `traceparent` (and `tracestate`) of the current span, for the ProviderRequest a
    /// plugin receives: vendor plugins send them on as HTTP headers, so the vendor's own traces
    /// join the client's. Empty when no tracer is bootstrapped or no span is current.
    static func currentTraceHeaders() -> [String: String] {
        guard let context = ServiceContext.current else { return [:] }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        return headers
    }
}

/// Writes W3C trace fields into a dictionary (the ProviderRequest's trace context).
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
