// Generate, from the host's side: plan, adapt, call the plugin and stream its events, with
// retries and fallbacks for failures before any content and a non-OK end for failures after.
// Every attempt is announced with a `routed` output first, as API.md requires. Audio that is still
// arriving goes to a model that reads streamed input while it arrives, to any other whole.
import CPrismPlugin
import Foundation
import Logging
import PrismMedia
import Tracing

/// Where a request went and what was done to it (prism.v1.RouteInfo).
public struct RouteInfo: Sendable, Equatable {
    public var provider: String
    public var model: String
    public var adaptations: [String]
    /// 1 for the first try; each retry or fallback counts up.
    public var attempt: Int
    /// The answer that follows is replayed from the response cache.
    public var cacheHit = false

    public init(provider: String, model: String, adaptations: [String], attempt: Int, cacheHit: Bool = false) {
        self.provider = provider
        self.model = model
        self.adaptations = adaptations
        self.attempt = attempt
        self.cacheHit = cacheHit
    }
}

/// What the generator hands the service, in order: `routed`, then events, per attempt.
public enum GenerationOutput: Sendable {
    case routed(RouteInfo)
    case event(ProviderEvent)
}

/// Serves generation requests through the loaded plugins.
public final class Generator: Sendable {
    public let host: PluginHost
    public let planner: Planner
    public let health: ProviderHealth
    /// Fetches Media.uri before planning (the config's `media.fetch` policy).
    public let fetcher: MediaFetcher
    /// The response cache; nil when it is off.
    public let cache: GenerationCache?
    /// Every call's outcome, first token, usage and cache decision (for /metrics).
    public let metrics: ProviderMetrics
    /// Told what each generation spent, under its Caller's key (usage accounting, budgets).
    public let meter: (any UsageMeter)?
    private let logger: Logger

    public init(host: PluginHost, planner: Planner = Planner(), health: ProviderHealth = ProviderHealth(),
                fetcher: MediaFetcher = MediaFetcher(), cache: GenerationCache? = nil, metrics: ProviderMetrics = ProviderMetrics(),
                meter: (any UsageMeter)? = nil, logger: Logger) {
        self.host = host
        self.planner = planner
        self.health = health
        self.fetcher = fetcher
        self.cache = cache
        self.metrics = metrics
        self.meter = meter
        self.logger = logger
    }

    /// Plans, adapts and runs `request`, passing every output to `emit` (which applies the
    /// client's backpressure). Returns after a complete answer; throws `ProviderFailure` otherwise.
    ///
    /// `relayExecutor`, if given, runs the relay of a plugin's events to `emit` (and nothing
    /// else: planning and adaptation stay on the caller's executor). A service passes the executor
    /// of the connection its writes go to, so a streamed event costs no extra thread wake-up.
    ///
    /// `emit` runs on the relay's executor (`nonisolated(nonsending)`), with no switch per output.
    ///
    /// Inside a call with a `Caller`, only the models its key allows are candidates (none left:
    /// PERMISSION_DENIED naming the models), and what the answer spent goes to `meter` under its key.
    public func generate(_ request: GenerationRequest, relayExecutor: (any TaskExecutor)? = nil,
                         emit: nonisolated(nonsending) @Sendable (GenerationOutput) async throws -> Void) async throws {
        let tally = UsageTally()
        do {
            try await run(request, relayExecutor: relayExecutor, tally: tally, emit: emit)
        } catch {
            await report(tally)
            throw error
        }
        await report(tally)
    }

    /// Hands what a generation spent to the meter.
    private func report(_ tally: UsageTally) async {
        guard let meter else { return }
        let key = Caller.current?.keyName ?? ""
        for entry in tally.all { await meter.record(key: key, model: entry.model, requests: entry.requests, usage: entry.usage) }
    }

