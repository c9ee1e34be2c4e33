// Where prism-server's log lines go and in what shape: swift-log's text lines (the default) or JSON
// lines (JSONLogHandler), both on stderr and both carrying the current span's trace and span ids.
import Logging

/// How prism-server writes its log lines.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's plain lines (`2026-01-01T00:00:00+0000 info prism : … message`): the default.
    case text
    /// One JSON object per line: time, level, message, logger, metadata, trace_id, span_id.
    case json

    /// Parses a format name, naming the accepted ones when it is neither.
    public init(parsing text: String, source: String) throws {
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw SettingsError("\(source) must be \(LogFormat.allCases.map(\.rawValue).joined(separator: " or ")), not '\(text)'")
        }
        self = format
    }
}

extension LogFormat {
    /// Bootstraps swift-log for the process: every logger writes this format at `level`, with the
    /// current span's `trace_id` and `span_id` (TraceExport.logMetadata) inside a span. Call once.
    public func bootstrap(level: Logger.Level) {
        let format = self
        LoggingSystem.bootstrap({ label, metadataProvider in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label, metadataProvider: metadataProvider)
                handler.logLevel = level
                return handler
            }
        }, metadataProvider: TraceExport.logMetadata)
    }
}
