// gRPC status codes and the error type handlers throw to end a call with one.
// The codes and their meaning follow gRPC's doc/statuscodes.md; ../shared/API.md says when Prism uses each.

/// A gRPC status code, as carried in the `grpc-status` trailer.
public enum StatusCode: Int, Sendable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }
}

/// The outcome of a call: a code, a human-readable message, and trailing metadata.
public struct Status: Sendable, Equatable {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public static let ok = Status(.ok)

    /// The status a call ends with when its handler throws `error`: an `RPCError`'s own,
    /// CANCELLED for a cancellation, and nil for any other error (sent as a generic INTERNAL).
    /// One mapping for the runtime and for what observes calls (trace spans).
    public static func of(handlerError error: Error) -> Status? {
        switch error {
        case let rpc as RPCError: return rpc.status
        case is CancellationError: return Status(.cancelled, "the call was cancelled")
        default: return nil
        }
    }
}

/// Thrown by a handler (or raised by the runtime) to end a call with a non-OK status.
///
/// Any other error a handler throws ends the call with `INTERNAL` and a generic message, so
/// internal details never leak to clients; throw `RPCError` to say something to the caller.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var status: Status
    /// Extra trailing metadata sent with the status (for example `retry-after-ms`).
    public var trailers: Metadata

    public init(_ code: StatusCode, _ message: String, trailers: Metadata = Metadata()) {
        self.status = Status(code, message)
        self.trailers = trailers
    }

    public var code: StatusCode { status.code }
    public var message: String { status.message }
    public var description: String { "\(status.code): \(status.message)" }
}