    /// The candidates `caller`'s key may use; throws PERMISSION_DENIED when that leaves none.
    static func permitted(_ candidates: [Candidate], for caller: Caller?) throws -> [Candidate] {
        guard let caller, !caller.models.patterns.isEmpty else { return candidates }
        let allowed = candidates.filter { caller.models.permits($0.model.name) }
        guard allowed.isEmpty else { return allowed }
        let names = candidates.map(\.model.name)
        let models = names.isEmpty ? "no model" : names.count == 1 ? "model \(names[0])" : "models \(names.joined(separator: ", "))"
        throw ProviderFailure(.permissionDenied, "API key '\(caller.keyName)' may not use \(models) (its models: \(caller.models.patterns.joined(separator: ", ")))")
    }

    private func run(_ request: GenerationRequest, relayExecutor: (any TaskExecutor)?, tally: UsageTally,
                     emit: nonisolated(nonsending) @Sendable (GenerationOutput) async throws -> Void) async throws {
        var asked = request
        asked.route = planner.resolvingAliases(request.route)
        // Generate routed to an engine that only does OCR or transcription runs that engine on
        // the inputs (how `prism ocr` reaches local/tesseract): the answer is its text.
        if request.operation == .generate, !asked.route.model.isEmpty,
           let named = host.capabilityMatrix().first(where: { $0.name == asked.route.model }),
           !named.operations.contains(.generate), let operation = named.operations.first(where: { $0 == .ocr || $0 == .transcribe }) {
            asked.operation = operation
        }
        // Media by URI is fetched once, before planning looks at any bytes; retries and
        // fallbacks reuse what was fetched. Each attempt's `routed` names the fetches.
        let fetched: [String]
        (asked, fetched) = try await fetcher.resolve(asked)
        let request = asked
        var needs = try await offload { try RequestNeeds.of(request) }
        if request.streamedAudio != nil {
            // Still arriving: planned on its kind alone (the producer enforces the length limit).
            needs.media.append(InputMedium(modality: .audio, bytes: 0, mimeType: StreamedAudio.mimeType))
        }
        let candidates = try withSpan("prism.plan") { span in
            let candidates = try Self.permitted(planner.plan(needs, route: request.route, matrix: host.capabilityMatrix(), families: host.families(),
                                                             skipping: health.coolingDown()), for: Caller.current)
            span.attributes["prism.plan.candidates"] = candidates.map { $0.model.name }.joined(separator: ",")
            return candidates
        }
        let adapter = Adapter(host: host)
        let dimensions = metrics.dimensions(for: request)
        var attempt = 0
        var lastFailure: ProviderFailure?

        for (index, candidate) in candidates.enumerated() {
            let model = candidate.model
            var adapted: GenerationRequest, report: [String] = []
            do {
                adapted = try await Self.input(of: request, for: model)
                if adapted.streamedAudio == nil { (adapted, report) = try await adapter.adapt(adapted, for: candidate) }
            } catch let failure as ProviderFailure where index + 1 < candidates.count && [.resourceExhausted, .unavailable].contains(failure.code) {
                // This model's limits cannot be met, or its helper is gone: another may do.
                lastFailure = failure
                continue
            }
            // The cache is keyed by the request as this model receives it (see ResponseCaching).
            let ticket = cache?.ticket(original: request, adapted: adapted, model: model, operation: candidate.operation)
            defer { ticket?.release() }
            let lookup = await ticket?.cachedAnswer()
            if let result = lookup?.1 ?? (cache == nil ? nil : GenerationCache.skipped(request)) { metrics.cache(result, dimensions) }
            if let hit = lookup?.0 {
                attempt += 1
                try await emit(.routed(RouteInfo(provider: model.provider, model: model.name, adaptations: fetched + report, attempt: attempt, cacheHit: true)))
                for event in hit.events() { try await emit(.event(event)) }
                tally.answered(by: model.name)
                return
            }

            for retry in 0..<ProviderLimits.attemptsPerModel {
                try Task.checkCancellation()
                attempt += 1
                try await emit(.routed(RouteInfo(provider: model.provider, model: model.name, adaptations: fetched + report, attempt: attempt)))
                ticket?.startAttempt()
                let started = Date()
                let end: PluginCall.End
                var sentContent = false
                let answer = TextCollector()
                var callStarted = false
                // The provider call's span; the plugin's request carries its trace context.
                let span = ProviderTracing.startCall(model, operation: candidate.operation)
                defer { span.end() }
                do {
                    let call = try ServiceContext.withValue(span.context) {
                        try host.startCall(model: model, operation: candidate.operation, request: adapted)
                    }
                    callStarted = true
                    end = try await withTaskExecutorPreference(relayExecutor) {
                        try await stream(call, model: model, tally: tally, sentContent: &sentContent, dimensions: dimensions) { output in
                            if case .event(.text(let text)) = output { answer.append(text) }
                            if case .event(.usage(let usage)) = output { ProviderTracing.record(usage: usage, on: span) }
                            ticket?.record(output)
                            try await emit(output)
                        }
                    }
                } catch let failure as ProviderFailure where failure.code == .unavailable || failure.code == .failedPrecondition {
                    // Not started: the worker pool is full or the model has gone.
                    if !callStarted { metrics.callEnded(model, outcome: "rejected", dimensions) }
                    ProviderTracing.failed(span, failure)
                    lastFailure = failure
                    break
                }
                metrics.callEnded(model, outcome: end.outcome, dimensions)
                if end.isOK {
                    tally.answered(by: model.name)
                    await ticket?.complete()
                    if let voice = SpeechOutput.voice(of: candidate) {
                        try await SpeechOutput.speak(answer.text, via: voice, host: host, original: request, emit: emit)
                    }
                    health.succeeded(model.name, seconds: Date().timeIntervalSince(started))
                    return
                }
                let failure = Self.failure(end, model: model, deadline: request.deadline)
                ProviderTracing.failed(span, failure)
                if failure.code == .cancelled || failure.code == .deadlineExceeded || Task.isCancelled { throw failure }
                health.failed(model.name)
                // After content, a retry would repeat what the client already has.
                if sentContent { throw failure }
                logger.warning("\(model.name) failed before content (attempt \(attempt)): \(failure.message)")
                lastFailure = failure
                if [.invalidArgument, .resourceExhausted].contains(failure.code) { throw failure }
                guard end.retryable, retry + 1 < ProviderLimits.attemptsPerModel else { break }
                let backoff = ProviderLimits.retryDelaySeconds * pow(2, Double(retry))
                let delay = min(ProviderLimits.maxRetryDelaySeconds, max(backoff, Double(end.retryAfterMilliseconds) / 1000))
                try await Task.sleep(nanoseconds: UInt64(delay * 1_000_000_000))
            }
        }
        throw lastFailure ?? ProviderFailure(.unavailable, "no provider could serve the request")
    }

