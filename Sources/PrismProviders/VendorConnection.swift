// One HTTP/2 connection over TLS from a host I/O loop to a vendor's origin: many exchanges
// multiplexed as streams. Each stream has a small window of its own that the host returns only as
// the call's client takes its events, so a paused exchange holds the vendor back after at most
// `streamWindow` bytes, and a cancelled one is reset (RST_STREAM) while its siblings go on.
// nghttp2 frames and keeps the windows (NGHTTP2Session), OpenSSL runs TLS on the non-blocking
// socket, and all of it runs on the loop's thread.
import CNGHTTP2
import COpenSSL
// CCurl for sys/socket.h's SOCK_* constants: in this module's graph Swift sees them through curl's
// headers (as OriginFetcher does), not through Glibc.
import CCurl
import CPrismPlugin
import Foundation
import PrismRPC

/// Loop thread only, once made (a name lookup's answer comes back through `loop.execute`).
final class VendorConnection: LoopSocket, LoopTimed, NGHTTP2SessionDelegate, @unchecked Sendable {
    // @unchecked: every var is touched on `loop`'s thread only (above).

    /// What one stream may have in flight unread: the most a paused exchange buffers.
    static let streamWindow: UInt32 = 256 << 10
    /// The connection's window is returned as bytes arrive (only streams are held back).
    static let connectionWindow: Int32 = 16 << 20
    /// Streams per connection when the vendor has not said (SETTINGS), and the most ever used.
    static let defaultStreams = 100
    static let maxStreams = 1000
    /// An unused connection closes after this (curl's default for its own).
    static let idleNanoseconds: UInt64 = 118_000_000_000

    enum State { case resolving, connecting, handshaking, open, closed }

