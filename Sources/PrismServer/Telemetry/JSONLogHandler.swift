// JSON-lines logs (`--log-format json`, PRISM_LOG_FORMAT=json, config `log.format`): one object per
// line on stderr, with the current span's trace_id and span_id, for log pipelines that parse JSON.
import Foundation
import Logging
import PrismJSON

/// PrismJSON's value (the config file's JSONValue of this module is another type).
private typealias JSON = PrismJSON.JSONValue

/// A swift-log handler writing one JSON object per line to stderr:
/// `{"time":"2026-12-06T12:00:00.123Z","level":"info","message":"…","logger":"prism",
/// "metadata":{…},"trace_id":"…","span_id":"…"}`. `trace_id` and `span_id` come from the metadata
/// provider (the current span's, see TraceExport) and appear only inside a span.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        JSONLogStream.shared.write(line(level: event.level, message: event.message, metadata: event.metadata, error: event.error))
    }

    /// The JSON text of one record (without the newline): the handler's metadata, then the
    /// provider's, then the call's, later ones winning on a key.
    func line(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, error: (any Error)? = nil,
              at date: Date = Date()) -> String {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        // The trace fields are top-level, as OpenTelemetry's log data model names them.
        let traceID = all.removeValue(forKey: "trace_id")
        let spanID = all.removeValue(forKey: "span_id")
        all.removeValue(forKey: "trace_flags")

        var members: [(key: String, value: JSON)] = [
            ("time", .string(Self.timestamp(date))),
            ("level", .string(level.rawValue)),
            ("message", .string(message.description)),
            ("logger", .string(label)),
        ]
        if let error { members.append(("error", .string("\(error)"))) }
        if !all.isEmpty { members.append(("metadata", Self.json(.dictionary(all)))) }
        if let traceID { members.append(("trace_id", .string("\(traceID)"))) }
        if let spanID { members.append(("span_id", .string("\(spanID)"))) }
        return JSON.object(members).jsonText
    }

    /// A metadata value as JSON: strings stay strings, lists and dictionaries nest (keys sorted).
    private static func json(_ value: Logger.MetadataValue) -> JSON {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let d): return .object(d.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }

    /// RFC 3339 in UTC with milliseconds, as log pipelines parse without configuration.
    static func timestamp(_ date: Date = Date()) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}

/// stderr, written one whole line at a time: lines from threads logging at once never interleave.
final class JSONLogStream: @unchecked Sendable {
    static let shared = JSONLogStream()
    // Guards the writes to stderr; each line is one fwrite under it.
    private let lock = NSLock()

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        lock.withLock {
            _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, stderr) }
            fflush(stderr)
        }
    }
}
