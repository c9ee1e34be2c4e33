// A thin Swift owner of one nghttp2 session (server or client side): it installs the C
// callbacks, forwards them to a delegate, and drains outgoing frames into a ByteBuffer.
// nghttp2 does framing, HPACK, flow control and SETTINGS; this file only bridges.
import CNGHTTP2
import NIOCore

/// What an `NGHTTP2Session` reports. All calls happen inside `receive`/`drain`, on the
/// connection's event loop.
package protocol NGHTTP2SessionDelegate: AnyObject {
    /// A HEADERS frame opens or continues `streamID`.
    func beginHeaders(streamID: Int32, category: nghttp2_headers_category)
    /// One header field; return false to reset the stream.
    func header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
    /// A full header block arrived (`endStream` when the peer closed its side with it).
    func headersComplete(streamID: Int32, category: nghttp2_headers_category, endStream: Bool)
    func data(streamID: Int32, bytes: UnsafeRawBufferPointer)
    /// A DATA frame with END_STREAM arrived.
    func dataEndStream(streamID: Int32)
    func streamClosed(streamID: Int32, errorCode: UInt32)
    /// nghttp2 wants up to `buffer.count` body bytes for `streamID`; see `DataRead`.
    func readData(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead
    /// A frame that ends our side of `streamID` was written.
    func sentEndStream(streamID: Int32)
    func pingAcknowledged()
    func goawayReceived(lastStreamID: Int32)
}

package final class NGHTTP2Session {
    package enum DataRead {
        case bytes(Int)
        /// `count` bytes and the end of the body; `trailers` are submitted as the final HEADERS.
        case end(count: Int, trailers: HeaderBlock?)
        case deferred
    }

    package struct Settings {
        package var maxConcurrentStreams: UInt32 = 100
        package var initialWindowSize: UInt32 = 1 << 20
        package var connectionWindowSize: Int32 = 16 << 20
        package var maxHeaderListSize: UInt32 = 16 << 10
        package var maxFrameSize: UInt32 = 1 << 14

        package init() {}
    }

    package private(set) var session: OpaquePointer!
    package unowned(unsafe) var delegate: NGHTTP2SessionDelegate

    package init(server: Bool, delegate: NGHTTP2SessionDelegate, settings: Settings) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        NGHTTP2Session.install(callbacks!)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // Flow control is ours: bytes are "consumed" when the handler takes the message.
        nghttp2_option_set_no_auto_window_update(option, 1)
        // Caps on what a misbehaving peer can make us queue (PING/SETTINGS floods, resets).
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        nghttp2_option_set_max_continuations(option, 8)
        nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)

        var session: OpaquePointer?
        let me = Unmanaged.passUnretained(self).toOpaque()
        let rc = server
            ? nghttp2_session_server_new2(&session, callbacks, me, option)
            : nghttp2_session_client_new2(&session, callbacks, me, option)
        precondition(rc == 0 && session != nil, "nghttp2 session creation failed: \(rc)")
        self.session = session

        var iv = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: settings.maxFrameSize),
        ]
        if !server { iv.removeFirst() }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize)
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Feeds received bytes; returns an nghttp2 error code (negative) if the connection must end.
    package func receive(_ buffer: ByteBuffer) -> Int {
        buffer.withUnsafeReadableBytes { bytes in
            let rc = nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
            return rc < 0 ? Int(rc) : 0
        }
    }

    /// Feeds received bytes held outside a ByteBuffer (the vendor client's TLS reads).
    package func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        let rc = nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        return rc < 0 ? Int(rc) : 0
    }

    /// Appends every frame nghttp2 has ready to `out`. Returns a negative error on failure.
    package func drain(into out: inout ByteBuffer) -> Int {
        while true {
            var pointer: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &pointer)
            if n < 0 { return Int(n) }
            if n == 0 { return 0 }
            out.writeBytes(UnsafeRawBufferPointer(start: pointer, count: n))
        }
    }

    /// The same, appending to a byte array (the vendor client, which has no ByteBuffer).
    package func drain(into out: inout [UInt8]) -> Int {
        while true {
            var pointer: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &pointer)
            if n < 0 { return Int(n) }
            if n == 0 { return 0 }
            out.append(contentsOf: UnsafeBufferPointer(start: pointer, count: n))
        }
    }

    package var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
    package var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// Returns received DATA bytes to the peer's flow-control windows.
    package func consume(streamID: Int32, bytes: Int) {
        guard bytes > 0 else { return }
        nghttp2_session_consume(session, streamID, bytes)
    }

    /// Returns received DATA bytes to the connection's window only (the stream's stays closed).
    package func consumeConnection(bytes: Int) {
        guard bytes > 0 else { return }
        nghttp2_session_consume_connection(session, bytes)
    }

    /// Returns received DATA bytes to `streamID`'s window only.
    package func consumeStream(streamID: Int32, bytes: Int) {
        guard bytes > 0 else { return }
        nghttp2_session_consume_stream(session, streamID, bytes)
    }

    /// Submits response or request headers, optionally followed by a body pulled through
    /// `readData`. Without a body, the HEADERS frame ends the stream.
    @discardableResult
    package func submitHeaders(streamID: Int32, _ headers: HeaderBlock, withBody: Bool) -> Int32 {
        withNameValues(headers) { nva, count in
            var provider = nghttp2_data_provider()
            provider.read_callback = NGHTTP2Session.readCallback
            return withUnsafeMutablePointer(to: &provider) { providerPointer in
                let body = withBody ? providerPointer : nil
                if streamID < 0 {
                    return nghttp2_submit_request(session, nil, nva, count, body, nil)
                }
                return nghttp2_submit_response(session, streamID, nva, count, body)
            }
        }
    }

    package func submitTrailers(streamID: Int32, _ trailers: HeaderBlock) {
        withNameValues(trailers) { nva, count in
            _ = nghttp2_submit_trailer(session, streamID, nva, count)
        }
    }

    package func resumeData(streamID: Int32) {
        nghttp2_session_resume_data(session, streamID)
    }

    package func resetStream(streamID: Int32, errorCode: nghttp2_error_code) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode.rawValue)
    }

    package func ping() {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// GOAWAY naming the last stream we accepted, so streams in flight can finish.
    package func goAway(errorCode: nghttp2_error_code = NGHTTP2_NO_ERROR) {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode.rawValue, nil, 0)
    }

    package func terminate(errorCode: nghttp2_error_code) {
        nghttp2_session_terminate_session(session, errorCode.rawValue)
    }

    /// True while the peer still may send on `streamID`.
    package func isRemoteOpen(streamID: Int32) -> Bool {
        nghttp2_session_get_stream_remote_close(session, streamID) == 0
    }

    package static func errorString(_ code: Int) -> String {
        String(cString: nghttp2_strerror(Int32(code)))
    }

    // MARK: - C callbacks

    private static let readCallback: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
        let me = from(userData)
        switch withDelegate(userData, { $0.readData(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buf, count: length)) }) {
        case .bytes(let n):
            return n
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .end(let n, let trailers):
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers {
                flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                me.submitTrailers(streamID: streamID, trailers)
            }
            return n
        }
    }

    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let frame = frame!.pointee
            withDelegate(userData) { $0.beginHeaders(streamID: frame.hd.stream_id, category: frame.headers.cat) }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, userData in
            let ok = withDelegate(userData) {
                $0.header(streamID: frame!.pointee.hd.stream_id,
                          name: UnsafeRawBufferPointer(start: name, count: namelen),
                          value: UnsafeRawBufferPointer(start: value, count: valuelen))
            }
            return ok ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let hd = frame!.pointee.hd
            let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            withDelegate(userData) { delegate in
                switch UInt32(hd.type) {
                case NGHTTP2_HEADERS.rawValue:
                    delegate.headersComplete(streamID: hd.stream_id, category: frame!.pointee.headers.cat, endStream: endStream)
                case NGHTTP2_DATA.rawValue:
                    if endStream { delegate.dataEndStream(streamID: hd.stream_id) }
                case NGHTTP2_PING.rawValue:
                    if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { delegate.pingAcknowledged() }
                case NGHTTP2_GOAWAY.rawValue:
                    delegate.goawayReceived(lastStreamID: frame!.pointee.goaway.last_stream_id)
                default:
                    break
                }
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, len, userData in
            withDelegate(userData) { $0.data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: len)) }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            withDelegate(userData) { $0.streamClosed(streamID: streamID, errorCode: errorCode) }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            let hd = frame!.pointee.hd
            let ends = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            if ends && (UInt32(hd.type) == NGHTTP2_HEADERS.rawValue || UInt32(hd.type) == NGHTTP2_DATA.rawValue) {
                withDelegate(userData) { $0.sentEndStream(streamID: hd.stream_id) }
            }
            return 0
        }
    }
}

