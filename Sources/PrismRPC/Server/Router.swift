// The method table: which handler serves which `/package.Service/Method`, in the four gRPC
// call shapes, plus the interceptors every call passes through and the plain GET pages.
import NIOCore

/// A handler for one method, in one of gRPC's call shapes. Messages are serialized bytes;
/// typed wrappers (see PrismServer) decode and encode them.
public enum RPCHandler: Sendable {
    /// One request, one response, computed in a task.
    case unary(@Sendable (ByteBuffer, ServerCallContext) async throws -> ByteBuffer)
    /// One request, one response, computed synchronously on the connection's event loop.
    /// For cheap, non-blocking handlers only (health checks): it saves a task and two hops.
    case unaryOnEventLoop(@Sendable (ByteBuffer, ServerCallContext) throws -> ByteBuffer)
    case serverStreaming(@Sendable (ByteBuffer, ServerCallContext, ResponseWriter) async throws -> Void)
    case clientStreaming(@Sendable (RequestStream, ServerCallContext) async throws -> ByteBuffer)
    case bidirectional(@Sendable (RequestStream, ResponseWriter, ServerCallContext) async throws -> Void)

    /// The shape's name in metrics (go-grpc-prometheus's `grpc_type`).
    var callType: String {
        switch self {
        case .unary, .unaryOnEventLoop: return "unary"
        case .serverStreaming: return "server_stream"
        case .clientStreaming: return "client_stream"
        case .bidirectional: return "bidi_stream"
        }
    }

    /// One request and one response: what Connect's unary protocol can carry.
    var isUnary: Bool {
        switch self {
        case .unary, .unaryOnEventLoop: return true
        case .serverStreaming, .clientStreaming, .bidirectional: return false
        }
    }

    var isUnaryRequest: Bool {
        switch self {
        case .unary, .unaryOnEventLoop, .serverStreaming: return true
        case .clientStreaming, .bidirectional: return false
        }
    }
}

/// Runs on the event loop around every call. `accept` may refuse a call by throwing an
/// `RPCError` (auth); `finished` sees the outcome of every call whose `accept` it saw,
/// including a refusal by itself or a later interceptor (metrics, logs).
public protocol ServerInterceptor: Sendable {
    func accept(_ call: CallHead) throws
    func finished(_ call: CallHead, status: Status, elapsed: TimeAmount)
}

extension ServerInterceptor {
    public func accept(_ call: CallHead) throws {}
    public func finished(_ call: CallHead, status: Status, elapsed: TimeAmount) {}
}

/// An interceptor that also says who the caller is: instead of `accept`, `authenticate` runs,
/// and the name it returns becomes the call's `CallHead.apiKeyName` for later interceptors and
/// the handler (quotas, usage accounting).
public protocol CallAuthenticator: ServerInterceptor {
    func authenticate(_ call: CallHead) throws -> String
}

/// A gRPC service: its full name and handlers by method name.
public struct ServiceDefinition: Sendable {
    public let name: String
    public private(set) var methods: [String: RPCHandler] = [:]

    public init(name: String) {
        self.name = name
    }

    public mutating func add(_ method: String, _ handler: RPCHandler) {
        methods[method] = handler
    }
}

/// Converts a method's messages between protobuf binary and proto3 JSON, for Connect's JSON
/// codec. PrismRPC knows no message types: the server supplies this from its descriptors.
public protocol JSONCodec: Sendable {
    /// The request message of the method at `path`, from JSON. Throws an `RPCError`
    /// (INVALID_ARGUMENT naming the field) for JSON that does not fit the message.
    func request(fromJSON json: ByteBuffer, path: String) throws -> ByteBuffer
    /// A response message of the method at `path`, as JSON.
    func response(toJSON message: ByteBuffer, path: String) throws -> ByteBuffer
}

/// A plain HTTP response for a GET beside the methods: probes and metrics for operators, the
/// web console's files.
public struct HTTPPage: Sendable {
    public var status: Int
    public var contentType: String
    public var body: String
    /// More response fields (cache-control, content-security-policy), sent as given.
    public var headers: [(String, String)]
    /// The entity tag (quoted), for pages that do not change while the process runs: a GET whose
    /// `if-none-match` names it gets 304 Not Modified without the body.
    public var etag: String?

    public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", body: String,
                headers: [(String, String)] = [], etag: String? = nil) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
        self.etag = etag
    }

    /// Whether an `if-none-match` field value (a list of entity tags, or `*`) names this page's
    /// tag. Weak comparison, as RFC 9110 asks for if-none-match: `W/` prefixes are ignored.
    public func isNotModified(ifNoneMatch: String?) -> Bool {
        guard let etag, let ifNoneMatch else { return false }
        func bare(_ tag: Substring) -> Substring {
            var tag = tag
            while tag.first == " " || tag.first == "\t" { tag = tag.dropFirst() }
            while tag.last == " " || tag.last == "\t" { tag = tag.dropLast() }
            return tag.hasPrefix("W/") ? tag.dropFirst(2) : tag
        }
        let wanted = bare(Substring(etag))
        return ifNoneMatch.split(separator: ",").contains { bare($0) == "*" || bare($0) == wanted }
    }
}

/// The server's method table, fixed once the server starts.
public struct Router: Sendable {
    /// A registered method, with its names split once at registration.
    struct Route: Sendable {
        let handler: RPCHandler
        let service: String
        let method: String
    }

    private var routes: [String: Route] = [:]
    private var services: Set<String> = []
    public private(set) var interceptors: [any ServerInterceptor] = []
    /// Connect's JSON codec (`application/json`, `application/connect+json`); without it they get 415.
    public var jsonCodec: (any JSONCodec)?
    /// Pages served to GET by path (`/healthz`), rendered per request on the event loop.
    private var pages: [String: @Sendable () -> HTTPPage] = [:]

    public init() {}

    public mutating func register(_ service: ServiceDefinition) {
        services.insert(service.name)
        for (method, handler) in service.methods {
            routes["/\(service.name)/\(method)"] = Route(handler: handler, service: service.name, method: method)
        }
    }

    /// Serves `render()` to GET (and HEAD) requests for `path`, over HTTP/1.1 and HTTP/2. It runs
    /// on an event loop: it must be quick and must not block.
    public mutating func page(_ path: String, _ render: @escaping @Sendable () -> HTTPPage) {
        pages[path] = render
    }

    func page(_ path: String) -> (@Sendable () -> HTTPPage)? {
        pages[path]
    }

    public mutating func intercept(with interceptor: any ServerInterceptor) {
        interceptors.append(interceptor)
    }

    public var serviceNames: [String] { services.sorted() }

    enum Lookup {
        case found(Route)
        case unknownService(String)
        case unknownMethod(service: String, method: String)
        case malformedPath
    }

    func lookup(path: String) -> Lookup {
        if let route = routes[path] { return .found(route) }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return .malformedPath }
        let service = String(parts[1])
        if services.contains(service) { return .unknownMethod(service: service, method: String(parts[2])) }
        return .unknownService(service)
    }
}
