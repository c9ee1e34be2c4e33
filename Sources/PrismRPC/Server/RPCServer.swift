// The gRPC server: binds a socket on NIO event loops (one per core), builds each
// connection's pipeline (TLS if configured, then HTTP/2 or HTTP/1.1 as the client speaks it,
// both serving the same method table), enforces the connection
// limit, and shuts down gracefully (GOAWAY, let calls finish, then close, and let the cancelled
// handlers end before the event loops they run on stop).
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

public final class RPCServer: Sendable {
    public let configuration: ServerConfiguration
    private let router: Router
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let tlsContext: TLSContext?
    private let state = NIOLockedValueBox(State())
    private let handlerTasks = HandlerTasks()
    /// ALPN on TLS, preferred first: gRPC clients offer h2; browsers and curl may offer http/1.1.
    static let applicationProtocols = ["h2", "http/1.1"]
    /// How long shutdown waits for handlers cancelled by the close to end (a plugin call that
    /// ignores cancellation is abandoned by the plugin host well before this).
    static let handlerDrainSeconds = 2.0

    private struct State {
        var listener: Channel?
        var connections: [ObjectIdentifier: Channel] = [:]
        var shuttingDown = false
    }

    public init(configuration: ServerConfiguration, router: Router, logger: Logger = Logger(label: "prism.rpc")) throws {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.tlsContext = try configuration.tls.map { tls in
            var tls = tls
            tls.applicationProtocols = Self.applicationProtocols
            return try TLSContext(tls, server: true)
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
    }

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress? {
        state.withLockedValue { $0.listener?.localAddress }
    }

    public var isTLS: Bool { tlsContext != nil }

    public func start() async throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                self.initialize(channel)
            }
        let listener = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        state.withLockedValue { $0.listener = listener }
    }

    private func initialize(_ channel: Channel) -> EventLoopFuture<Void> {
        let admitted: Bool = state.withLockedValue { state in
            guard !state.shuttingDown, state.connections.count < configuration.maxConnections else { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
        guard admitted else {
            logger.warning("refusing connection from \(channel.remoteAddress?.description ?? "?"): connection limit \(configuration.maxConnections) reached or shutting down")
            return channel.close()
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        do {
            let sync = channel.pipeline.syncOperations
            if let tlsContext {
                try sync.addHandler(try OpenSSLHandler(context: tlsContext))
            }
            try sync.addHandler(Self.protocolDetector(router: router, configuration: configuration, logger: logger,
                                                      handlerTasks: handlerTasks))
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            logger.error("cannot set up connection: \(error)")
            return channel.close()
        }
    }

    /// The first handler of a connection past TLS: it installs the HTTP/2 or the HTTP/1.1
    /// handlers as the client speaks. The fuzz targets build their connections with it too.
    static func protocolDetector(router: Router, configuration: ServerConfiguration, logger: Logger,
                                 handlerTasks: HandlerTasks) -> ProtocolDetectorHandler {
        ProtocolDetectorHandler(idleTimeout: configuration.idleTimeout) { _, version in
            switch version {
            case .http2:
                return [HTTP2ServerConnection(router: router, configuration: configuration, logger: logger, handlerTasks: handlerTasks)]
            case .http1:
                return http1Handlers(router: router, configuration: configuration, logger: logger, handlerTasks: handlerTasks)
            }
        }
    }

    /// The HTTP/1.1 pipeline: NIO's parser (header block bounded like HTTP/2's), its encoder,
    /// one request at a time, an idle timer, then the connection that dispatches the requests.
    private static func http1Handlers(router: Router, configuration: ServerConfiguration, logger: Logger,
                                      handlerTasks: HandlerTasks) -> [ChannelHandler] {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = configuration.maxHeaderListBytes
        limits.maxHeaderFieldSize = configuration.maxHeaderListBytes
        return [
            HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)),
            HTTPServerPipelineHandler(),
            IdleStateHandler(allTimeout: configuration.idleTimeout),
            HTTP1ServerConnection(router: router, configuration: configuration, logger: logger, handlerTasks: handlerTasks),
        ]
    }

    /// Stops accepting, sends GOAWAY on every connection, waits up to the grace period for
    /// calls in flight, then closes whatever is left and stops the event loops.
    public func shutdown() async {
        let (listener, connections): (Channel?, [Channel]) = state.withLockedValue { state in
            state.shuttingDown = true
            return (state.listener, Array(state.connections.values))
        }
        try? await listener?.close()
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent())
        }
        let deadline = NIODeadline.now() + configuration.shutdownGracePeriod
        while NIODeadline.now() < deadline {
            if state.withLockedValue({ $0.connections.isEmpty }) { break }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        let remaining = state.withLockedValue { Array($0.connections.values) }
        if !remaining.isEmpty {
            logger.warning("grace period over: closing \(remaining.count) connection(s) with calls in flight")
        }
        for channel in remaining { try? await channel.close() }
        // Closing cancelled the handlers still running; they end on the event loops (Generate's
        // relay runs there), so the loops stay up until they have, or the drain time is over.
        let drainEnd = NIODeadline.now() + .milliseconds(Int64(Self.handlerDrainSeconds * 1000))
        while handlerTasks.running > 0 && NIODeadline.now() < drainEnd {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        if handlerTasks.running > 0 {
            logger.warning("\(handlerTasks.running) call handler(s) still running \(Self.handlerDrainSeconds) s after their connections closed; stopping anyway")
        }
        try? await group.shutdownGracefully()
    }
}

/// The call handlers (Swift tasks) running across all connections of a server.
final class HandlerTasks: Sendable {
    private let count = NIOLockedValueBox(0)

    var running: Int { count.withLockedValue { $0 } }

    /// Starts `body` as a task counted until it returns.
    func start(_ body: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        count.withLockedValue { $0 += 1 }
        return Task {
            await body()
            self.count.withLockedValue { $0 -= 1 }
        }
    }
}