    let origin: VendorOrigin
    let loop: HostIOLoop
    private unowned let pool: VendorConnections
    private(set) var state = State.resolving
    private var addresses: [VendorAddress] = []
    private var fd: Int32 = -1
    private var ssl: OpaquePointer?
    private let tls: VendorTLS
    private var session: NGHTTP2Session?
    private var waiting: [HTTPExchange] = []
    private var streams: [Int32: HTTPExchange] = [:]
    /// Request body bytes already handed to nghttp2, per stream.
    private var bodySent: [Int32: Int] = [:]
    private var outgoing: [UInt8] = []
    private var outgoingSent = 0
    private var watchingWrite = false
    private var goingAway = false
    private var sessionKept = false
    /// Inside nghttp2's receive: no sending (nghttp2 forbids it from its callbacks), and
    /// on_done calls wait until it returns.
    private var receiving = false
    private var endsAfterReceive: [(HTTPExchange, prism_status, String)] = []
    private var connectDeadline: UInt64
    private var idleSince: UInt64?
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)

    init(origin: VendorOrigin, loop: HostIOLoop, pool: VendorConnections, tls: VendorTLS) {
        self.origin = origin
        self.loop = loop
        self.pool = pool
        self.tls = tls
        connectDeadline = DispatchTime.now().uptimeNanoseconds + UInt64(HTTPExchangeLimits.connectTimeoutMilliseconds) * 1_000_000
        loop.track(self)
        VendorAddress.resolve(origin) { [self] result in
            loop.execute { [self] in resolved(result) }
        }
    }

    /// Whether a new exchange may join: not ending, and under the vendor's stream limit.
    var hasRoom: Bool {
        guard state != .closed, !goingAway else { return false }
        var limit = Self.defaultStreams
        if let session {
            limit = min(Self.maxStreams, Int(nghttp2_session_get_remote_settings(session.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)))
        }
        return streams.count + waiting.count < limit
    }

    // MARK: - Exchanges (loop thread)

    func submit(_ exchange: HTTPExchange) {
        idleSince = nil
        if state == .open { open(exchange) } else {
            waiting.append(exchange)
            exchange.carried(by: self, stream: nil)
        }
    }

    private func open(_ exchange: HTTPExchange) {
        guard let session else { return }
        var fields = [(":method", exchange.method), (":scheme", "https"), (":authority", origin.authority), (":path", origin.path(of: exchange.url))]
        for (name, value) in exchange.headers {
            let name = name.lowercased()
            // Connection-specific fields are not HTTP/2's (RFC 9113 8.2.2); Host is :authority.
            if ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "expect"].contains(name) { continue }
            fields.append((name, value))
        }
        // As curl does: a body's length is said up front (proxies pass it on to HTTP/1.1 servers).
        if let body = exchange.body, !fields.contains(where: { $0.0 == "content-length" }) { fields.append(("content-length", String(body.count))) }
        let id = session.submitHeaders(streamID: -1, HeaderBlock(nil, fields), withBody: exchange.body != nil)
        guard id > 0 else {
            return end(exchange, PRISM_STATUS_UNAVAILABLE, "cannot open an HTTP/2 stream to \(origin.key): \(NGHTTP2Session.errorString(Int(id)))")
        }
        streams[id] = exchange
        exchange.carried(by: self, stream: id)
        flush()
    }

    /// The exchange ends before its answer did: its stream is reset, the connection stays.
    func cancel(_ exchange: HTTPExchange) {
        if let index = waiting.firstIndex(where: { $0 === exchange }) {
            waiting.remove(at: index)
        } else if let id = streams.first(where: { $0.value === exchange })?.key {
            streams[id] = nil
            bodySent[id] = nil
            session?.resetStream(streamID: id, errorCode: NGHTTP2_CANCEL)
            flush()
        }
        noteIdle()
    }

    /// Returns bytes an exchange held back to its stream's window (its client caught up).
    func release(stream: Int32, bytes: Int) {
        guard streams[stream] != nil else { return }
        session?.consumeStream(streamID: stream, bytes: bytes)
        flush()
    }

    private func end(_ exchange: HTTPExchange, _ status: prism_status, _ message: String) {
        if receiving { endsAfterReceive.append((exchange, status, message)) } else { exchange.ended(status: status, message: message) }
    }

    // MARK: - Deadlines

    var loopDeadline: UInt64 {
        switch state {
        case .resolving, .connecting, .handshaking: return connectDeadline
        case .open: return idleSince.map { $0 + Self.idleNanoseconds } ?? .max
        case .closed: return .max
        }
    }

    func expire() {
        switch state {
        case .resolving, .connecting, .handshaking:
            fail("could not connect to \(origin.key) within \(HTTPExchangeLimits.connectTimeoutMilliseconds / 1000) s")
        case .open:
            if let idle = idleSince, idle + Self.idleNanoseconds <= DispatchTime.now().uptimeNanoseconds { close() } else { loop.track(self) }
        case .closed:
            break
        }
    }

    private func noteIdle() {
        guard state == .open, streams.isEmpty, waiting.isEmpty, idleSince == nil else { return }
        if goingAway { return close() }
        idleSince = DispatchTime.now().uptimeNanoseconds
        loop.track(self)
    }

    // MARK: - Connecting

    private func resolved(_ result: Result<[VendorAddress], VendorAddress.Failure>) {
        guard state == .resolving else { return }
        switch result {
        case .success(let found):
            addresses = found
            connectNext(after: "no address for \(origin.host)")
        case .failure(let failure):
            fail("cannot resolve \(origin.host): \(failure.message)")
        }
    }

    private func connectNext(after failure: String) {
        guard !addresses.isEmpty else { return fail("could not connect to \(origin.key): \(failure)") }
        let address = addresses.removeFirst()
        closeSocket()
        fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return connectNext(after: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.withSockaddr { connect(fd, $0, $1) }
        guard rc == 0 || errno == EINPROGRESS else { return connectNext(after: String(cString: strerror(errno))) }
        state = .connecting
        watch(write: true)
    }

    private func connected() {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        guard error == 0 else { return connectNext(after: String(cString: strerror(error))) }
        guard let made = tls.client(fd: fd, host: origin.host, origin: origin.key) else { return fail("cannot make a TLS connection: \(TLSError.openSSL("SSL_new"))") }
        ssl = made
        state = .handshaking
        handshake()
    }

    private func handshake() {
        guard let ssl else { return }
        let rc = SSL_do_handshake(ssl)
        if rc != 1 {
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ: return watch(write: false)
            case SSL_ERROR_WANT_WRITE: return watch(write: true)
            default: return fail(tls.handshakeFailure(ssl))
            }
        }
        var protocolName: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &protocolName, &length)
        guard length == 2, let protocolName, protocolName[0] == UInt8(ascii: "h"), protocolName[1] == UInt8(ascii: "2") else {
            // The vendor speaks HTTP/1.1 only: curl carries this origin's exchanges from now on.
            let handed = waiting
            waiting = []
            state = .closed
            close()
            return pool.speaksHTTP1Only(origin, handing: handed)
        }
        var settings = NGHTTP2Session.Settings()
        settings.initialWindowSize = Self.streamWindow
        settings.connectionWindowSize = Self.connectionWindow
        session = NGHTTP2Session(server: false, delegate: self, settings: settings)
        state = .open
        watch(write: false)
        let queued = waiting
        waiting = []
        for exchange in queued { open(exchange) }
        flush()
        readIn()
        noteIdle()  // every exchange that waited for it was cancelled meanwhile
    }

    // MARK: - I/O

    func ready(readable: Bool, writable: Bool, failed: Bool) {
        switch state {
        case .connecting: connected()
        case .handshaking: handshake()
        case .open:
            if writable { writeOut() }
            if readable || failed { readIn() }
        case .resolving, .closed: break
        }
    }

    private func watch(write: Bool) {
        watchingWrite = write
        loop.watchSocket(fd, owner: self, write: write)
    }

    /// Reads what the socket holds: as many TLS records as fill the buffer go to nghttp2 at once
    /// (a vendor sends a small record per delta and stream), until OpenSSL wants more from the
    /// socket (it reads ahead, so epoll is no guide before that).
    private func readIn() {
        guard state == .open, let ssl, let session else { return }
        var drained = false
        while !drained {
            var filled = 0
            var failure: Int32?
            readBuffer.withUnsafeMutableBytes { buffer in
                while filled < buffer.count {
                    let n = SSL_read(ssl, buffer.baseAddress! + filled, Int32(buffer.count - filled))
                    if n > 0 {
                        filled += Int(n)
                        continue
                    }
                    let error = SSL_get_error(ssl, n)
                    drained = true
                    if error == SSL_ERROR_WANT_WRITE { watch(write: true) } else if error != SSL_ERROR_WANT_READ { failure = error }
                    break
                }
            }
            if filled > 0 {
                receiving = true
                let rc = readBuffer.withUnsafeBytes { session.receive(UnsafeRawBufferPointer(rebasing: $0[0..<filled])) }
                receiving = false
                let ends = endsAfterReceive
                endsAfterReceive = []
                for (exchange, status, message) in ends { exchange.ended(status: status, message: message) }
                if rc < 0 { return fail("HTTP/2 error from \(origin.key): \(NGHTTP2Session.errorString(rc))") }
                if state != .open { return }
            }
            if failure != nil {
                ERR_clear_error()
                return fail("\(origin.key) closed the connection")
            }
        }
        if !sessionKept { sessionKept = tls.keepSession(of: ssl, origin: origin.key) }
        flush()
    }

    /// Writes what nghttp2 has ready (not from inside its callbacks: after `receive` returns).
    private func flush() {
        guard !receiving, state == .open, let session else { return }
        if outgoingSent == outgoing.count {
            outgoing.removeAll(keepingCapacity: true)
            outgoingSent = 0
        }
        let rc = session.drain(into: &outgoing)
        if rc < 0 { return fail("HTTP/2 error toward \(origin.key): \(NGHTTP2Session.errorString(rc))") }
        writeOut()
        if state == .open, !session.wantsRead, !session.wantsWrite, outgoingSent == outgoing.count { close() }
    }

    private func writeOut() {
        guard let ssl else { return }
        while outgoingSent < outgoing.count {
            let n = outgoing.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + outgoingSent, Int32(min($0.count - outgoingSent, Int(Int32.max)))) }
            if n > 0 {
                outgoingSent += Int(n)
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_WRITE:
                if !watchingWrite { watch(write: true) }
                return
            case SSL_ERROR_WANT_READ:
                return
            default:
                ERR_clear_error()
                return fail("cannot write to \(origin.key): the connection broke")
            }
        }
        if watchingWrite { watch(write: false) }
    }

    // MARK: - Ending

    /// The connection cannot go on: every exchange on it or waiting for it ends UNAVAILABLE.
    private func fail(_ message: String) {
        guard state != .closed else { return }
        let ended = waiting + streams.values
        waiting = []
        streams = [:]
        close()
        for exchange in ended { end(exchange, PRISM_STATUS_UNAVAILABLE, message) }
    }

    private func close() {
        state = .closed
        loop.untrack(self)
        closeSocket()
        pool.remove(self)
    }

    private func closeSocket() {
        if let ssl {
            // close_notify (not waited for) after a handshake that succeeded: OpenSSL drops the
            // session of a connection freed without it, and the next connection's resumption.
            if session != nil {
                SSL_shutdown(ssl)
                ERR_clear_error()
            }
            SSL_free(ssl)
            self.ssl = nil
        }
        if fd >= 0 {
            loop.unwatchSocket(fd)
            closeDescriptor(fd)
            fd = -1
        }
    }

    // MARK: - nghttp2's callbacks (inside `receive` or `drain`)

    func beginHeaders(streamID: Int32, category: nghttp2_headers_category) {}

    func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard let exchange = streams[streamID] else { return true }
        exchange.vendorHeader(name: name, value: value)
        return true
    }

    func headersComplete(streamID: Int32, category: nghttp2_headers_category, endStream: Bool) {
        guard let exchange = streams[streamID] else { return }
        if !exchange.vendorHeadComplete() { return stop(streamID, exchange) }
        if endStream { finish(streamID) }
    }

    func data(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        session?.consumeConnection(bytes: bytes.count)
        guard let exchange = streams[streamID] else { return }
        switch exchange.takeVendorBody(bytes) {
        case .consume: session?.consumeStream(streamID: streamID, bytes: bytes.count)
        case .hold: break
        case .stop: stop(streamID, exchange)
        }
    }

    func dataEndStream(streamID: Int32) {
        finish(streamID)
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        bodySent[streamID] = nil
        if let exchange = streams.removeValue(forKey: streamID) {
            let name = String(cString: nghttp2_http2_strerror(errorCode))
            end(exchange, PRISM_STATUS_UNAVAILABLE, "\(origin.key) reset the HTTP/2 stream (\(name))")
        }
        noteIdle()
    }

    func readData(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        guard let body = streams[streamID]?.body else { return .end(count: 0, trailers: nil) }
        let sent = bodySent[streamID] ?? 0
        let count = min(buffer.count, body.count - sent)
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: body[sent..<(sent + count)]))
        bodySent[streamID] = sent + count
        return sent + count == body.count ? .end(count: count, trailers: nil) : .bytes(count)
    }

    func sentEndStream(streamID: Int32) {}
    func pingAcknowledged() {}

    /// The vendor is closing the connection: streams it will not process move to another one.
    func goawayReceived(lastStreamID: Int32) {
        goingAway = true
        pool.remove(self)
        let unprocessed = streams.filter { $0.key > lastStreamID }
        for (id, exchange) in unprocessed {
            streams[id] = nil
            bodySent[id] = nil
            pool.submit(exchange, to: origin)
        }
    }

    /// The answer ended whole: on_done OK.
    private func finish(_ streamID: Int32) {
        guard let exchange = streams.removeValue(forKey: streamID) else { return }
        end(exchange, PRISM_STATUS_OK, "")
    }

    /// A plugin callback asked to stop: the stream is reset, on_done CANCELLED.
    private func stop(_ streamID: Int32, _ exchange: HTTPExchange) {
        streams[streamID] = nil
        session?.resetStream(streamID: streamID, errorCode: NGHTTP2_CANCEL)
        end(exchange, PRISM_STATUS_CANCELLED, "stopped by the plugin")
    }
}

/// close(2), which VendorConnection's own `close()` hides inside the class.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
