// One HTTP exchange a plugin started with host->http_start (ABI 2.0): the curl easy handle built
// from its prism_http_request, curl's header and body callbacks turned into the plugin's
// prism_http_handler calls on the call's I/O loop, and the one on_done that ends it.
import CCurl
import CPrismPlugin
import Foundation

/// Why http_start refused a request at once.
struct RefusedRequest: Error {
    let status: prism_status
}

/// Bounds of an exchange, each with its reason.
enum HTTPExchangeLimits {
    /// Connecting (DNS, TCP, TLS) longer than this means the vendor is unreachable.
    static let connectTimeoutMilliseconds = 10_000
    /// An exchange with no timeout and a call with no deadline still end: a streamed answer of
    /// 10 minutes is already extreme.
    static let defaultTimeoutMilliseconds: UInt64 = 600_000
}

/// Built on the thread that called http_start, then owned by the call's loop, which adds it
/// and is the only thread to touch it afterwards (curl's callbacks run inside the loop's
/// socket_action). The plugin's `ctx` is used until `complete` has called on_done.
final class HTTPExchange: LoopTransfer, @unchecked Sendable {
    // @unchecked: the `let`s never change; the vars are touched only on `loop`'s thread (above).
    let call: PluginCall
    let loop: HostIOLoop
    let easy: UnsafeMutableRawPointer
    /// When it must have ended (monotonic nanoseconds): its timeout or its call's deadline.
    let loopDeadline: UInt64
    private let timeoutMilliseconds: UInt64
    private let handler: prism_http_handler
    private let ctx: UnsafeMutableRawPointer?
    private let url: String
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private static let trustStore = TrustStore.fromEnvironment()

    // The loop's own.
    private var status = 0
    private var headers: [(String, String)] = []
    private var headDelivered = false
    /// The body callback paused the transfer because the call's buffer is over budget.
    var paused = false
    /// A callback of the plugin's asked to stop; the end is due once curl's callback returns.
    private var stopping = false
    private var completed = false

