// One call as a Swift plugin sees it: emit events, finish exactly once, and learn of
// cancellation (from the host's cancel or the client's) without touching the C ABI.
import CPrismPlugin
import Foundation

/// How a call ends, by the ABI's status numbers (gRPC's).
public enum CallStatus: UInt32, Sendable {
    case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4
    case resourceExhausted = 8, failedPrecondition = 9, rateLimited = 10, unimplemented = 12
    case internalError = 13, unavailable = 14, unauthenticated = 16
}

/// Why generation stopped (prism.plugin.v1.StopReason).
public enum StopReason: Int, Sendable { case endTurn = 1, maxTokens, toolUse, sequence, refusal }

/// A failure with the detail the host uses to retry: emitted as ProviderEvent.error, then finished.
public struct CallFailure: Error, Sendable, CustomStringConvertible {
    public var status: CallStatus
    public var message: String
    public var retryable: Bool
    public var retryAfterMilliseconds: UInt64
    public var httpStatus: UInt32

    public init(_ status: CallStatus, _ message: String, retryable: Bool = false, retryAfterMilliseconds: UInt64 = 0, httpStatus: UInt32 = 0) {
        self.status = status
        self.message = message
        self.retryable = retryable
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.httpStatus = httpStatus
    }

    public var description: String { "\(status) \(message)" }
}

/// A running call. Thread-safe; events must come from one thread at a time, in order.
public final class ProviderCall: @unchecked Sendable {
    // @unchecked: `host`, `call` and `trace` never change; `finished` and `work` are guarded by `lock`.
    let host: UnsafePointer<prism_host_api>
    let call: OpaquePointer
    /// The call's W3C trace headers, added to every request it sends (CallTrace).
    let trace: [(String, String)]
    private let lock = NSLock()
    private var finished = false
    private var work = 0

    init(host: UnsafePointer<prism_host_api>, call: OpaquePointer, trace: [(String, String)]) {
        self.host = host
        self.call = call
        self.trace = trace
    }

    /// True once the client cancelled or its deadline passed: stop and `finish(.cancelled)`.
    public var isCancelled: Bool { host.pointee.is_cancelled!(call) != 0 }

    var isFinished: Bool { lock.withLock { finished } }

    /// Exchanges and blocking work started so far: `serving` checks that a step that did not
    /// finish the call started something that will.
    var workStarted: Int { lock.withLock { work } }
    func startedWork() { lock.withLock { work += 1 } }

    /// Emits a text delta. Returns false when the call was cancelled (stop work then).
    @discardableResult public func text(_ text: String) -> Bool {
        emit(capacity: text.utf8.count + 8) { $0.message(1) { $0.string(1, text) } }
    }

    /// Emits a complete tool call (arguments already joined).
    @discardableResult public func toolCall(id: String, name: String, argumentsJSON: String) -> Bool {
        emit { $0.message(2) { t in t.string(1, id); t.string(2, name); t.string(3, argumentsJSON) } }
    }

    /// Emits a chunk of generated media.
    @discardableResult public func media(mimeType: String, data: [UInt8], last: Bool) -> Bool {
        emit { $0.message(3) { m in m.string(1, mimeType); m.data(2, data); m.bool(3, last) } }
    }

    /// Emits what the call consumed; the host prices it when `costUSDMicros` is 0. Cache tokens
    /// (ABI 1.3) are input read from / written to the vendor's prompt cache, not in `input`.
    @discardableResult public func usage(input: UInt64, output: UInt64, imageTokens: UInt64 = 0, audioSeconds: Double = 0, costUSDMicros: UInt64 = 0,
                                         cacheReadTokens: UInt64 = 0, cacheWriteTokens: UInt64 = 0) -> Bool {
        emit { $0.message(4) { u in
            u.uint(1, input); u.uint(2, output); u.uint(3, imageTokens); u.double(4, audioSeconds); u.uint(5, costUSDMicros)
            u.uint(6, cacheReadTokens); u.uint(7, cacheWriteTokens)
        } }
    }

    /// Emits the end of the answer (before `finish(.ok)`).
    @discardableResult public func finished(_ reason: StopReason) -> Bool {
        emit { $0.message(5) { $0.uint(1, UInt64(reason.rawValue)) } }
    }

    /// Ends the call successfully.
    public func finishOK() { finish(.ok, nil) }

    /// Ends the call with a failure: its retry detail as an error event, then the status.
    public func fail(_ failure: CallFailure) {
        if failure.status != .cancelled {
            emit { $0.message(6) { e in
                e.string(1, failure.message); e.bool(2, failure.retryable)
                e.uint(3, failure.retryAfterMilliseconds); e.uint(4, UInt64(failure.httpStatus))
            } }
        }
        finish(failure.status, failure.message)
    }

    /// Ends the call; only the first finish counts, later ones are ignored.
    public func finish(_ status: CallStatus, _ message: String?) {
        let first = lock.withLock { () -> Bool in
            if finished { return false }
            finished = true
            return true
        }
        guard first else { return }
        if let message {
            message.withCString { host.pointee.finish!(call, prism_status(rawValue: status.rawValue), $0) }
        } else {
            host.pointee.finish!(call, prism_status(rawValue: status.rawValue), nil)
        }
    }

    /// Writes a line to the host's log for this call. Never pass secrets.
    public func log(_ level: LogLevel, _ message: String) {
        message.withCString { host.pointee.log!(host, call, prism_log_level(rawValue: level.rawValue), $0) }
    }

    /// `capacity`: the event's size when the caller knows it, so that its buffer is allocated once.
    @discardableResult func emit(capacity: Int = 64, _ build: (inout ProtoWriter) -> Void) -> Bool {
        if isFinished { return false }
        var w = ProtoWriter(capacity: capacity)
        build(&w)
        let bytes = w.bytes
        let status = bytes.withUnsafeBufferPointer { host.pointee.emit!(call, $0.baseAddress, $0.count) }
        return status.rawValue == CallStatus.ok.rawValue
    }
}

/// Log levels of prism_host_api.log.
public enum LogLevel: UInt32, Sendable { case debug = 0, info, warning, error }
