// An HTTPExchange carried by curl on the call's I/O loop: the easy handle built from the
// exchange's request, curl's header lines parsed into the head, its body callback paused while
// the call's events wait for the client. Plain HTTP, proxies and vendors without HTTP/2 go this way.
import CCurl
import CPrismPlugin
import Foundation

/// Built and added on the exchange's loop, the only thread to touch it (curl's callbacks run
/// inside the loop's socket_action).
final class CurlExchange: LoopTransfer, @unchecked Sendable {
    // @unchecked: the `let`s never change; the vars are touched only on the loop's thread (above).
    let exchange: HTTPExchange
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private static let trustStore = TrustStore.fromEnvironment()

    // The loop's own.
    private var status = 0
    private var headers: [(String, String)] = []
    /// The body callback paused the transfer because the call's buffer is over budget.
    var paused = false
    /// The end is due once curl's callback returns (the plugin asked to stop).
    private var stopping = false

    init(exchange: HTTPExchange) {
        self.exchange = exchange
        easy = curl_easy_init()!
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        let h = easy
        // Any loop's exchange may take the idle connection any other left (ConnectionShare).
        prism_curl_set_pointer(h, CURLOPT_SHARE, ConnectionShare.shared.handle)
        prism_curl_set_string(h, CURLOPT_URL, exchange.url)
        prism_curl_set_string(h, CURLOPT_CUSTOMREQUEST, exchange.method)
        prism_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        prism_curl_set_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        // Only the anchors change; CURLOPT_SSL_VERIFYPEER and VERIFYHOST keep their defaults (on).
        if let file = Self.trustStore.caFile { prism_curl_set_string(h, CURLOPT_CAINFO, file) }
        if let directory = Self.trustStore.caDirectory { prism_curl_set_string(h, CURLOPT_CAPATH, directory) }
        prism_curl_set_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        prism_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, HTTPExchangeLimits.connectTimeoutMilliseconds)
        // No CURLOPT_TIMEOUT_MS: the loop ends an exchange at `end` itself, closing its connection.
        // Expect: 100-continue only adds a round trip for bodies the vendor will read anyway.
        for line in exchange.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] { headerList = curl_slist_append(headerList, line) }
        prism_curl_set_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
        let me = Unmanaged.passUnretained(self).toOpaque()
        prism_curl_set_data_fn(h, CURLOPT_HEADERFUNCTION, headerCallback)
        prism_curl_set_pointer(h, CURLOPT_HEADERDATA, me)
        prism_curl_set_data_fn(h, CURLOPT_WRITEFUNCTION, bodyCallback)
        prism_curl_set_pointer(h, CURLOPT_WRITEDATA, me)
        if let body = exchange.body {
            prism_curl_set_long(h, CURLOPT_POST, 1)
            prism_curl_set_size(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            // The exchange owns the bytes, and this transfer holds the exchange.
            prism_curl_set_pointer(h, CURLOPT_POSTFIELDS, body.baseAddress)
        }
        if exchange.method == "GET" { prism_curl_set_long(h, CURLOPT_HTTPGET, 1) }
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    var loopDeadline: UInt64 { exchange.loopDeadline }
    var expiredMessage: String { exchange.expiredMessage }
    /// Why it must end before it starts: its call stopped or finished.
    var startRefusal: String? { exchange.call.refusesExchanges }

    func curlFinished(_ code: CURLcode, on loop: HostIOLoop) {
        let (status, message) = outcome(of: code)
        ended(status: status, message: message)
    }

    /// The loop ended it (or curl did): the exchange's on_done.
    func ended(status: prism_status, message: String) {
        exchange.ended(status: status, message: message)
    }

    /// The on_done status and message for curl's result of a transfer it ended itself.
    private func outcome(of code: CURLcode) -> (prism_status, String) {
        if code == CURLE_OK { return (PRISM_STATUS_OK, "") }
        if stopping || exchange.stopping { return (PRISM_STATUS_CANCELLED, "stopped by the plugin") }
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
            if status >= 200, !deliverHead() { stop() }
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

    /// Body bytes: paused while the call's events wait for the client, else handed to on_body
    /// (after on_head, once).
    fileprivate func body(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        if stopping { return Int(CURL_WRITEFUNC_PAUSE) }
        if exchange.call.isOverBudget {
            paused = true
            let loop = exchange.loop
            exchange.call.whenRoom(on: loop) { [self] in loop.resume(self) }
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        guard deliverHead(), exchange.deliverBody(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : count)) else {
            stop()
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        return count
    }

    /// on_head once the head is complete (an answer without a body gets it at its end).
    private func deliverHead() -> Bool {
        exchange.deliverHead(status: status, headers: headers)
    }

    /// A plugin callback asked to stop: paused now, ended (connection closed) after the callback.
    private func stop() {
        stopping = true
        exchange.loop.endAfterCallback(self, status: PRISM_STATUS_CANCELLED, message: "stopped by the plugin")
    }
}

private func exchange(_ context: UnsafeMutableRawPointer?) -> CurlExchange {
    Unmanaged<CurlExchange>.fromOpaque(context!).takeUnretainedValue()
}

private let headerCallback: prism_curl_data_fn = { data, size, count, context in
    let n = size * count
    if let data { exchange(context).header(UnsafeRawBufferPointer(start: data, count: n)) }
    return n
}

private let bodyCallback: prism_curl_data_fn = { data, size, count, context in
    exchange(context).body(data, size * count)
}