    /// `request` as `model` takes its input. Streamed audio stays streamed for a model that reads
    /// streamed input (shown to it as an empty Media of StreamedAudio.mimeType); any other model
    /// waits for the end of the input and gets it whole as a WAV, as if the client had sent one.
    ///
    /// Retries and fallbacks (before any content) start over from the first sample: StreamedAudio
    /// keeps what it has handed out, and each call reads it from the start.
    static func input(of request: GenerationRequest, for model: ModelCapability) async throws -> GenerationRequest {
        guard let audio = request.streamedAudio else { return request }
        var adapted = request
        let media: MediaInput
        if model.features.streamingInput {
            media = MediaInput(mimeType: StreamedAudio.mimeType, data: Data(), name: "audio.pcm")
        } else {
            guard let pcm = await audio.whole() else { throw ProviderFailure(.cancelled, "the audio stream was cancelled") }
            media = MediaInput(mimeType: "audio/wav", data: AudioEncoder.wavHeader(format: .speech, dataBytes: pcm.count) + pcm, name: "audio.wav")
            adapted.streamedAudio = nil
        }
        if let user = adapted.messages.lastIndex(where: { $0.role == .user }) {
            adapted.messages[user].parts.append(.media(media))
        } else {
            adapted.messages.append(ChatMessage(role: .user, parts: [.media(media)]))
        }
        return adapted
    }

