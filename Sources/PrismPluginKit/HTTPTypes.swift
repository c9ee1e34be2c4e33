// The HTTP vocabulary of a Swift plugin: the request it builds, the response head it reads, the
// ways an exchange can fail, and the kit's bounds. The exchanges themselves run in the host
// (prism_host_api.http_start, ABI 2.0): see HostHTTP.swift.
import Foundation

/// Bounds a plugin keeps, each with its reason.
public enum HTTPLimits {
    /// A call with no deadline still ends: a streamed answer of 10 minutes is already extreme.
    public static let defaultTimeoutMilliseconds: UInt64 = 600_000
    /// Bytes of an error body read; vendors' error bodies are a few hundred bytes.
    public static let maxErrorBodyBytes = 64 * 1024
}

/// An HTTP request to make.
public struct HTTPRequest: Sendable {
    public var url: String
    public var method = "POST"
    /// Header lines as (name, value). Values may hold secrets: they are never logged.
    public var headers: [(String, String)] = []
    public var body = Data()
    public var deadline: Date?

    public init(url: String) { self.url = url }

    /// The timeout the host gets: what is left until `deadline`, at least 1 ms once it has passed
    /// (so the exchange ends as timed out rather than never starting), or the default.
    var timeoutMilliseconds: UInt64 {
        guard let deadline else { return HTTPLimits.defaultTimeoutMilliseconds }
        let left = deadline.timeIntervalSinceNow * 1000
        return left <= 1 ? 1 : min(UInt64(left.rounded(.up)), HTTPLimits.defaultTimeoutMilliseconds)
    }
}

/// The status line and headers (names lower-cased) of a response.
public struct HTTPResponseHead: Sendable {
    public var status: Int
    public var headers: [String: String]

    public init(status: Int, headers: [String: String]) {
        self.status = status
        self.headers = headers
    }
}

/// Why an exchange did not complete.
public enum HTTPTransferError: Error, Sendable, CustomStringConvertible {
    case cancelled
    case timedOut
    /// The body handler asked to stop.
    case stopped
    /// Connection refused, reset, cut mid-body, TLS failure: the host's message.
    case transport(String)

    public var description: String {
        switch self {
        case .cancelled: return "cancelled"
        case .timedOut: return "timed out"
        case .stopped: return "stopped by the reader"
        case .transport(let message): return message
        }
    }
}
