// prism-server: the Prism gateway daemon. Reads settings (defaults < --config file <
// environment < flags), serves gRPC until SIGTERM/SIGINT, then shuts down gracefully.
import ArgumentParser
import Dispatch
import Foundation
import Logging
import PrismServer

@main
struct PrismServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prism-server",
        abstract: "The Prism multi-modal AI gateway (gRPC over HTTP/2).")

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:50051, or PRISM_LISTEN).") var listen: String?
    @Flag(help: "Also serve grpc.testing.TestService, gRPC's interop test service.") var interop = false
    @Option(help: "PEM certificate chain; with --tls-key, serves TLS (ALPN h2).") var tlsCert: String?
    @Option(help: "PEM private key.") var tlsKey: String?
    @Option(help: "PEM CA bundle; clients must present a certificate it signed.") var tlsClientCa: String?
    @Option(help: "An accepted API key (repeatable; also PRISM_API_KEYS).") var apiKey: [String] = []
    @Option(help: "API-key auth: auto (on unless on loopback), on, off.") var auth: String?
    @Option(help: "Largest request message, in bytes.") var maxReceiveMessageBytes: Int?
    @Option(help: "Concurrent streams per connection.") var maxConcurrentStreams: Int?
    @Option(help: "Provider plugin calls running at once; each streamed answer holds one (default \(ServerSettings().pluginWorkerThreads)).") var pluginWorkerThreads: Int?
    @Option(help: "Plugin calls waiting for a worker before more are refused UNAVAILABLE (default \(ServerSettings().pluginQueuedCalls)).") var pluginQueuedCalls: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(help: "Log format: text, or json for one JSON object per line (also PRISM_LOG_FORMAT).") var logFormat: String?

    func run() async throws {
        var settings = ServerSettings()
        do {
            if let config { try settings.apply(try ConfigFile.load(config)) }
            try settings.applyEnvironment(ProcessInfo.processInfo.environment)
            if let listen { try settings.setListen(listen) }
            if interop { settings.interop = true }
            if tlsCert != nil || tlsKey != nil {
                var tls = settings.rpc.tls ?? .init()
                tls.certificateChainFile = tlsCert ?? tls.certificateChainFile
                tls.privateKeyFile = tlsKey ?? tls.privateKeyFile
                settings.rpc.tls = tls
            }
            if let tlsClientCa { settings.rpc.tls?.trustRootsFile = tlsClientCa }
            settings.apiKeys += apiKey
            if let auth { settings.authMode = auth }
            if let v = maxReceiveMessageBytes { settings.rpc.maxReceiveMessageBytes = v }
            if let v = maxConcurrentStreams { settings.rpc.maxConcurrentStreams = UInt32(v) }
            if let v = pluginWorkerThreads { try settings.setPluginWorkerThreads(v) }
            if let v = pluginQueuedCalls { try settings.setPluginQueuedCalls(v) }
            if let logFormat { settings.logFormat = try LogFormat(parsing: logFormat, source: "--log-format") }
        } catch {
            throw ValidationError("\(error)")
        }

        settings.logFormat.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "prism")
        let signals = TerminationSignals()
        // Traces (OTEL_* variables): bootstrapped before the gateway, whose services it wraps.
        let traces: TraceExport?
        do {
            traces = try TraceExport.start(environment: ProcessInfo.processInfo.environment, logger: Logger(label: "prism.otel"))
        } catch {
            logger.critical("cannot start trace export: \(error)")
            throw ExitCode(1)
        }

        let gateway: PrismGateway
        do {
            gateway = try PrismGateway(settings: settings, logger: logger)
            try await gateway.start()
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let address = gateway.server.localAddress
        let shown = "\(settings.rpc.host.contains(":") ? "[\(settings.rpc.host)]" : settings.rpc.host):\(address?.port ?? settings.rpc.port)"
        print("prism-server listening on \(shown) (\(gateway.server.isTLS ? "tls" : "h2c"))")
        if let admin = gateway.adminServer?.localAddress { print("prism-server admin pages on \(admin.ipAddress ?? "?"):\(admin.port ?? 0) (http)") }
        fflush(stdout)

        await signals.wait()
        logger.info("shutting down: draining calls in flight")
        await gateway.shutdown()
        await traces?.shutdown()
        logger.info("stopped")
    }
}

/// SIGTERM and SIGINT, caught from the moment this is created (so a signal that arrives while
/// the server starts is not lost, nor fatal) and awaited with `wait()`.
final class TerminationSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var received = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var sources: [DispatchSourceSignal] = []

    init() {
        let queue = DispatchQueue(label: "prism.signals")
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)  // the dispatch source sees it; the default action must not run
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [unowned self] in self.fire() }
            source.resume()
            sources.append(source)
        }
    }

    private func fire() {
        let waiter: CheckedContinuation<Void, Never>? = lock.withLock {
            received = true
            let w = self.waiter
            self.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Returns once SIGTERM or SIGINT has arrived (at once if one already did).
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready: Bool = lock.withLock {
                if received { return true }
                waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
