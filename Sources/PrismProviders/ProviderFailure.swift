// The one error type of the plugin host and planner: a code the service maps to a gRPC status,
// and a message that names what was missing or which limit was hit.
import Foundation

/// Why a request could not be served by any provider, or why a call failed.
public struct ProviderFailure: Error, Sendable, CustomStringConvertible, Equatable {
    /// The status classes of API.md; the service turns each into the gRPC code of the same name.
    public enum Code: String, Sendable, Equatable {
        case invalidArgument, failedPrecondition, resourceExhausted, unavailable, deadlineExceeded
        case cancelled, internalError, unimplemented, unknown
        /// The caller's API key may not use the model (auth.keys `models`).
        case permissionDenied
    }

    public var code: Code
    public var message: String
    /// The vendor's retry-after, for UNAVAILABLE; 0 = unknown.
    public var retryAfterMilliseconds: UInt64 = 0

    public init(_ code: Code, _ message: String, retryAfterMilliseconds: UInt64 = 0) {
        self.code = code
        self.message = message
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
