// When tracing is on (the OTEL_* variables), the log format settings and their refusals, and the
// shape of a JSON log line: its fields, its metadata, and the trace ids hoisted to the top.
import Foundation
import Logging
@testable import PrismServer
import XCTest

final class TelemetryTests: XCTestCase {
    func testTracingIsOnlyOnWhenAnEndpointOrExporterIsNamed() {
        XCTAssertFalse(TraceExport.isRequested(by: [:]))
        XCTAssertFalse(TraceExport.isRequested(by: ["OTEL_SERVICE_NAME": "prism"]))
        XCTAssertTrue(TraceExport.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"]))
        XCTAssertTrue(TraceExport.isRequested(by: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"]))
        XCTAssertTrue(TraceExport.isRequested(by: ["OTEL_TRACES_EXPORTER": "console"]))
        XCTAssertFalse(TraceExport.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]))
        XCTAssertFalse(TraceExport.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"]))
        XCTAssertFalse(TraceExport.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": " "]))
    }

    func testLogFormatFromConfigThenEnvironment() throws {
        var settings = ServerSettings()
        XCTAssertEqual(settings.logFormat, .text)
        let path = NSTemporaryDirectory() + "prism-log-\(UUID().uuidString).json"
        try #"{"log": {"format": "json"}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try settings.apply(try ConfigFile.load(path))
        XCTAssertEqual(settings.logFormat, .json)
        try settings.applyEnvironment(["PRISM_LOG_FORMAT": "text"])
        XCTAssertEqual(settings.logFormat, .text)
        XCTAssertThrowsError(try settings.applyEnvironment(["PRISM_LOG_FORMAT": "xml"])) { error in
            XCTAssertEqual("\(error)", "PRISM_LOG_FORMAT must be text or json, not 'xml'")
        }
    }

    func testJSONLineHasTheFieldsAndHoistsTraceIDs() throws {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736", span = "00f067aa0ba902b7"
        var handler = JSONLogHandler(label: "prism.test", metadataProvider: Logger.MetadataProvider {
            ["trace_id": "\(trace)", "span_id": "\(span)", "trace_flags": "1"]
        })
        handler[metadataKey: "peer"] = "127.0.0.1:5"
        let date = Date(timeIntervalSince1970: 1_765_022_400.25)
        let text = handler.line(level: .warning, message: "a \"quoted\"\nline", metadata: ["n": "\(3)", "list": ["a", "b"]], at: date)
        XCTAssertFalse(text.contains("\n"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["time"] as? String, "2025-12-06T12:00:00.250Z")
        XCTAssertEqual(object["level"] as? String, "warning")
        XCTAssertEqual(object["message"] as? String, "a \"quoted\"\nline")
        XCTAssertEqual(object["logger"] as? String, "prism.test")
        XCTAssertEqual(object["trace_id"] as? String, trace)
        XCTAssertEqual(object["span_id"] as? String, span)
        let metadata = try XCTUnwrap(object["metadata"] as? [String: Any])
        XCTAssertEqual(metadata["peer"] as? String, "127.0.0.1:5")
        XCTAssertEqual(metadata["n"] as? String, "3")
        XCTAssertEqual(metadata["list"] as? [String], ["a", "b"])
        XCTAssertNil(metadata["trace_id"])
        XCTAssertNil(metadata["trace_flags"])
    }

    func testJSONLineOutsideASpanHasNoTraceFields() throws {
        let text = JSONLogHandler(label: "prism").line(level: .info, message: "hello", metadata: nil)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["time", "level", "message", "logger"])
    }
}
