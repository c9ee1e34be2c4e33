// The first handler of every connection past TLS: decides whether the client speaks HTTP/2
// (ALPN `h2`, or the HTTP/2 client preface on plaintext) or HTTP/1.1 (ALPN `http/1.1`, or a
// request line), installs that protocol's handlers in its place and hands them the bytes read.
import NIOCore

final class ProtocolDetectorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum HTTPVersion {
        case http1
        case http2
    }

    /// RFC 9113 3.4: every HTTP/2 connection with prior knowledge starts with these bytes.
    static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let install: (Channel, HTTPVersion) throws -> [ChannelHandler]
    private let idleTimeout: TimeAmount
    private var buffered: ByteBuffer?
    private var idleTimer: Scheduled<Void>?

    /// `install` returns the handlers that serve `version`, in pipeline order. A client that
    /// says nothing for `idleTimeout` is disconnected, as an idle HTTP/2 or HTTP/1.1 one would be.
    init(idleTimeout: TimeAmount, install: @escaping (Channel, HTTPVersion) throws -> [ChannelHandler]) {
        self.idleTimeout = idleTimeout
        self.install = install
    }

    func handlerAdded(context: ChannelHandlerContext) {
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) { [channel = context.channel] in
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        // Bytes that agree with the preface so far are undecided: wait for more. An HTTP/1.1
        // request line differs at the first byte ("PRI" is no HTTP/1.1 method Prism serves).
        let view = buffered!.readableBytesView
        let compared = min(view.count, Self.http2Preface.count)
        if view.prefix(compared).elementsEqual(Self.http2Preface.prefix(compared)) {
            if compared == Self.http2Preface.count { decide(context: context, .http2) }
            return
        }
        decide(context: context, .http1)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Behind TLS, ALPN has already named the protocol; without ALPN the bytes will tell.
        if event is ServerShutdownEvent {
            // Nothing asked yet, nothing to finish: a connection still undecided just closes.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
        if let handshake = event as? TLSHandshakeCompleted {
            switch handshake.applicationProtocol {
            case "h2": decide(context: context, .http2)
            case "http/1.1": decide(context: context, .http1)
            default: break
            }
        }
    }

    private func decide(context: ChannelHandlerContext, _ version: HTTPVersion) {
        do {
            let handlers = try install(context.channel, version)
            try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