    /// Copies what `request` points to; for a request the host refuses, the status saying why.
    static func make(call: PluginCall, loop: HostIOLoop, request: prism_http_request, handler: prism_http_handler,
                     ctx: UnsafeMutableRawPointer?) -> Result<HTTPExchange, RefusedRequest> {
        guard let method = request.method.map({ String(cString: $0) }), !method.isEmpty,
              let url = request.url.map({ String(cString: $0) }), url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return .failure(RefusedRequest(status: PRISM_STATUS_INVALID_ARGUMENT))
        }
        var lines: [String] = []
        for i in 0..<request.header_count {
            guard let name = request.headers?[i].name, let value = request.headers?[i].value else { continue }
            lines.append("\(String(cString: name)): \(String(cString: value))")
        }
        let body = request.body.map { UnsafeRawBufferPointer(start: $0, count: request.body_len) }
        return .success(HTTPExchange(call: call, loop: loop, method: method, url: url, headerLines: lines, body: body,
                                     timeoutMilliseconds: request.timeout_ms, handler: handler, ctx: ctx))
    }

    private init(call: PluginCall, loop: HostIOLoop, method: String, url: String, headerLines: [String], body: UnsafeRawBufferPointer?,
                 timeoutMilliseconds: UInt64, handler: prism_http_handler, ctx: UnsafeMutableRawPointer?) {
        self.call = call
        self.loop = loop
        self.handler = handler
        self.ctx = ctx
        self.url = url
        easy = curl_easy_init()!
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        let now = DispatchTime.now().uptimeNanoseconds
        var milliseconds = timeoutMilliseconds == 0 ? HTTPExchangeLimits.defaultTimeoutMilliseconds : min(timeoutMilliseconds, HTTPExchangeLimits.defaultTimeoutMilliseconds)
        if let deadline = call.deadline {
            milliseconds = min(milliseconds, UInt64(max(1, (deadline.timeIntervalSinceNow * 1000).rounded(.up))))
        }
        self.timeoutMilliseconds = milliseconds
        loopDeadline = now + milliseconds * 1_000_000

        let h = easy
        // Any loop's exchange may take the idle connection any other left (ConnectionShare).
        prism_curl_set_pointer(h, CURLOPT_SHARE, ConnectionShare.shared.handle)
        prism_curl_set_string(h, CURLOPT_URL, url)
        prism_curl_set_string(h, CURLOPT_CUSTOMREQUEST, method)
        prism_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        prism_curl_set_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        // Only the anchors change; CURLOPT_SSL_VERIFYPEER and VERIFYHOST keep their defaults (on).
        if let file = Self.trustStore.caFile { prism_curl_set_string(h, CURLOPT_CAINFO, file) }
        if let directory = Self.trustStore.caDirectory { prism_curl_set_string(h, CURLOPT_CAPATH, directory) }
        prism_curl_set_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        prism_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, HTTPExchangeLimits.connectTimeoutMilliseconds)
        // No CURLOPT_TIMEOUT_MS: the loop ends an exchange at `end` itself, closing its connection.
        // Expect: 100-continue only adds a round trip for bodies the vendor will read anyway.
        for line in headerLines + ["Expect:"] { headerList = curl_slist_append(headerList, line) }
        prism_curl_set_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
        let me = Unmanaged.passUnretained(self).toOpaque()
        prism_curl_set_data_fn(h, CURLOPT_HEADERFUNCTION, headerCallback)
        prism_curl_set_pointer(h, CURLOPT_HEADERDATA, me)
        prism_curl_set_data_fn(h, CURLOPT_WRITEFUNCTION, bodyCallback)
        prism_curl_set_pointer(h, CURLOPT_WRITEDATA, me)
        if let body, method != "GET" {
            prism_curl_set_long(h, CURLOPT_POST, 1)
            prism_curl_set_size(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            // COPYPOSTFIELDS: curl keeps its own copy, as the plugin's bytes are gone after http_start.
            prism_curl_set_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
        }
        if method == "GET" { prism_curl_set_long(h, CURLOPT_HTTPGET, 1) }
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Why it must end before it starts: its call stopped or finished.
    var startRefusal: String? { call.refusesExchanges }

    func curlFinished(_ code: CURLcode, on loop: HostIOLoop) {
        let (status, message) = outcome(of: code)
        ended(status: status, message: message)
    }

    /// The on_done status and message for curl's result of a transfer it ended itself.
    private func outcome(of code: CURLcode) -> (prism_status, String) {
        if code == CURLE_OK { return (PRISM_STATUS_OK, "") }
        if stopping { return (PRISM_STATUS_CANCELLED, "stopped by the plugin") }
        let detail = String(cString: errorBuffer)
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return (PRISM_STATUS_UNAVAILABLE, "could not connect within \(HTTPExchangeLimits.connectTimeoutMilliseconds / 1000) s: \(text)")
        case CURLE_PEER_FAILED_VERIFICATION:
            return (PRISM_STATUS_UNAVAILABLE, "TLS certificate not accepted: \(text) (trusted CAs: \(Self.trustStore))")
        case CURLE_SSL_CACERT_BADFILE:
            return (PRISM_STATUS_UNAVAILABLE, "TLS trust store cannot be read: \(text) (\(Self.trustStore))")
        case CURLE_SSL_CONNECT_ERROR:
            return (PRISM_STATUS_UNAVAILABLE, "TLS handshake failed: \(text)")
        default:
            return (PRISM_STATUS_UNAVAILABLE, text)
        }
    }

    /// Why an exchange ended at `end`.
    var expiredMessage: String { "no complete answer from \(url) within \(timeoutMilliseconds) ms" }

    /// Calls the plugin's on_done (once) and lets the call forget the exchange. Loop thread, with
    /// the easy handle already out of the multi.
    func ended(status: prism_status, message: String) {
        guard !completed else { return }
        completed = true
        call.exchangeEnding(self)
        message.withCString { handler.on_done?(ctx, status, $0) }
        call.exchangeEnded(self)
    }

    // MARK: - curl's callbacks

    /// One line of the head as curl hands it over, CRLF included: a status line, a field (its
    /// name lowercased, its value trimmed; one that is not UTF-8 is dropped), or the blank line
    /// that ends the head. Read as bytes: String's Character-level search cost ~80 k instructions
    /// per answer.
    fileprivate func header(_ raw: UnsafeRawBufferPointer) {
        let line = Self.trimmingBlanks(raw[...])
        if line.starts(with: "HTTP/".utf8) {
            // A new status line (after a 1xx): forget the earlier headers. The code is the
            // second word ("HTTP/1.1 200 OK", "HTTP/2 200"); 0 when it is not a number.
            headers = []
            let words = line.split(separator: 0x20, maxSplits: 2)
            status = words.count > 1 ? Self.number(words[1]) : 0
        } else if line.isEmpty {
            if status >= 200 { deliverHead() }
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")),
                  let name = String(validating: line[..<colon].map(Self.asciiLowercased), as: UTF8.self),
                  let value = String(validating: Self.trimmingBlanks(line[(colon + 1)...]), as: UTF8.self) {
            headers.append((name, value))
        }
    }

    /// `bytes` without the spaces, tabs, CRs and LFs around them.
    static func trimmingBlanks(_ bytes: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return bytes[bytes.startIndex..<bytes.startIndex] }
        return bytes[first...last]
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte + 0x20 : byte
    }

    /// The decimal number `digits` spell (at most 9 of them), or 0.
    private static func number(_ digits: Slice<UnsafeRawBufferPointer>) -> Int {
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return 0 }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// on_head, once; false when the plugin asked to stop.
    @discardableResult
    private func deliverHead() -> Bool {
        guard !headDelivered else { return !stopping }
        headDelivered = true
        guard let onHead = handler.on_head else { return true }
        let names = headers.map { strdup($0.0) }
        let values = headers.map { strdup($0.1) }
        defer { (names + values).forEach { free($0) } }
        let lines = (0..<headers.count).map { prism_http_header(name: names[$0], value: values[$0]) }
        let go = lines.withUnsafeBufferPointer { onHead(ctx, UInt32(status), $0.baseAddress, $0.count) } == 0
        if !go { stop() }
        return go
    }

    /// Body bytes: paused while the call's events wait for the client, else handed to on_body.
    fileprivate func body(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        if stopping { return Int(CURL_WRITEFUNC_PAUSE) }
        if call.isOverBudget {
            paused = true
            call.whenRoom(on: loop) { [self] in loop.resume(self) }
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        guard deliverHead() else { return Int(CURL_WRITEFUNC_PAUSE) }
        guard let onBody = handler.on_body, let data, count > 0 else { return count }
        let go = data.withMemoryRebound(to: UInt8.self, capacity: count) { onBody(ctx, $0, count) } == 0
        if !go {
            stop()
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        return count
    }

    /// A plugin callback asked to stop: paused now, ended (connection closed) after the callback.
    private func stop() {
        stopping = true
        loop.endAfterCallback(self, status: PRISM_STATUS_CANCELLED, message: "stopped by the plugin")
    }
}

private func exchange(_ context: UnsafeMutableRawPointer?) -> HTTPExchange {
    Unmanaged<HTTPExchange>.fromOpaque(context!).takeUnretainedValue()
}

private let headerCallback: prism_curl_data_fn = { data, size, count, context in
    let n = size * count
    if let data { exchange(context).header(UnsafeRawBufferPointer(start: data, count: n)) }
    return n
}

private let bodyCallback: prism_curl_data_fn = { data, size, count, context in
    exchange(context).body(data, size * count)
}
