// HTTP(S) fetches of Media.uri on the host's I/O loops (HostIOLoop), so no event loop or
// cooperative thread ever blocks on an origin. Redirects are followed here, hop by hop, and every
// socket curl opens is first shown to the SSRF guard.
import CCurl
import CPrismPlugin
import Foundation

/// What a fetch brought back: the bytes, the type the origin declared, where it ended.
struct FetchedBody: Sendable {
    var data: Data
    /// The response's Content-Type without parameters; a declared type only.
    var declaredType: String
    var finalURL: String
    var redirects: Int
}

/// Bytes one request may still fetch, all its URIs together, and the loop that fetches them all,
/// so that `remaining` is touched only by write callbacks on that one loop's thread.
final class FetchBudget: @unchecked Sendable {
    // @unchecked: `remaining` is touched only on `loop`'s thread (above); the `let`s never change.
    let total: Int
    let loop = HostIOLoop.next()
    fileprivate var remaining: Int

    init(total: Int) {
        self.total = total
        remaining = total
    }
}

/// Fetches origins' media with one `MediaFetchPolicy`. Callers only start fetches and cancel
/// them (by cancelling their task); the transfers run on their budget's loop.
struct OriginFetcher: Sendable {
    let policy: MediaFetchPolicy

    /// Fetches `url` (http or https), following redirects, within `budget`, until `end`.
    /// Cancelling the calling task stops the transfer and closes its connection.
    func fetch(_ url: String, end: Date, endIsDeadline: Bool, budget: FetchBudget) async throws -> FetchedBody {
        let transfer = FetchTransfer(url: url, end: end, endIsDeadline: endIsDeadline, budget: budget, policy: policy)
        let loop = budget.loop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Set before the loop can see the transfer (execute orders the two).
                transfer.continuation = continuation
                loop.execute { transfer.start(on: loop) }
            }
        } onCancel: {
            // Runs on the loop after a start queued before it; a cancel queued first makes the
            // start end the transfer at once (`refusal`).
            loop.execute { transfer.cancel(on: loop) }
        }
    }
}

/// One fetch: its hops, its body so far and its outcome. Everything but `continuation` (set before
/// the loop sees the transfer) is touched on the budget's loop only.
private final class FetchTransfer: LoopTransfer, @unchecked Sendable {
    // @unchecked: confined to its loop after `OriginFetcher.fetch` hands it over (above).
    enum Outcome {
        case redirect
        case done(Result<FetchedBody, ProviderFailure>)
    }

    let easy: UnsafeMutableRawPointer
    let originalURL: String
    let end: Date
    let endIsDeadline: Bool
    let budget: FetchBudget
    let policy: MediaFetchPolicy
    var continuation: CheckedContinuation<FetchedBody, Error>?
    private var cancelled = false
    /// curl's own CURLOPT_TIMEOUT_MS ends a fetch, not the loop.
    let loopDeadline = UInt64.max
    let expiredMessage = ""