/// The session a C callback belongs to (its user_data). The session outlives every
/// callback it makes, so no retain is needed to use it.
private func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
    Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
}

private func withDelegate<T>(_ userData: UnsafeMutableRawPointer?, _ body: (NGHTTP2SessionDelegate) -> T) -> T {
    Unmanaged<NGHTTP2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef { body($0.delegate) }
}

/// The header fields of one HEADERS frame: an optional pre-encoded prefix shared by every
/// call (the usual response headers, `grpc-status: 0`), then per-call fields.
package struct HeaderBlock {
    package var fixed: FixedHeaders?
    package var fields: [(String, String)]

    package init(_ fixed: FixedHeaders? = nil, _ fields: [(String, String)] = []) {
        self.fixed = fixed
        self.fields = fields
    }
}

/// Header fields encoded once for nghttp2 and kept for the life of the process, so the
/// fields every response carries cost no allocation per call.
// @unchecked: immutable after init (raw pointers, hence unprovable); nghttp2 only reads (and copies) them.
package final class FixedHeaders: @unchecked Sendable {
    let nva: UnsafeMutableBufferPointer<nghttp2_nv>
    /// The same fields as text, for HTTP/1.1 responses.
    let pairs: [(String, String)]

    init(_ pairs: [(String, String)]) {
        self.pairs = pairs
        nva = .allocate(capacity: pairs.count)
        for (i, (name, value)) in pairs.enumerated() {
            let n = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: name.utf8.count)
            _ = n.initialize(from: name.utf8)
            let v = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, value.utf8.count))
            _ = v.initialize(from: value.utf8)
            nva[i] = nghttp2_nv(name: n.baseAddress, value: v.baseAddress, namelen: name.utf8.count,
                                valuelen: value.utf8.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
    }
}

