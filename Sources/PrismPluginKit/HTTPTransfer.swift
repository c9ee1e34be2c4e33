// Blocking HTTP requests through libcurl for plugin calls: headers and body streamed to
// closures as they arrive, HTTP/2 over TLS, deadlines, and cancellation that aborts at once
// (a curl multi handle polled in short slices, so a cancel is seen even while the vendor is silent)
// and closes the connection, so the vendor stops generating the abandoned answer.
// Every transfer of a client draws on one curl share of connections, TLS sessions and DNS answers,
// so a call reuses whichever idle connection to its vendor any earlier call left open. The CAs
// trusted for TLS come from SSL_CERT_FILE / SSL_CERT_DIR when set (TrustStore).
import CCurl
import Foundation

/// Bounds of one transfer, each with its reason.
public enum HTTPLimits {
    /// Connecting (DNS, TCP, TLS) longer than this means the vendor is unreachable.
    public static let connectTimeoutMilliseconds = 10_000
    /// A call with no deadline still ends: a streamed answer of 10 minutes is already extreme.
    public static let defaultTimeoutMilliseconds = 600_000
    /// Connections a client keeps open (in use or idle). A finished transfer that finds more than
    /// this closes the oldest idle one, so every connection beyond the cap is used once and thrown
    /// away: it must cover the calls that run at once, and the host runs at most 1,024 plugin calls
    /// at once (ProviderLimits.workerThreads). Idle ones close after 118 s (curl's default).
    public static let maxConnections = 1024
    /// Idle curl handle pairs kept for the next call. They hold no connections (the share does),
    /// only their buffers (tens of KB each), so keeping a sixteenth of the cap is enough to spare
    /// a steady load most allocations without holding megabytes after a burst.
    public static let idleHandles = maxConnections / 16
    /// The longest a cancelled call waits for its transfer to notice, while the vendor sends nothing;
    /// also how late past its deadline a transfer may end.
    public static let cancelPollMilliseconds: Int32 = 50
    /// Bytes of an error body read; vendors' error bodies are a few hundred bytes.
    public static let maxErrorBodyBytes = 64 * 1024
}

/// The certificate authorities a client trusts to sign vendors' TLS certificates. Verification of
/// the peer and its host name is always on; this only says which CAs anchor it.
///
/// Read from the standard `SSL_CERT_FILE` (a PEM bundle, CURLOPT_CAINFO) and `SSL_CERT_DIR` (a
/// directory of hashed certificates as `openssl rehash` makes, CURLOPT_CAPATH). These are the
/// variables OpenSSL's own default paths, the curl tool, Go and Python's httpx (which the OpenAI
/// and Anthropic Python SDKs use) read, so a deployment that points its other clients at a private
/// CA or a TLS-inspecting proxy's CA needs nothing Prism-specific. libcurl itself ignores them: it
/// always loads the bundle and directory fixed when it was built, so they are passed on here. As
/// in OpenSSL, each variable replaces only its own default: `SSL_CERT_FILE` alone keeps libcurl's
/// built-in directory (on Debian /etc/ssl/certs, the system CAs), `SSL_CERT_DIR` alone keeps the
/// built-in bundle. An empty value counts as unset.
public struct TrustStore: Sendable, Equatable, CustomStringConvertible {
    /// A PEM file of CA certificates; nil keeps libcurl's built-in bundle.
    public var caFile: String?
    /// A directory of CA certificates named by subject hash; nil keeps libcurl's built-in one.
    public var caDirectory: String?

    public init(caFile: String? = nil, caDirectory: String? = nil) {
        self.caFile = caFile
        self.caDirectory = caDirectory
    }

    /// The trust store `SSL_CERT_FILE` and `SSL_CERT_DIR` in `environment` name.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> TrustStore {
        func path(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        return TrustStore(caFile: path("SSL_CERT_FILE"), caDirectory: path("SSL_CERT_DIR"))
    }

    /// For error messages: where the trusted CAs were looked for (paths only, never secrets).
    public var description: String {
        let named = [caFile.map { "SSL_CERT_FILE=\($0)" }, caDirectory.map { "SSL_CERT_DIR=\($0)" }].compactMap { $0 }
        return named.isEmpty ? "the system CAs, as SSL_CERT_FILE and SSL_CERT_DIR are unset" : named.joined(separator: ", ")
    }
}

/// An HTTP request to make.
public struct HTTPRequest: Sendable {
    public var url: String
    public var method = "POST"
    /// Header lines as (name, value). Values may hold secrets: they are never logged.
    public var headers: [(String, String)] = []
    public var body = Data()
    public var deadline: Date?