    private var hopURL: String
    private var hopHost = ""
    private var parsed: OpaquePointer?
    private var redirects = 0
    private var body = Data()
    /// Set by the write callback: the per-URI or the per-request limit was passed.
    private var overLimit: String?
    /// Set by the open-socket callback: the first address refused, and why.
    private var refusal: String?
    /// Set by the write callback when the answer is a redirect or an error, whose body is not read.
    private var stoppedAtStatus = false
    /// CURLOPT_ERRORBUFFER: curl's detailed message for a failed transfer.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    init(url: String, end: Date, endIsDeadline: Bool, budget: FetchBudget, policy: MediaFetchPolicy) {
        easy = curl_easy_init()!
        originalURL = url
        hopURL = url
        self.end = end
        self.endIsDeadline = endIsDeadline
        self.budget = budget
        self.policy = policy
    }

    deinit {
        curl_easy_cleanup(easy)
        if let parsed { curl_url_cleanup(parsed) }
        errorBuffer.deallocate()
    }

    /// Starts the current hop on `loop` (configured anew: the first, or a redirect's).
    func start(on loop: HostIOLoop) {
        do {
            try configureHop()
            loop.add(self)
        } catch {
            complete(.failure(error as? ProviderFailure ?? ProviderFailure(.internalError, "\(error)")))
        }
    }

    /// The task was cancelled: end the transfer (closing its connection), or refuse its start.
    func cancel(on loop: HostIOLoop) {
        cancelled = true
        loop.abort(self, status: PRISM_STATUS_CANCELLED, message: "")
    }

    var startRefusal: String? { cancelled ? "cancelled" : nil }

    func curlFinished(_ code: CURLcode, on loop: HostIOLoop) {
        switch outcome(of: code) {
        case .redirect: start(on: loop)
        case .done(let result): complete(result)
        }
    }

    /// Ended by the loop: only a cancel does (a fetch has no loop deadline).
    func ended(status: prism_status, message: String) {
        complete(.failure(ProviderFailure(.cancelled, "the request was cancelled while it was being fetched")))
    }

    /// Resumes the waiting task; once.
    func complete(_ result: Result<FetchedBody, ProviderFailure>) {
        let waiting = continuation
        continuation = nil
        waiting?.resume(with: result.mapError { $0 as Error })
    }

    /// "" for the first hop; "redirected to 'URL', which " after a redirect, for messages.
    private var hopPrefix: String { redirects == 0 ? "" : "redirected to '\(MediaFetcher.quoted(hopURL))', which " }

    /// Parses the hop's URL with curl's own parser (the one that connects, so no other parser's
    /// idea of the host can differ from curl's) and sets the transfer's options.
    func configureHop() throws {
        if let parsed { curl_url_cleanup(parsed) }
        parsed = curl_url()
        guard curl_url_set(parsed, CURLUPART_URL, hopURL, 0) == CURLUE_OK else {
            throw ProviderFailure(redirects == 0 ? .invalidArgument : .failedPrecondition, "\(hopPrefix)is not a valid URL")
        }
        var scheme: UnsafeMutablePointer<CChar>?, host: UnsafeMutablePointer<CChar>?
        defer { curl_free(scheme); curl_free(host) }
        curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0)
        curl_url_get(parsed, CURLUPART_HOST, &host, 0)
        let schemeName = scheme.map { String(cString: $0).lowercased() } ?? ""
        guard schemeName == "http" || schemeName == "https" else {
            throw ProviderFailure(.failedPrecondition, "\(hopPrefix)uses the scheme '\(schemeName)'; only http and https are followed")
        }
        hopHost = host.map { String(cString: $0) } ?? ""
        body = Data()
        refusal = nil
        stoppedAtStatus = false
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))

        let h = easy
        curl_easy_reset(h)
        let context = Unmanaged.passUnretained(self).toOpaque()
        prism_curl_set_pointer(h, CURLOPT_CURLU, UnsafeMutableRawPointer(parsed))
        prism_curl_set_string(h, CURLOPT_PROTOCOLS_STR, "http,https")
        // No proxy, not even one from http_proxy & co.: through a proxy the address connected
        // to would be the proxy's, and the guard could not see the origin's.
        prism_curl_set_string(h, CURLOPT_PROXY, "")
        prism_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        // HTTP/1.1: one fetch per connection at a time, so stopping a fetch (cancelled, over the
        // limit) closes its connection and the origin stops sending; an HTTP/2 stream given up
        // on would share its connection with other fetches. A single file gains nothing from h2.
        prism_curl_set_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        prism_curl_set_string(h, CURLOPT_USERAGENT, "prism-media-fetch")
        prism_curl_set_opensocket_fn(h, openSocketCallback)
        prism_curl_set_pointer(h, CURLOPT_OPENSOCKETDATA, context)
        prism_curl_set_data_fn(h, CURLOPT_WRITEFUNCTION, writeCallback)
        prism_curl_set_pointer(h, CURLOPT_WRITEDATA, context)
        prism_curl_set_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        // A declared Content-Length over the limit ends the transfer before its body; the write
        // callback catches the rest (no length, or a length that lies).
        prism_curl_set_size(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(policy.maxBytes))
        let left = max(1, Int((end.timeIntervalSinceNow * 1000).rounded(.up)))
        prism_curl_set_long(h, CURLOPT_TIMEOUT_MS, left)
        prism_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, min(left, MediaFetchLimits.connectTimeoutSeconds * 1000))
        if let file = policy.caFile { prism_curl_set_string(h, CURLOPT_CAINFO, file) }
        if let directory = policy.caDirectory { prism_curl_set_string(h, CURLOPT_CAPATH, directory) }
    }

    /// What a finished hop means: a redirect to follow (already configured), the body, or why not.
    func outcome(of code: CURLcode) -> Outcome {
        var status = 0
        prism_curl_get_long(easy, CURLINFO_RESPONSE_CODE, &status)
        if let overLimit { return .done(.failure(ProviderFailure(.resourceExhausted, overLimit))) }
        switch code {
        case CURLE_OK:
            break
        case CURLE_WRITE_ERROR where stoppedAtStatus:
            break
        case CURLE_FILESIZE_EXCEEDED:
            return .done(.failure(ProviderFailure(.resourceExhausted, "\(hopPrefix)is larger than media.fetch.max_bytes (\(policy.maxBytes) bytes)")))
        case CURLE_OPERATION_TIMEDOUT:
            let seconds = policy.timeoutSeconds
            return .done(.failure(ProviderFailure(.deadlineExceeded, endIsDeadline
                ? "\(hopPrefix)was not fetched before the request's deadline"
                : "\(hopPrefix)was not fetched within media.fetch.timeout_seconds (\(seconds) s)")))
        case CURLE_COULDNT_CONNECT where refusal != nil:
            return .done(.failure(ProviderFailure(.failedPrecondition, hopPrefix + refusal!)))
        default:
            let detail = String(cString: errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            let kind: ProviderFailure.Code = code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_PEER_FAILED_VERIFICATION ? .failedPrecondition : .unavailable
            return .done(.failure(ProviderFailure(kind, "\(hopPrefix)cannot be fetched: \(text)")))
        }
        if [301, 302, 303, 307, 308].contains(status) {
            var location: UnsafeMutablePointer<CChar>?
            prism_curl_get_string(easy, CURLINFO_REDIRECT_URL, &location)
            guard let location else {
                return .done(.failure(ProviderFailure(.failedPrecondition, "\(hopPrefix)answered HTTP \(status) without a Location")))
            }
            redirects += 1
            guard redirects <= MediaFetchLimits.maxRedirects else {
                return .done(.failure(ProviderFailure(.failedPrecondition, "was redirected more than \(MediaFetchLimits.maxRedirects) times")))
            }
            hopURL = String(cString: location)
            return .redirect
        }
        guard (200..<300).contains(status) else {
            // 5xx, 429 and 408 may pass; any other status will not change by asking again.
            let kind: ProviderFailure.Code = status >= 500 || status == 429 || status == 408 ? .unavailable : .failedPrecondition
            return .done(.failure(ProviderFailure(kind, "\(hopPrefix)answered HTTP \(status)")))
        }
        var type: UnsafeMutablePointer<CChar>?
        prism_curl_get_string(easy, CURLINFO_CONTENT_TYPE, &type)
        let declared = type.map { String(cString: $0) }?.split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        return .done(.success(FetchedBody(data: body, declaredType: declared, finalURL: hopURL, redirects: redirects)))
    }

    /// curl's open-socket callback: refuses an address the guard forbids before any packet is sent.
    fileprivate func mayConnect(_ address: IPAddress) -> Bool {
        guard let reason = policy.allowList.refusal(host: hopHost, address: address) else { return true }
        if refusal == nil { refusal = reason }
        return false
    }

    /// curl's write callback: keeps the bytes unless a limit is passed, which ends the transfer.
    fileprivate func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var status = 0
        prism_curl_get_long(easy, CURLINFO_RESPONSE_CODE, &status)
        // The body of a redirect or an error is not wanted: stop, and outcome() reports the status.
        guard (200..<300).contains(status) else {
            stoppedAtStatus = true
            return false
        }
        if body.count + bytes.count > policy.maxBytes {
            overLimit = "\(hopPrefix)is larger than media.fetch.max_bytes (\(policy.maxBytes) bytes); the transfer was stopped there"
            return false
        }
        if bytes.count > budget.remaining {
            overLimit = "\(hopPrefix)takes the media fetched for this request past \(budget.total) bytes (\(MediaFetchLimits.requestBytesFactor) × media.fetch.max_bytes)"
            return false
        }
        budget.remaining -= bytes.count
        body.append(contentsOf: bytes)
        return true
    }
}

private func fetchTransfer(_ context: UnsafeMutableRawPointer?) -> FetchTransfer {
    Unmanaged<FetchTransfer>.fromOpaque(context!).takeUnretainedValue()
}

private let openSocketCallback: curl_opensocket_callback = { context, _, address in
    guard let address else { return -1 }
    let family = address.pointee.family
    let offset = MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr)!
    // Any family but IPv4 and IPv6 (there should be none) is refused: the guard cannot judge it.
    guard let ip = IPAddress(UnsafeRawPointer(address) + offset, family: family), fetchTransfer(context).mayConnect(ip) else {
        return -1 // CURL_SOCKET_BAD: curl tries the next address, or fails with COULDNT_CONNECT
    }
    return socket(family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
}

private let writeCallback: prism_curl_data_fn = { data, size, count, context in
    let n = size * count
    return fetchTransfer(context).received(UnsafeRawBufferPointer(start: data, count: n)) ? n : 0
}
