// What a handler knows about its call (method, metadata, deadline, peer) and how it adds
// response headers and trailers. Safe to use from the handler's task.
import NIOConcurrencyHelpers
import NIOCore

/// The parts of a call known before the handler runs; interceptors see this.
public struct CallHead: Sendable {
    /// `/package.Service/Method`.
    public let path: String
    public let service: String
    public let method: String
    public let metadata: Metadata
    /// The remote address as text, for logs.
    public let peer: String
    public let deadline: NIODeadline?
    /// The method's shape as go-grpc-prometheus names it: `unary`, `server_stream`,
    /// `client_stream` or `bidi_stream`.
    public var callType = "unary"
    /// The name of the API key that authenticated the call (a `CallAuthenticator` sets it before
    /// the handler runs); nil when no authenticator is installed. The key itself is never kept.
    public internal(set) var apiKeyName: String?
    /// Fields for the call's log line learnt once it runs (its trace id), shared by every copy.
    public let logFields = CallLogFields()
}

/// Name-value pairs a handler's wrapper adds for the line LoggingInterceptor writes when the call
/// ends (the trace and span ids of its span, which only exist inside the handler's task).
public final class CallLogFields: Sendable {
    private let fields = NIOLockedValueBox<[(String, String)]>([])

    init() {}

    public func set(_ name: String, _ value: String) {
        fields.withLockedValue { $0.removeAll { $0.0 == name }; $0.append((name, value)) }
    }

    public var all: [(String, String)] { fields.withLockedValue { $0 } }
}

/// Per-call state handed to handlers.
public final class ServerCallContext: Sendable {
    public let head: CallHead
    /// The event loop of the call's connection; use it for timers that belong to the call.
    public let eventLoop: EventLoop
    private let response = NIOLockedValueBox(ResponseMetadata())

    struct ResponseMetadata {
        var headers = Metadata()
        var trailers = Metadata()
        var compression: Bool?
        var encoding: MessageEncoding?
        var requestWasCompressed = false
    }

    init(head: CallHead, eventLoop: EventLoop) {
        self.head = head
        self.eventLoop = eventLoop
    }

    /// For unary-request calls: whether the request message arrived gzip-compressed.
    /// Set on the event loop before the handler starts; read-only for handlers.
    public internal(set) var requestWasCompressed: Bool {
        get { response.withLockedValue { $0.requestWasCompressed } }
        set { response.withLockedValue { $0.requestWasCompressed = newValue } }
    }

    public var metadata: Metadata { head.metadata }
    public var deadline: NIODeadline? { head.deadline }

    /// Adds a response header. Takes effect only if called before the first response message.
    public func addResponseHeader(_ name: String, _ value: String) {
        response.withLockedValue { $0.headers.add(name, value) }
    }

    public func addResponseHeader(_ name: String, binary: [UInt8]) {
        response.withLockedValue { $0.headers.add(name, binary: binary) }
    }

    /// Adds trailing metadata, sent with the status whatever the outcome.
    public func addTrailer(_ name: String, _ value: String) {
        response.withLockedValue { $0.trailers.add(name, value) }
    }

    public func addTrailer(_ name: String, binary: [UInt8]) {
        response.withLockedValue { $0.trailers.add(name, binary: binary) }
    }

    /// Asks for gzip-compressed response messages (or not), overriding the server default.
    /// Takes effect only before the first response message, and only if the client accepts gzip.
    public func setResponseCompression(_ enabled: Bool) {
        response.withLockedValue { $0.compression = enabled }
    }

    /// The encoding of response messages, decided once, at the first message or the status,
    /// so the `grpc-encoding` header and every message's flag agree.
    func responseEncoding(clientAcceptsGzip: Bool, serverDefault: Bool) -> MessageEncoding {
        response.withLockedValue { state in
            if let encoding = state.encoding { return encoding }
            let encoding: MessageEncoding = clientAcceptsGzip && (state.compression ?? serverDefault) ? .gzip : .identity
            state.encoding = encoding
            return encoding
        }
    }

    var responseHeaders: Metadata { response.withLockedValue { $0.headers } }
    var responseTrailers: Metadata { response.withLockedValue { $0.trailers } }
}
