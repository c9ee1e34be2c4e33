// OpenTelemetry traces out of prism-server: swift-otel's tracer and OTLP/HTTP exporter, configured
// by the standard OTEL_* variables, and off (no tracer, no exporter, next to no cost) unless asked.
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// The process's trace exporter, from bootstrap to the last flush at shutdown.
public final class TraceExport: Sendable {
    private let group: ServiceGroup
    private let running: Task<Void, Never>

    private init(group: ServiceGroup, running: Task<Void, Never>) {
        self.group = group
        self.running = running
    }

    /// Whether `environment` asks for traces: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an exporter named in `OTEL_TRACES_EXPORTER`
    /// (`otlp`, `console`), unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    /// OpenTelemetry's SDKs export to localhost:4318 by default; a gateway sending spans nowhere
    /// by default would only log export failures, so here no endpoint means no tracing.
    public static func isRequested(by environment: [String: String]) -> Bool {
        func value(_ name: String) -> String { (environment[name] ?? "").trimmingCharacters(in: .whitespaces).lowercased() }
        if value("OTEL_SDK_DISABLED") == "true" { return false }
        let exporter = value("OTEL_TRACES_EXPORTER")
        if exporter == "none" { return false }
        return !exporter.isEmpty || !value("OTEL_EXPORTER_OTLP_ENDPOINT").isEmpty || !value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").isEmpty
    }

    /// Bootstraps the process's tracer and starts exporting, when `environment` asks for traces
    /// (see `isRequested`); nil otherwise. Call once, before the gateway is built. Every other
    /// OTEL_* variable swift-otel reads applies (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, ...);
    /// swift-otel's own diagnostics go to `logger`. Throws for settings swift-otel refuses.
    public static func start(environment: [String: String], logger: Logger) throws -> TraceExport? {
        guard isRequested(by: environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "prism-server"
        configuration.diagnosticLogger = .custom(logger)
        // Its info lines repeat every OTEL_* value it read (OTEL_EXPORTER_OTLP_HEADERS may hold a
        // collector's token): warnings and errors only, unless OTEL_LOG_LEVEL asks for more.
        configuration.diagnosticLogLevel = .warning
        // Traces only: logs stay on stderr, and metrics are Prometheus's (/metrics).
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        let group = ServiceGroup(services: [backend.service], logger: logger)
        let running = Task {
            do { try await group.run() } catch { logger.error("trace export stopped: \(error)") }
        }
        return TraceExport(group: group, running: running)
    }

    /// Whether a tracer was bootstrapped in this process (RPC spans are added only then).
    static var isBootstrapped: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }

    /// The trace_id and span_id of the current span, for log lines (JSONLogHandler).
    public static let logMetadata: Logger.MetadataProvider = OTel.makeLoggingMetadataProvider()

    /// Exports the spans still buffered, then stops; call once the server has drained.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
        await running.value
    }
}
