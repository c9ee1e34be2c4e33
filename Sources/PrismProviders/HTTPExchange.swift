// One HTTP exchange a plugin started with host->http_start (ABI 2.0), as the plugin sees it: the
// request copied from its prism_http_request, the on_head / on_body calls on the call's I/O loop
// and the one on_done that ends it, whichever transport carries it — the host's own HTTP/2 client
// for HTTPS (VendorConnection, streams multiplexed on one connection) or curl (CurlExchange:
// plain HTTP, proxies, vendors without HTTP/2).
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

/// Built on the thread that called http_start, then owned by the call's loop, the only thread to
/// touch its vars afterwards (both transports call it there). The plugin's `ctx` is used until
/// `ended` has called on_done.
final class HTTPExchange: LoopTimed, @unchecked Sendable {
    // @unchecked: the `let`s never change; the vars are touched only on `loop`'s thread (above).
    let call: PluginCall
    let loop: HostIOLoop
    let method: String
    let url: String
    /// The plugin's header fields, in its order and spelling.
    let headers: [(name: String, value: String)]
    /// The request body (nil for none), owned here until the exchange goes.
    let body: UnsafeMutableRawBufferPointer?
    /// When it must have ended (monotonic nanoseconds): its timeout or its call's deadline.
    let loopDeadline: UInt64
    let timeoutMilliseconds: UInt64
    private let handler: prism_http_handler
    private let ctx: UnsafeMutableRawPointer?

    /// What carries it. The loop's own, as every var below.
    private enum Transport {
        case none
        case curl(CurlExchange)
        /// On `connection`, as `stream` once opened (nil while the connection is being made).
        case vendor(VendorConnection, stream: Int32?)
    }
    private var transport = Transport.none
    private var headDelivered = false
    /// A callback of the plugin's asked to stop.
    private(set) var stopping = false
    private var completed = false
    /// Body bytes delivered while the call's buffer was over budget, not yet returned to the
    /// vendor's window (HTTP/2 only: the vendor may send no more than its window ahead).
    private var heldBytes = 0
    private var holding = false
    /// The head as an HTTP/2 stream delivers it.
    private var vendorStatus = 0
    private var vendorFields: [(String, String)] = []