    /// Reads a call to its end, passing events on; cancels the call if the client goes away.
    /// Records the call's first content and usage in `metrics` and `tally`, and its end when the
    /// client went away (the caller records any other end).
    nonisolated(nonsending)
    private func stream(_ call: PluginCall, model: ModelCapability, tally: UsageTally, sentContent: inout Bool, dimensions: [(String, String)],
                        emit: nonisolated(nonsending) @Sendable (GenerationOutput) async throws -> Void) async throws -> PluginCall.End {
        let started = ContinuousClock.now
        do {
            return try await call.read { event in
                var event = event
                if event.isBatchAnswer { return }  // a plugin bug; not part of a streamed answer
                if event.isContent && !sentContent {
                    sentContent = true
                    let elapsed = (ContinuousClock.now - started).components
                    metrics.firstToken(model, seconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18, dimensions)
                }
                if case .usage(var usage) = event, usage.costUSDMicros == 0 {
                    usage.costUSDMicros = usage.cost(at: model.pricing)
                    event = .usage(usage)
                }
                if case .usage(let usage) = event {
                    metrics.usage(usage, model: model, dimensions)
                    tally.add(usage, model: model.name)
                }
                try await emit(.event(event))
            }
        } catch {
            // `read` has cancelled the call.
            metrics.callEnded(model, outcome: "cancelled", dimensions)
            throw error
        }
    }

    /// A plugin's timeout this close to the request's deadline is the deadline passing.
    static let deadlineSlack: TimeInterval = 0.05

    /// A plugin's failed end as the client should see it (API.md's status table).
    static func failure(_ end: PluginCall.End, model: ModelCapability, deadline: Date?) -> ProviderFailure {
        let message = end.message.isEmpty ? "no message" : end.message
        if end.abandoned { return ProviderFailure(.cancelled, "the call was cancelled; \(model.name) ignored it and was abandoned") }
        switch prism_status(rawValue: UInt32(bitPattern: end.status)) {
        case PRISM_STATUS_CANCELLED:
            return ProviderFailure(.cancelled, "the call to \(model.name) was cancelled")
        case PRISM_STATUS_DEADLINE_EXCEEDED:
            // The vendor client's timeout is the call's deadline; its timer and ours may disagree by
            // a few milliseconds, and nothing useful fits in what would be left anyway.
            if let deadline, deadline.timeIntervalSinceNow < deadlineSlack {
                return ProviderFailure(.deadlineExceeded, "deadline passed while \(model.name) was answering")
            }
            return ProviderFailure(.unavailable, "\(model.name) timed out: \(message)", retryAfterMilliseconds: end.retryAfterMilliseconds)
        case PRISM_STATUS_RATE_LIMITED:
            return ProviderFailure(.unavailable, "\(model.name) is rate-limited or overloaded: \(message)", retryAfterMilliseconds: end.retryAfterMilliseconds)
        case PRISM_STATUS_UNAVAILABLE:
            return ProviderFailure(.unavailable, "\(model.name) is unavailable: \(message)", retryAfterMilliseconds: end.retryAfterMilliseconds)
        case PRISM_STATUS_INVALID_ARGUMENT:
            return ProviderFailure(.invalidArgument, "\(model.name) rejected the request: \(message)")
        case PRISM_STATUS_RESOURCE_EXHAUSTED:
            return ProviderFailure(.resourceExhausted, "the request is over a limit of \(model.name): \(message)")
        case PRISM_STATUS_UNAUTHENTICATED:
            return ProviderFailure(.failedPrecondition, "provider \(model.provider) rejected the gateway's own credentials: \(message)")
        case PRISM_STATUS_FAILED_PRECONDITION, PRISM_STATUS_UNIMPLEMENTED:
            return ProviderFailure(.failedPrecondition, "provider \(model.provider) cannot serve this: \(message)")
        default:
            return ProviderFailure(end.retryable ? .unavailable : .internalError, "plugin for \(model.name) failed (status \(end.status)): \(message)")
        }
    }
}