    public init(url: String) { self.url = url }
}

/// The status line and headers (names lower-cased) of a response.
public struct HTTPResponseHead: Sendable {
    public var status: Int
    public var headers: [String: String]
}

/// Why a transfer did not complete.
public enum HTTPTransferError: Error, Sendable, CustomStringConvertible {
    case cancelled
    case timedOut
    /// The body handler asked to stop.
    case stopped
    /// Connection refused, reset, cut mid-body, TLS failure: the curl message.
    case transport(String)

    public var description: String {
        switch self {
        case .cancelled: return "cancelled"
        case .timedOut: return "timed out"
        case .stopped: return "stopped by the reader"
        case .transport(let message): return message
        }
    }
}

/// Makes transfers, reusing connections and curl handles across calls. Thread-safe.
///
/// Each transfer runs on its caller's thread in a multi handle of its own (which the caller polls
/// to see cancellation), and every easy handle is attached to one `ConnectionShare`, so any
/// transfer can take any idle connection. curl's caveat for sharing connections across threads
/// is that one connection is never used by two threads at once: an HTTP/2 connection busy in one
/// thread is not multiplexed into by another, which opens (or reuses) a connection of its own.
/// Multiplexing every vendor stream over one HTTP/2 connection would need a single multi handle
/// driven by one thread, whose write callbacks must not block, while a plugin's emit blocks by
/// design (backpressure from a slow client): that would need per-transfer pause and hand-off
/// queues, and would put every stream of a vendor behind one TCP connection's flow control.
/// Reused connections already skip the handshakes, which is what multiplexing would save here.
public final class HTTPClient: @unchecked Sendable {
    private let lock = NSLock()
    /// A multi handle (polled by the calling thread) and its one easy handle.
    private struct Slot {
        let multi: UnsafeMutableRawPointer
        let easy: UnsafeMutableRawPointer
    }

    private var idle: [Slot] = []
    private let share = ConnectionShare()
    private let trustStore: TrustStore
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// A client trusting the CAs of `trustStore`; by default those the environment names.
    public init(trustStore: TrustStore = .fromEnvironment()) {
        _ = Self.globalInit
        self.trustStore = trustStore
    }

    // The easy handles leave the share before it is cleaned up (ConnectionShare's deinit).
    deinit { idle.forEach(Self.cleanup) }

