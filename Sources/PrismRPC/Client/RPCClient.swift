// A gRPC client over one HTTP/2 connection (h2c or TLS), used by the `prism` CLI and tests.
// Calls are multiplexed on the connection; each is a `ClientCall`.
import NIOCore
import NIOPosix

public final class RPCClient: Sendable {
    private let channel: Channel
    /// Only on `eventLoop`: the bound checks it.
    private let connection: NIOLoopBound<HTTP2ClientConnection>
    private let eventLoop: EventLoop
    private let authority: String
    private let ownedGroup: MultiThreadedEventLoopGroup?
    /// Largest response message accepted.
    public let maxResponseBytes: Int

    /// Connects to `host:port`; with `tls`, negotiates TLS and ALPN h2 first.
    public static func connect(host: String, port: Int, tls: TLSConfiguration? = nil,
                               maxResponseBytes: Int = 64 << 20) async throws -> RPCClient {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tlsContext = try tls.map { try TLSContext($0, server: false) }
        let loop = group.next()
        do {
            let connection = try await loop.submit { NIOLoopBound(HTTP2ClientConnection(eventLoop: loop), eventLoop: loop) }.get()
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    do {
                        let sync = channel.pipeline.syncOperations
                        if let tlsContext {
                            try sync.addHandler(try OpenSSLHandler(context: tlsContext, serverHostname: tls?.serverHostname ?? host))
                        }
                        try sync.addHandler(connection.value)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                .connect(host: host, port: port).get()
            return RPCClient(channel: channel, connection: connection, eventLoop: loop, authority: "\(host):\(port)",
                             group: group, maxResponseBytes: maxResponseBytes)
        } catch {
            try? await group.shutdownGracefully()
            throw RPCError(.unavailable, "cannot connect to \(host):\(port): \(error)")
        }
    }

    private init(channel: Channel, connection: NIOLoopBound<HTTP2ClientConnection>, eventLoop: EventLoop, authority: String,
                 group: MultiThreadedEventLoopGroup, maxResponseBytes: Int) {
        self.channel = channel
        self.connection = connection
        self.eventLoop = eventLoop
        self.authority = authority
        self.ownedGroup = group
        self.maxResponseBytes = maxResponseBytes
    }

    /// Starts a call of any shape; send with `send`, half-close with `end`, read `responses`.
    public func makeCall(_ path: String, metadata: Metadata = Metadata(), timeout: TimeAmount? = nil) -> ClientCall {
        let call = ClientCall(path: path, connection: connection, eventLoop: eventLoop, maxMessageBytes: maxResponseBytes)
        eventLoop.execute {
            self.connection.value.start(call, authority: self.authority, metadata: metadata, timeout: timeout)
        }
        return call
    }

    /// One request, one response.
    public func unary(_ path: String, _ request: ByteBuffer, metadata: Metadata = Metadata(),
                      timeout: TimeAmount? = nil) async throws -> ByteBuffer {
        let call = makeCall(path, metadata: metadata, timeout: timeout)
        try await call.send(request)
        call.end()
        var response: ByteBuffer?
        for try await message in call.responses { response = message }
        guard let response else { throw RPCError(.internal, "unary call ended without a response message") }
        return response
    }

    /// One request, a stream of responses.
    public func serverStreaming(_ path: String, _ request: ByteBuffer, metadata: Metadata = Metadata(),
                                timeout: TimeAmount? = nil) async throws -> ClientCall {
        let call = makeCall(path, metadata: metadata, timeout: timeout)
        try await call.send(request)
        call.end()
        return call
    }

    public func close() async {
        try? await channel.close()
        try? await ownedGroup?.shutdownGracefully()
    }
}