    /// Copies what `request` points to; for a request the host refuses, the status saying why.
    static func make(call: PluginCall, loop: HostIOLoop, request: prism_http_request, handler: prism_http_handler,
                     ctx: UnsafeMutableRawPointer?) -> Result<HTTPExchange, RefusedRequest> {
        guard let method = request.method.map({ String(cString: $0) }), !method.isEmpty,
              let url = request.url.map({ String(cString: $0) }), url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return .failure(RefusedRequest(status: PRISM_STATUS_INVALID_ARGUMENT))
        }
        var fields: [(name: String, value: String)] = []
        for i in 0..<request.header_count {
            guard let name = request.headers?[i].name, let value = request.headers?[i].value else { continue }
            fields.append((String(cString: name), String(cString: value)))
        }
        var body: UnsafeMutableRawBufferPointer?
        if let bytes = request.body, method != "GET" {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, request.body_len), alignment: 1)
            copy.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: request.body_len))
            body = UnsafeMutableRawBufferPointer(rebasing: copy[0..<request.body_len])
        }
        return .success(HTTPExchange(call: call, loop: loop, method: method, url: url, headers: fields, body: body,
                                     timeoutMilliseconds: request.timeout_ms, handler: handler, ctx: ctx))
    }

    private init(call: PluginCall, loop: HostIOLoop, method: String, url: String, headers: [(name: String, value: String)],
                 body: UnsafeMutableRawBufferPointer?, timeoutMilliseconds: UInt64, handler: prism_http_handler, ctx: UnsafeMutableRawPointer?) {
        self.call = call
        self.loop = loop
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.handler = handler
        self.ctx = ctx
        var milliseconds = timeoutMilliseconds == 0 ? HTTPExchangeLimits.defaultTimeoutMilliseconds : min(timeoutMilliseconds, HTTPExchangeLimits.defaultTimeoutMilliseconds)
        if let deadline = call.deadline {
            milliseconds = min(milliseconds, UInt64(max(1, (deadline.timeIntervalSinceNow * 1000).rounded(.up))))
        }
        self.timeoutMilliseconds = milliseconds
        loopDeadline = DispatchTime.now().uptimeNanoseconds + milliseconds * 1_000_000
    }

    deinit {
        body.map { UnsafeMutableRawBufferPointer(start: $0.baseAddress, count: max(1, $0.count)).deallocate() }
    }

    // MARK: - Start and end (loop thread)

    /// Starts it on the transport for its URL, or ends it at once when its call stopped meanwhile.
    func start() {
        loop.preconditionOnLoop("to start an exchange")
        if let reason = call.refusesExchanges { return ended(status: PRISM_STATUS_CANCELLED, message: reason) }
        if let origin = VendorOrigin(url: url), VendorConnections.enabled {
            loop.track(self)
            loop.vendorConnections.submit(self, to: origin)
        } else {
            startOverCurl()
        }
    }

    /// Hands it to curl (plain HTTP, or an origin that does not speak HTTP/2).
    func startOverCurl() {
        loop.untrack(self)
        let transfer = CurlExchange(exchange: self)
        transport = .curl(transfer)
        loop.add(transfer)
    }

    /// A VendorConnection took it: waiting for the connection (`stream` nil) or on a stream.
    func carried(by connection: VendorConnection, stream: Int32?) {
        transport = .vendor(connection, stream: stream)
    }

    /// Ends it before its transport did (its call was cancelled or finished): the vendor is told
    /// (the curl connection closed, or the HTTP/2 stream reset) and on_done comes with `status`.
    func abort(status: prism_status, message: String) {
        switch transport {
        case .curl(let transfer):
            loop.abort(transfer, status: status, message: message)
        case .vendor(let connection, _):
            connection.cancel(self)
            ended(status: status, message: message)
        case .none:
            ended(status: status, message: message)
        }
    }

    /// Its deadline passed while on a VendorConnection (curl's transfers are ended by the loop).
    func expire() {
        abort(status: PRISM_STATUS_DEADLINE_EXCEEDED, message: expiredMessage)
    }

    /// Why an exchange ended at its deadline.
    var expiredMessage: String { "no complete answer from \(url) within \(timeoutMilliseconds) ms" }

    /// Calls the plugin's on_done (once) and lets the call forget the exchange.
    func ended(status: prism_status, message: String) {
        guard !completed else { return }
        completed = true
        loop.untrack(self)
        transport = .none
        call.exchangeEnding(self)
        message.withCString { handler.on_done?(ctx, status, $0) }
        call.exchangeEnded(self)
    }

    var isCompleted: Bool { completed }

    // MARK: - The answer, from either transport (loop thread)

    /// on_head, once; false when the plugin asked to stop.
    @discardableResult
    func deliverHead(status: Int, headers: [(String, String)]) -> Bool {
        guard !headDelivered else { return !stopping }
        headDelivered = true
        guard let onHead = handler.on_head else { return true }
        let names = headers.map { strdup($0.0) }
        let values = headers.map { strdup($0.1) }
        defer { (names + values).forEach { free($0) } }
        let lines = (0..<headers.count).map { prism_http_header(name: names[$0], value: values[$0]) }
        let go = lines.withUnsafeBufferPointer { onHead(ctx, UInt32(status), $0.baseAddress, $0.count) } == 0
        if !go { stopping = true }
        return go
    }

    /// on_body; false when the plugin asked to stop.
    func deliverBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !stopping else { return false }
        guard let onBody = handler.on_body, let base = bytes.baseAddress, bytes.count > 0 else { return true }
        let go = onBody(ctx, base.assumingMemoryBound(to: UInt8.self), bytes.count) == 0
        if !go { stopping = true }
        return go
    }

    /// One field of a response head from an HTTP/2 stream (`:status` among them).
    func vendorHeader(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if name.elementsEqual(":status".utf8) {
            vendorStatus = value.count == 3 && value.allSatisfy({ (0x30...0x39).contains($0) }) ? value.reduce(0) { $0 * 10 + Int($1 - 0x30) } : 0
        } else if name.first != UInt8(ascii: ":"), let name = String(validating: name, as: UTF8.self),
                  let value = String(validating: value, as: UTF8.self) {
            vendorFields.append((name, value))
        }
    }

    /// A header block of an HTTP/2 stream is complete: on_head for the final one (after any 1xx);
    /// false when the plugin asked to stop.
    func vendorHeadComplete() -> Bool {
        guard vendorStatus >= 200 else {
            vendorFields = []
            return true
        }
        return deliverHead(status: vendorStatus, headers: vendorFields)
    }

    /// What a VendorConnection does with body bytes it delivered.
    enum Taken {
        /// Return them to the stream's window now.
        case consume
        /// Keep them out of the window until the call's buffer has room (`release` then).
        case hold
        /// The plugin asked to stop: reset the stream.
        case stop
    }

    /// Body bytes from an HTTP/2 stream: delivered, then held out of the window while the call's
    /// buffer is over budget, so the vendor stops after at most one window.
    func takeVendorBody(_ bytes: UnsafeRawBufferPointer) -> Taken {
        guard deliverBody(bytes) else { return .stop }
        guard holding || call.isOverBudget else { return .consume }
        heldBytes += bytes.count
        if !holding {
            holding = true
            call.whenRoom(on: loop) { [self] in releaseHeld() }
        }
        return .hold
    }

    private func releaseHeld() {
        holding = false
        let bytes = heldBytes
        heldBytes = 0
        if case .vendor(let connection, let stream?) = transport { connection.release(stream: stream, bytes: bytes) }
    }
}