    /// Runs `request` to its end on this thread. `onBody` gets body bytes as they arrive, after
    /// the head is known; returning false stops the transfer. Returns the head on completion.
    public func perform(_ request: HTTPRequest, isCancelled: @escaping () -> Bool,
                        onBody: @escaping (HTTPResponseHead, Data) -> Bool) throws -> HTTPResponseHead {
        let transfer = Transfer(isCancelled: isCancelled, onBody: onBody)
        let slot = checkout()
        // The handle points at `transfer` (callback context, error buffer) until it is reset.
        defer { withExtendedLifetime(transfer) { checkin(slot) } }
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let h = slot.easy

        prism_curl_set_string(h, CURLOPT_URL, request.url)
        prism_curl_set_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        prism_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        prism_curl_set_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        // Only the anchors change; CURLOPT_SSL_VERIFYPEER and VERIFYHOST keep their defaults (on).
        if let file = trustStore.caFile { prism_curl_set_string(h, CURLOPT_CAINFO, file) }
        if let directory = trustStore.caDirectory { prism_curl_set_string(h, CURLOPT_CAPATH, directory) }
        prism_curl_set_pointer(h, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        prism_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, HTTPLimits.connectTimeoutMilliseconds)
        // No CURLOPT_TIMEOUT_MS: run() ends a transfer at its deadline itself, so that it can close
        // the connection (see there); curl's own timeout would leave an HTTP/2 one open.
        var end = Date(timeIntervalSinceNow: Double(HTTPLimits.defaultTimeoutMilliseconds) / 1000)
        if let deadline = request.deadline { end = min(end, deadline) }
        var list: UnsafeMutablePointer<curl_slist>?
        // Expect: 100-continue only adds a round trip for bodies the vendor will read anyway.
        // The call's W3C trace context goes with every request it makes (see CallTrace).
        for line in CallTrace.adding(to: request.headers).map({ "\($0.0): \($0.1)" }) + ["Expect:"] { list = curl_slist_append(list, line) }
        defer { curl_slist_free_all(list) }
        prism_curl_set_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        prism_curl_set_data_fn(h, CURLOPT_HEADERFUNCTION, headerCallback)
        prism_curl_set_pointer(h, CURLOPT_HEADERDATA, context)
        prism_curl_set_data_fn(h, CURLOPT_WRITEFUNCTION, bodyCallback)
        prism_curl_set_pointer(h, CURLOPT_WRITEDATA, context)

        // curl reads a POST body in place while the transfer runs inside this closure, so a large
        // upload (base64 media, a batch file) is not copied a second time.
        let code = request.body.withUnsafeBytes { body -> CURLcode in
            if request.method == "POST" {
                prism_curl_set_long(h, CURLOPT_POST, 1)
                prism_curl_set_size(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                prism_curl_set_pointer(h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            return run(slot, transfer, until: end)
        }
        var status = 0
        prism_curl_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        let head = HTTPResponseHead(status: status, headers: transfer.headers)
        switch code {
        case CURLE_OK:
            return head
        case CURLE_ABORTED_BY_CALLBACK:
            throw HTTPTransferError.cancelled
        case CURLE_WRITE_ERROR where transfer.stopped:
            throw transfer.cancelledWhileWriting ? HTTPTransferError.cancelled : HTTPTransferError.stopped
        case CURLE_OPERATION_TIMEDOUT:
            throw HTTPTransferError.timedOut
        default:
            throw HTTPTransferError.transport(message(for: code, transfer))
        }
    }

    /// curl's account of a failed transfer (its error buffer says more than curl_easy_strerror),
    /// and for a TLS failure which CAs were trusted, the first thing an operator needs to know.
    private func message(for code: CURLcode, _ transfer: Transfer) -> String {
        let detail = String(cString: transfer.errorBuffer)
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION:
            return "TLS certificate not accepted: \(text) (trusted CAs: \(trustStore))"
        case CURLE_SSL_CACERT_BADFILE:
            return "TLS trust store cannot be read: \(text) (\(trustStore))"
        case CURLE_SSL_CONNECT_ERROR:
            return "TLS handshake failed: \(text)"
        default:
            return text
        }
    }

    /// Drives the transfer to its end, checking for cancellation, a stop asked by the body
    /// handler and the deadline between short polls.
    ///
    /// A transfer given up on this way is removed with CURLOPT_FORBID_REUSE set, which closes its
    /// connection. For HTTP/1.1 curl would close it anyway; for HTTP/2 it would keep the connection
    /// and (libcurl 7.88) never get a RST_STREAM out, so the vendor would go on generating, and
    /// billing, the abandoned answer into a connection nobody reads. The vendor's TLS session stays
    /// resumable in the share (prism_curl_keep_tls_session), so the next connection skips most of
    /// the handshake. The callbacks only pause and curl has no overall timeout, so curl itself ends
    /// a transfer early only when its connection failed anyway (refused, reset, cut, TLS error).
    private func run(_ slot: Slot, _ transfer: Transfer, until end: Date) -> CURLcode {
        curl_multi_add_handle(slot.multi, slot.easy)
        defer { curl_multi_remove_handle(slot.multi, slot.easy) }
        func abandon(_ code: CURLcode) -> CURLcode {
            prism_curl_set_long(slot.easy, CURLOPT_FORBID_REUSE, 1)
            prism_curl_keep_tls_session(slot.easy)
            return code
        }
        var running: Int32 = 1
        while true {
            guard curl_multi_perform(slot.multi, &running) == CURLM_OK else { return abandon(CURLE_FAILED_INIT) }
            if running == 0 { break }
            if transfer.stopped { return abandon(CURLE_WRITE_ERROR) }
            if transfer.isCancelled() { return abandon(CURLE_ABORTED_BY_CALLBACK) }
            let left = end.timeIntervalSinceNow
            if left <= 0 { return abandon(CURLE_OPERATION_TIMEDOUT) }
            // Rounded up, so the deadline is never reported a fraction of a millisecond early (it
            // would read as the vendor being slow rather than the deadline passing).
            let wait = min(HTTPLimits.cancelPollMilliseconds, Int32((left * 1000).rounded(.up)))
            curl_multi_poll(slot.multi, nil, 0, wait, nil)
        }
        var left: Int32 = 0
        while let message = curl_multi_info_read(slot.multi, &left) {
            if message.pointee.msg == CURLMSG_DONE { return message.pointee.data.result }
        }
        return CURLE_OK
    }

    private func checkout() -> Slot {
        if let slot = lock.withLock({ idle.popLast() }) { return slot }
        let slot = Slot(multi: curl_multi_init()!, easy: curl_easy_init()!)
        // curl_easy_reset keeps the share: set once, for the handle's life.
        prism_curl_set_pointer(slot.easy, CURLOPT_SHARE, share.handle)
        // A multi handle caps the cache its transfers use, here the shared one; curl's default
        // (4 per easy handle in this multi) would close all but 4 of the shared connections.
        prism_curl_multi_set_long(slot.multi, CURLMOPT_MAXCONNECTS, HTTPLimits.maxConnections)
        return slot
    }

    /// Readies a slot for the next call, or frees it when enough are idle. Its connection stays
    /// in the share either way (unless curl closed it: an aborted or failed HTTP/1.1 transfer).
    private func checkin(_ slot: Slot) {
        curl_easy_reset(slot.easy)
        let kept = lock.withLock { () -> Bool in
            guard idle.count < HTTPLimits.idleHandles else { return false }
            idle.append(slot)
            return true
        }
        if !kept { Self.cleanup(slot) }
    }

    private static func cleanup(_ slot: Slot) {
        curl_multi_cleanup(slot.multi)
        curl_easy_cleanup(slot.easy)
    }
}

/// A curl share of connections, TLS sessions and DNS answers among all transfers of a client, with
/// one lock per kind of data as curl asks (CURL_LOCK_DATA_CONNECT needs curl 7.57; Debian 12 has
/// 7.88). Lives until every easy handle attached to it is cleaned up.
private final class ConnectionShare {
    let handle: UnsafeMutableRawPointer
    /// Indexed by curl_lock_data; curl takes at most one lock of each kind at a time.
    let locks: [NSLock]

    init() {
        handle = curl_share_init()!
        locks = (0..<Int(CURL_LOCK_DATA_LAST.rawValue)).map { _ in NSLock() }
        prism_curl_share_set_pointer(handle, CURLSHOPT_USERDATA, Unmanaged.passUnretained(self).toOpaque())
        prism_curl_share_set_lock_fn(handle) { _, data, _, context in
            Unmanaged<ConnectionShare>.fromOpaque(context!).takeUnretainedValue().locks[Int(data.rawValue)].lock()
        }
        prism_curl_share_set_unlock_fn(handle) { _, data, context in
            Unmanaged<ConnectionShare>.fromOpaque(context!).takeUnretainedValue().locks[Int(data.rawValue)].unlock()
        }
        for data in [CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION, CURL_LOCK_DATA_DNS] {
            prism_curl_share_set_long(handle, CURLSHOPT_SHARE, Int(data.rawValue))
        }
    }

    // Closes the idle connections left in the cache.
    deinit { curl_share_cleanup(handle) }
}

/// The state of one transfer, reached from curl's callbacks through their context pointer.
private final class Transfer {
    let isCancelled: () -> Bool
    let onBody: (HTTPResponseHead, Data) -> Bool
    var status = 0
    var headers: [String: String] = [:]
    var stopped = false
    var cancelledWhileWriting = false
    /// CURLOPT_ERRORBUFFER: curl writes a failed transfer's detailed message here.
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    init(isCancelled: @escaping () -> Bool, onBody: @escaping (HTTPResponseHead, Data) -> Bool) {
        self.isCancelled = isCancelled
        self.onBody = onBody
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit { errorBuffer.deallocate() }
}

private func transfer(_ context: UnsafeMutableRawPointer?) -> Transfer {
    Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
}

private let headerCallback: prism_curl_data_fn = { data, size, count, context in
    let t = transfer(context)
    let n = size * count
    guard let data, let line = String(bytes: UnsafeRawBufferPointer(start: data, count: n), encoding: .utf8)?
        .trimmingCharacters(in: .whitespacesAndNewlines) else { return n }
    if line.hasPrefix("HTTP/") {
        // A new status line (after a 100 Continue or a redirect): forget the earlier headers.
        t.headers = [:]
        let fields = line.split(separator: " ")
        t.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        t.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return n
}

// Stopping pauses the transfer rather than failing it, so that curl does not end it on its own:
// run() sees `stopped` and ends it, closing the connection.
private let bodyCallback: prism_curl_data_fn = { data, size, count, context in
    let t = transfer(context)
    let n = size * count
    if t.isCancelled() {
        t.stopped = true
        t.cancelledWhileWriting = true
        return Int(CURL_WRITEFUNC_PAUSE)
    }
    let chunk = data.map { Data(bytes: $0, count: n) } ?? Data()
    guard t.onBody(HTTPResponseHead(status: t.status, headers: t.headers), chunk) else {
        t.stopped = true
        return Int(CURL_WRITEFUNC_PAUSE)
    }
    return n
}
