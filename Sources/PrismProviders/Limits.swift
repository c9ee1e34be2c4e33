// Every bound the plugin host puts on plugins and calls, in one place, each with the reason for
// its number; tests lower some of them through PluginHost.Options.
import Foundation

/// The plugin host's limits and timings. `PluginHost.Options` starts from these values.
public enum ProviderLimits {
    /// Plugin calls running at once (`plugins.worker_threads`, `--plugin-worker-threads`). A call
    /// holds its thread for its whole life, and a streamed answer lives for seconds to minutes
    /// while the thread mostly sleeps waiting for the vendor's next bytes, so this bounds
    /// concurrent streams, not CPU: a gateway in front of LLM vendors serves hundreds at once on
    /// two cores. An idle Linux thread costs its kernel task and the stack pages it touched
    /// (tens of KiB; the 1 MiB stack is only reserved address space), so 1,024 threads cost tens
    /// of MiB. Threads start on demand, so a quiet gateway has few. Vendor rate limits, not this,
    /// should be what stops a gateway; lower it on a small machine.
    public static let workerThreads = 1024
    /// Calls waiting for a worker, once all are busy, before new ones are refused as UNAVAILABLE
    /// (`plugins.queued_calls`, `--plugin-queued-calls`). A queued streaming call waits for
    /// another stream to end, which takes seconds: a short queue absorbs a burst, a long one only
    /// turns overload into timeouts.
    public static let queuedCalls = 256
    /// Events buffered per call before `emit` blocks the plugin: enough to smooth a network
    /// hiccup, small enough that a thousand slow clients cost little memory.
    public static let bufferedEventsPerCall = 64
    /// Bytes buffered per call before `emit` blocks (media chunks are large).
    public static let bufferedBytesPerCall = 1 << 20
    /// How long a cancelled call may take to finish before it is abandoned and counted.
    public static let cancelGraceSeconds = 2.0
    /// Quiet time after a change in a plugin folder before it is rescanned, so that a file being
    /// copied in is read once complete; well under the one second ListProviders promises.
    public static let reloadDebounceSeconds = 0.15
    /// Longest wait in the folder watcher's poll, which bounds how long stopping it takes.
    public static let watcherPollMilliseconds: Int32 = 250
    /// Bytes of a plugin's init failure reason that the host reads.
    public static let initErrorBytes = 1024
    /// Largest plugin file copied and loaded; a 256 MiB .so is not a provider plugin.
    public static let maxPluginFileBytes = 256 << 20
    /// Tries of one model before moving to the next candidate, for retryable failures.
    public static let attemptsPerModel = 2
    /// First retry delay, doubled each retry, capped by `maxRetryDelaySeconds`; a vendor's
    /// retry-after wins when it is longer (up to the cap).
    public static let retryDelaySeconds = 0.1
    public static let maxRetryDelaySeconds = 2.0
    /// Consecutive failures after which a provider/model is skipped for `cooldownSeconds`.
    public static let failuresBeforeCooldown = 3
    public static let cooldownSeconds = 30.0
    /// Longest model id a family may match (ABI 1.3). Vendors' ids are tens of characters; the id
    /// is the client's and goes into vendor requests, logs and metrics labels, so it is bounded.
    public static let maxModelIDLength = 256
    /// Frames sampled from a video for a model without video input, when its image limit allows.
    public static let videoFrames = 8
    /// Identical requests that wait for one in progress (the response cache's single flight)
    /// before more make their own calls: enough for a burst of retries or fan-out, few enough
    /// that a slow leader does not hold an unbounded crowd.
    public static let cacheFlightWaiters = 64
    /// Characters per text event when a cached answer is replayed (vendors stream a few words
    /// per event; a hit sends larger pieces, fewer writes).
    public static let cacheReplayChunkCharacters = 256
}

/// Bounds on media the gateway fetches itself (Media.uri); MediaFetchPolicy starts from these,
/// and the config's `media.fetch` overrides the first two.
public enum MediaFetchLimits {
    /// Bytes of one fetched medium (`media.fetch.max_bytes`): 100 MiB, PrismMedia's PDF limit,
    /// the largest of its limits on media held whole in memory (images 50 MiB). Audio or video
    /// by URI beyond it needs a higher setting; the transfer stops as soon as it is passed.
    public static let maxBytes = 100 * 1024 * 1024
    /// Largest `media.fetch.max_bytes` accepted: PrismMedia's video limit (2 GiB).
    public static let maxBytesCeiling = 2 * 1024 * 1024 * 1024
    /// Seconds for one fetch, redirects included (`media.fetch.timeout_seconds`); never past
    /// the request's own deadline. 30 s moves 100 MiB at 30 Mbit/s; slower origins are stuck.
    public static let timeoutSeconds = 30
    /// Largest `media.fetch.timeout_seconds` accepted: an hour is no longer a media fetch.
    public static let timeoutCeilingSeconds = 3600
    /// Redirects followed per fetch, each hop checked as the first was; browsers allow 20,
    /// but a media link that needs more than 5 is broken or a trap.
    public static let maxRedirects = 5
    /// Fetches of one request running at once: a request with many URIs neither opens dozens
    /// of connections nor holds a dozen half-read bodies.
    public static let concurrentFetchesPerRequest = 4
    /// Bytes fetched for one request, all URIs together, as a multiple of the per-URI limit:
    /// what four fetches at once may hold anyway, so many small URIs cannot add up to more.
    public static let requestBytesFactor = 4
    /// Connecting (DNS, TCP, TLS) longer than this means the origin is unreachable.
    public static let connectTimeoutSeconds = 10
    /// Characters of a URI quoted in an error message: a data: URI may be megabytes long.
    public static let quotedURICharacters = 160
}
