// The response cache from the generator's side: which requests it serves and keeps (the rule
// below, also in README and prism.proto), the key of each attempt's request as sent, single
// flight for identical requests in progress, and storing a complete answer. The generator asks
// for a ticket per candidate after adaptation; the store behind is any ResponseCache.
import Foundation
import Logging
import PrismStore

/// prism.v1.CachePolicy.
public enum CachePolicy: Int, Sendable {
    /// Read any entry; write when the request is cacheable by default (`GenerationCache.writesByDefault`).
    case `default` = 0
    /// Neither read nor write.
    case bypass = 1
    /// Do not read; write the fresh answer whenever it can be recorded (how a client asks to
    /// cache a request the default rule leaves out, e.g. one with tools).
    case refresh = 2
}

/// What the cache did for one model tried (`prism_cache_requests_total{result}`).
public enum CacheResult: String, Sendable {
    /// A stored answer was replayed.
    case hit
    /// An identical request in progress made the answer, which this one shared (single flight).
    case coalesced
    /// Nothing stored: the model is called.
    case miss
    /// The client asked for a fresh answer (CACHE_POLICY_REFRESH): not read, written after.
    case refresh
    /// The client asked to keep out of the cache (CACHE_POLICY_BYPASS).
    case bypass
    /// An answer the cache cannot keep (streamed audio in, media out, not Generate).
    case uncacheable
}

public final class GenerationCache: Sendable {
    public let store: any ResponseCache
    /// How long an entry is served (cache.ttl_seconds).
    public let ttl: TimeInterval
    let flights: SingleFlight
    private let logger: Logger

    public init(store: any ResponseCache, ttl: TimeInterval, maxWaiters: Int = ProviderLimits.cacheFlightWaiters, logger: Logger) {
        self.store = store
        self.ttl = ttl
        flights = SingleFlight(maxWaiters: maxWaiters)
        self.logger = logger
    }

    /// Whether an answer to `request` can be kept at all: a text-only Generate whose input is
    /// all there (streamed audio and media outputs are never cached).
    static func canRecord(_ request: GenerationRequest) -> Bool {
        request.operation == .generate && request.streamedAudio == nil && request.outputs.subtracting([.text]).isEmpty
    }

    /// The default rule: an answer is kept when the client asked for a repeatable one, that is
    /// temperature 0, or a response schema with the temperature unset (extraction: the data is
    /// wanted, not a variation); and no tools, whose calls act on a world that changes. An unset
    /// temperature alone is the model's default (about 1 for every vendor): sampled, not cached.
    public static func writesByDefault(_ request: GenerationRequest) -> Bool {
        guard canRecord(request), request.tools.isEmpty else { return false }
        return request.temperature == 0 || (request.temperature == nil && !request.responseSchemaJSON.isEmpty)
    }

    /// Why the cache takes no part in `request` (the client's bypass, or an answer it cannot
    /// keep); nil when it does.
    static func skipped(_ request: GenerationRequest) -> CacheResult? {
        if request.route.cache == .bypass { return .bypass }
        return canRecord(request) ? nil : .uncacheable
    }

    /// What the cache does for `adapted` (the request as `model` receives it); nil for none.
    func ticket(original: GenerationRequest, adapted: GenerationRequest, model: ModelCapability, operation: Operation) -> CacheTicket? {
        let policy = original.route.cache
        guard Self.skipped(original) == nil else { return nil }
        let writes = policy == .refresh || Self.writesByDefault(original)
        let reads = policy == .default
        return CacheTicket(cache: self, key: CacheKey.of(adapted, model: model.name, operation: operation),
                           reads: reads, writes: writes, flight: reads && writes, provider: model.provider, model: model.name)
    }

    fileprivate func lookup(_ key: Data) async -> CachedAnswer? {
        do {
            guard let entry = try await store.lookup(key) else { return nil }
            return CachedAnswer.decode(entry.value)
        } catch {
            logger.warning("response cache: lookup failed, calling the model: \(error)")
            return nil
        }
    }

    fileprivate func store(_ key: Data, _ value: Data) async -> Bool {
        do {
            try await store.store(key, value: value, ttl: ttl)
            return true
        } catch {
            logger.warning("response cache: storing an answer failed: \(error)")
            return false
        }
    }
}

/// The cache's part in one candidate of one request. Used by that request's task alone, in
/// order: `cachedAnswer`, then per attempt `startAttempt` and `record`, `complete` on a good
/// end, and `release` always (a leader's waiters are resumed there).
final class CacheTicket: @unchecked Sendable {
    private let cache: GenerationCache
    let key: Data
    let reads: Bool
    let writes: Bool
    private let flight: Bool
    private let provider: String
    private let model: String
    private var leading = false
    private var stored: Data?
    private var recorder: AnswerRecorder?

    fileprivate init(cache: GenerationCache, key: Data, reads: Bool, writes: Bool, flight: Bool, provider: String, model: String) {
        self.cache = cache
        self.key = key
        self.reads = reads
        self.writes = writes
        self.flight = flight
        self.provider = provider
        self.model = model
    }

    /// A stored answer to replay, or one an identical request in progress made (nil: call the
    /// model), and which of these it was, as metrics count it.
    func cachedAnswer() async -> (CachedAnswer?, CacheResult) {
        guard reads else { return (nil, .refresh) }
        if let hit = await cache.lookup(key) { return (hit, .hit) }
        guard flight else { return (nil, .miss) }
        switch await cache.flights.join(key) {
        case .answer(let data):
            let answer = CachedAnswer.decode(data)
            return (answer, answer == nil ? .miss : .coalesced)
        case .alone:
            return (nil, .miss)
        case .lead:
            leading = true
            // A leader that just finished may have stored it between our lookup and our join.
            let answer = await cache.lookup(key)
            return (answer, answer == nil ? .miss : .hit)
        }
    }

    /// A new attempt: what an earlier one recorded is dropped.
    func startAttempt() {
        if writes { recorder = AnswerRecorder(provider: provider, model: model) }
    }

    func record(_ output: GenerationOutput) {
        if case .event(let event) = output { recorder?.record(event) }
    }

    /// The attempt ended OK: keeps its answer if it is complete (see AnswerRecorder).
    func complete() async {
        guard writes, let answer = recorder?.completeAnswer else { return }
        let value = answer.encoded()
        if await cache.store(key, value) { stored = value }
    }

    /// Ends this request's lead, if it led: waiters get the stored answer, or make their own calls.
    func release() {
        guard leading else { return }
        leading = false
        cache.flights.finish(key, with: stored)
    }
}
