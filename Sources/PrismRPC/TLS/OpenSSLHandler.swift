// A NIO channel handler that runs TLS with OpenSSL over memory BIOs: ciphertext from the
// socket goes into one BIO, plaintext comes out of SSL_read; plaintext written goes through
// SSL_write and the ciphertext is drained from the other BIO to the socket.
import COpenSSL
import NIOCore

/// Fired inbound once the handshake is done, with the negotiated ALPN protocol (if any).
public struct TLSHandshakeCompleted: Sendable {
    public let applicationProtocol: String?
}

final class OpenSSLHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: TLSContext
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private var handshakeDone = false
    private var failed = false
    /// Plaintext written before the handshake finished.
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var scratch = [UInt8](repeating: 0, count: 16 << 10)

    init(context tls: TLSContext, serverHostname: String? = nil) throws {
        self.tls = tls
        guard let ssl = SSL_new(tls.context),
              let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            throw TLSError.openSSL("SSL_new")
        }
        self.ssl = ssl
        readBIO = rbio
        writeBIO = wbio
        SSL_set_bio(ssl, rbio, wbio)  // the SSL now owns both BIOs
        if tls.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let host = serverHostname {
                _ = host.withCString { name in  // SNI; OpenSSL copies the name
                    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
                }
                let param = SSL_get0_param(ssl)
                if X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 {
                    SSL_set1_host(ssl, host)
                }
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !tls.isServer { advanceHandshake(context: context) }
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !tls.isServer && context.channel.isActive { advanceHandshake(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            _ = BIO_write(readBIO, bytes.baseAddress, Int32(bytes.count))
        }
        if !handshakeDone { advanceHandshake(context: context) }
        if handshakeDone { readPlaintext(context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        guard handshakeDone else {
            pendingWrites.append((buffer, promise))
            return
        }
        encrypt(buffer, context: context, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        if handshakeDone { context.flush() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if handshakeDone && !failed {
            SSL_shutdown(ssl)  // queue close_notify; best effort
            drainCiphertext(context: context, promise: nil)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: - Internals

    private func advanceHandshake(context: ChannelHandlerContext) {
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            handshakeDone = true
            drainCiphertext(context: context, promise: nil)
            context.flush()
            var data: UnsafePointer<UInt8>?
            var length: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &data, &length)
            let alpn = data.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self) }
            context.fireUserInboundEventTriggered(TLSHandshakeCompleted(applicationProtocol: alpn))
            let writes = pendingWrites
            pendingWrites = []
            for (buffer, promise) in writes { encrypt(buffer, context: context, promise: promise) }
            if !writes.isEmpty { context.flush() }
            return
        }
        let error = SSL_get_error(ssl, rc)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE {
            drainCiphertext(context: context, promise: nil)
            context.flush()
            return
        }
        fail(context: context, TLSError.openSSL("TLS handshake failed"))
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        var plaintext: ByteBuffer?
        while true {
            let n = scratch.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                if plaintext == nil { plaintext = context.channel.allocator.buffer(capacity: Int(n)) }
                _ = scratch.withUnsafeBytes { plaintext!.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(n)])) }
                continue
            }
            let error = SSL_get_error(ssl, n)
            if let plaintext { context.fireChannelRead(wrapInboundOut(plaintext)) }
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                drainCiphertext(context: context, promise: nil)  // e.g. TLS 1.3 key updates
                context.flush()
            case SSL_ERROR_ZERO_RETURN:
                context.close(promise: nil)
            default:
                fail(context: context, TLSError.openSSL("TLS read failed"))
            }
            return
        }
    }

    private func encrypt(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let ok = buffer.withUnsafeReadableBytes { bytes -> Bool in
            guard bytes.count > 0 else { return true }
            // Memory BIOs grow as needed, so SSL_write takes the whole buffer at once.
            return SSL_write(ssl, bytes.baseAddress, Int32(bytes.count)) == Int32(bytes.count)
        }
        guard ok else {
            promise?.fail(TLSError.openSSL("TLS write failed"))
            fail(context: context, TLSError.openSSL("TLS write failed"))
            return
        }
        drainCiphertext(context: context, promise: promise)
    }

    private func drainCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else {
            promise?.succeed(())
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { bytes in
            Int(BIO_read(writeBIO, bytes.baseAddress, Int32(pending)))
        }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        guard !failed else { return }
        failed = true
        drainCiphertext(context: context, promise: nil)  // deliver the alert, if any
        context.flush()
        for (_, promise) in pendingWrites { promise?.fail(error) }
        pendingWrites = []
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
