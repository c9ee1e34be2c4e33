// HTTP(S) fetches of Media.uri through libcurl: one curl multi handle driven by one thread of its
// own, so no event loop or cooperative thread ever blocks on an origin. Redirects are followed
// here, hop by hop, and every socket curl opens is first shown to the SSRF guard.
import CCurl
import Foundation

/// What a fetch brought back: the bytes, the type the origin declared, where it ended.
struct FetchedBody: Sendable {
    var data: Data
    /// The response's Content-Type without parameters; a declared type only.
    var declaredType: String
    var finalURL: String
    var redirects: Int
}

/// Bytes one request may still fetch, all its URIs together. Touched only by curl's write
/// callbacks, which all run on the fetch thread.
final class FetchBudget: @unchecked Sendable {
    let total: Int
    fileprivate var remaining: Int

    init(total: Int) {
        self.total = total
        remaining = total
    }
}

/// Runs transfers on the fetch thread. The thread ("prism-media-fetch") starts when a transfer is
/// submitted to an idle loop and ends once none is left; it does everything curl does (DNS on
/// curl's resolver threads, connecting, TLS, reading) and resumes each waiting task when its
/// transfer ends. Callers only submit and cancel, which wake the thread (curl_multi_wakeup).
/// Safe: `lock` guards `submitted`, `threadRunning` and transfers' `cancelRequested`; `active` and the
/// easy handles are the fetch thread's; callers use `multi` only to wake it, which curl allows any thread.
final class CurlFetchLoop: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let policy: MediaFetchPolicy
    private let lock = NSLock()
    // Guarded by `lock`.
    private var submitted: [FetchTransfer] = []
    private var threadRunning = false
    // Fetch thread only.
    private var active: [UnsafeMutableRawPointer: FetchTransfer] = [:]

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(policy: MediaFetchPolicy) {
        _ = Self.globalInit
        self.policy = policy
        multi = curl_multi_init()!
    }

    // The thread holds the loop (self) while it runs, so this runs only when no transfer is left.
    deinit { curl_multi_cleanup(multi) }

    /// Fetches `url` (http or https), following redirects, within `budget`, until `end`.
    /// Cancelling the calling task stops the transfer and closes its connection.
    func fetch(_ url: String, end: Date, endIsDeadline: Bool, budget: FetchBudget) async throws -> FetchedBody {
        let transfer = FetchTransfer(url: url, end: end, endIsDeadline: endIsDeadline, budget: budget, policy: policy)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                lock.lock()
                transfer.continuation = continuation
                if transfer.cancelRequested {
                    lock.unlock()
                    transfer.complete(.failure(ProviderFailure(.cancelled, "the request was cancelled while it was being fetched")))
                    return
                }
                submitted.append(transfer)
                let start = !threadRunning
                threadRunning = true
                lock.unlock()
                if start {
                    let thread = Thread { self.run() }
                    thread.name = "prism-media-fetch"
                    thread.start()
                } else {
                    curl_multi_wakeup(multi)
                }
            }
        } onCancel: {
            lock.withLock { transfer.cancelRequested = true }
            curl_multi_wakeup(multi)
        }
    }

    /// The fetch thread's loop: take new transfers and cancellations, let curl work, finish
    /// the transfers curl is done with, sleep in curl's poll until there is more to do.
    private func run() {
        while true {
            lock.lock()
            let new = submitted
            submitted = []
            // Read under the lock; a cancel that comes later is seen on the next turn (it wakes us).
            let cancelled = (new + active.values).filter(\.cancelRequested)
            if new.isEmpty && active.isEmpty {
                threadRunning = false
                lock.unlock()
                return
            }
            lock.unlock()

            let skipped = Set(cancelled.map(ObjectIdentifier.init))
            for transfer in new where !skipped.contains(ObjectIdentifier(transfer)) { begin(transfer) }
            for transfer in cancelled {
                finish(transfer, .failure(ProviderFailure(.cancelled, "the request was cancelled while it was being fetched")), abandoned: true)
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle, let transfer = active[easy] else { continue }
                hopEnded(transfer, message.pointee.data.result)
            }
            if !active.isEmpty { curl_multi_poll(multi, nil, 0, MediaFetchLimits.pollMilliseconds, nil) }
        }
    }

    /// Starts the transfer's current hop, or finishes it if the hop cannot start.
    private func begin(_ transfer: FetchTransfer) {
        do {
            try transfer.configureHop()
            active[transfer.easy] = transfer
            curl_multi_add_handle(multi, transfer.easy)
        } catch {
            finish(transfer, .failure(error as? ProviderFailure ?? ProviderFailure(.internalError, "\(error)")), abandoned: false)
        }
    }

    /// A hop is over: the answer, a redirect to follow, or the failure to report.
    private func hopEnded(_ transfer: FetchTransfer, _ code: CURLcode) {
        curl_multi_remove_handle(multi, transfer.easy)
        active[transfer.easy] = nil
        switch transfer.outcome(of: code) {
        case .redirect:
            begin(transfer)
        case .done(let result):
            finish(transfer, result, abandoned: false)
        }
    }

    /// Ends a transfer; an abandoned one (cancelled mid-way) has its connection closed so the
    /// origin stops sending.
    private func finish(_ transfer: FetchTransfer, _ result: Result<FetchedBody, ProviderFailure>, abandoned: Bool) {
        if active[transfer.easy] != nil {
            if abandoned { prism_curl_set_long(transfer.easy, CURLOPT_FORBID_REUSE, 1) }
            curl_multi_remove_handle(multi, transfer.easy)
            active[transfer.easy] = nil
        }
        transfer.complete(result)
    }
}

/// One fetch: its hops, its body so far and its outcome. Everything but `cancelRequested` (the
/// loop's lock) and `continuation` (set before submission) is touched on the fetch thread only.
private final class FetchTransfer: @unchecked Sendable {
    // @unchecked: `cancelRequested` is guarded by the loop's lock, the rest is the fetch thread's (above).
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
    var cancelRequested = false

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
