// Logs every finished call: method, status, duration, peer (and its trace ids, when traced).
// Non-OK outcomes other than the caller's own cancellations are logged at `notice` so they show at
// the default level.
import Logging
import NIOCore

public struct LoggingInterceptor: ServerInterceptor {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func finished(_ call: CallHead, status: Status, elapsed: TimeAmount) {
        let ms = Double(elapsed.nanoseconds) / 1e6
        let level: Logger.Level = status.code == .ok || status.code == .cancelled ? .debug : .notice
        var metadata: Logger.Metadata = ["peer": "\(call.peer)", "message": "\(status.message)"]
        for (name, value) in call.logFields.all { metadata[name] = "\(value)" }
        logger.log(level: level, "\(call.path) \(status.code) \(String(format2: ms)) ms", metadata: metadata)
    }
}

extension String {
    /// Two decimals, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