/// Calls `body` with an nghttp2_nv array for `block`. nghttp2 copies names and values
/// during submit, so the storage only has to live for the call.
private func withNameValues<T>(_ block: HeaderBlock, _ body: (UnsafePointer<nghttp2_nv>, Int) -> T) -> T {
    let fixed = block.fixed.map { UnsafeBufferPointer($0.nva) } ?? UnsafeBufferPointer(start: nil, count: 0)
    if block.fields.isEmpty, let base = fixed.baseAddress {
        return body(base, fixed.count)
    }
    var storage: [UInt8] = []
    storage.reserveCapacity(block.fields.reduce(1) { $0 + $1.0.utf8.count + $1.1.utf8.count })
    var ranges: [(Int, Int, Int, Int)] = []
    ranges.reserveCapacity(block.fields.count)
    for (name, value) in block.fields {
        let n = storage.count
        storage.append(contentsOf: name.utf8)
        let v = storage.count
        storage.append(contentsOf: value.utf8)
        ranges.append((n, v - n, v, storage.count - v))
    }
    storage.append(0)  // never empty, so the buffer always has a base address
    return storage.withUnsafeMutableBufferPointer { bytes in
        let base = bytes.baseAddress!
        var nva = Array(fixed)
        nva.reserveCapacity(fixed.count + ranges.count)
        for r in ranges {
            nva.append(nghttp2_nv(name: base + r.0, value: base + r.2, namelen: r.1, valuelen: r.3,
                                  flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
        }
        return nva.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
