// Media.uri: the gateway fetches media given by reference once per request, before planning, so
// every RPC that takes Parts (through Generator.generate) sees bytes like an upload. http(s) runs
// on the host's I/O loops (OriginFetcher) behind the SSRF guard; data: URIs are decoded; other schemes are refused.
import Foundation
import PrismMedia

/// How media is fetched: the config's `media.fetch` (allow_hosts, max_bytes, timeout_seconds),
/// and the CAs trusted for https, from SSL_CERT_FILE / SSL_CERT_DIR as the vendor plugins read
/// them (each replaces only its own default of libcurl's; verification is always on).
public struct MediaFetchPolicy: Sendable {
    public var allowList = FetchAllowList()
    public private(set) var maxBytes = MediaFetchLimits.maxBytes
    public private(set) var timeoutSeconds = MediaFetchLimits.timeoutSeconds
    public var caFile: String?
    public var caDirectory: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        caFile = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        caDirectory = environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sets the per-URI byte limit; throws naming the setting when out of range.
    public mutating func setMaxBytes(_ value: Int) throws {
        guard (1...MediaFetchLimits.maxBytesCeiling).contains(value) else {
            throw SettingsProblem("media.fetch.max_bytes must be between 1 and \(MediaFetchLimits.maxBytesCeiling), not \(value)")
        }
        maxBytes = value
    }

    /// Sets the time one fetch may take; throws naming the setting when out of range.
    public mutating func setTimeoutSeconds(_ value: Int) throws {
        guard (1...MediaFetchLimits.timeoutCeilingSeconds).contains(value) else {
            throw SettingsProblem("media.fetch.timeout_seconds must be between 1 and \(MediaFetchLimits.timeoutCeilingSeconds), not \(value)")
        }
        timeoutSeconds = value
    }
}

/// Fetches the media of requests that name it by URI. One per Generator; thread-safe.
public final class MediaFetcher: Sendable {
    public let policy: MediaFetchPolicy
    private let origins: OriginFetcher

    public init(policy: MediaFetchPolicy = MediaFetchPolicy()) {
        self.policy = policy
        origins = OriginFetcher(policy: policy)
    }

    /// `request` with every Media that has a uri and no data (in messages and in tool results)
    /// filled in, each distinct URI fetched once, at most `concurrentFetchesPerRequest` at a time;
    /// and one line per URI for `routed.adaptations` (`uri 'https://…/cat.png'→image/png 120 KB`).
    /// Throws a ProviderFailure whose message names the field, the URI and the reason; the first
    /// failure cancels the other fetches. Returns `request` itself when it names no URI.
    public func resolve(_ request: GenerationRequest) async throws -> (request: GenerationRequest, report: [String]) {
        var wanted: [(uri: String, field: String)] = []
        // `list` is the field holding `parts`: "messages[0].parts", "….tool_result.content".
        func collect(_ parts: [ContentPart], _ list: String) {
            for (index, part) in parts.enumerated() {
                switch part {
                case .media(let media) where media.data.isEmpty && !media.uri.isEmpty:
                    if !wanted.contains(where: { $0.uri == media.uri }) { wanted.append((media.uri, "\(list)[\(index)].media.uri")) }
                case .toolResult(_, let content, _):
                    collect(content, "\(list)[\(index)].tool_result.content")
                default:
                    break
                }
            }
        }
        for (index, message) in request.messages.enumerated() { collect(message.parts, "messages[\(index)].parts") }
        guard !wanted.isEmpty else { return (request, []) }

        let budget = FetchBudget(total: policy.maxBytes * MediaFetchLimits.requestBytesFactor)
        var fetched: [String: FetchedBody] = [:]
        try await withThrowingTaskGroup(of: (String, FetchedBody).self) { group in
            var next = 0
            while next < wanted.count || !group.isEmpty {
                while next < wanted.count && next - fetched.count < MediaFetchLimits.concurrentFetchesPerRequest {
                    let (uri, field) = wanted[next]
                    next += 1
                    group.addTask { (uri, try await self.fetch(uri, field: field, deadline: request.deadline, budget: budget)) }
                }
                if let (uri, body) = try await group.next() { fetched[uri] = body }
            }
        }

        func filled(_ parts: [ContentPart]) -> [ContentPart] {
            parts.map { part in
                switch part {
                case .media(var media) where media.data.isEmpty && !media.uri.isEmpty:
                    guard let body = fetched[media.uri] else { return part }
                    media.data = body.data
                    if media.mimeType.isEmpty { media.mimeType = body.declaredType }
                    if media.name.isEmpty, !media.uri.hasPrefix("data:") { media.name = Self.fileName(body.finalURL) }
                    return .media(media)
                case let .toolResult(id, content, isError):
                    return .toolResult(toolCallID: id, content: filled(content), isError: isError)
                default:
                    return part
                }
            }
        }
        var resolved = request
        for index in resolved.messages.indices { resolved.messages[index].parts = filled(resolved.messages[index].parts) }
        let report = wanted.map { item -> String in
            let body = fetched[item.uri]!
            let format = MediaSniffer.sniff(body.data)
            let type = format == .unknown ? (body.declaredType.isEmpty ? "unknown type" : body.declaredType) : format.mimeType
            let hops = body.redirects == 0 ? "" : " after \(body.redirects) redirect\(body.redirects == 1 ? "" : "s")"
            let what = item.uri.hasPrefix("data:") ? "data uri" : "uri '\(Self.quoted(item.uri))'"
            return "\(what)→\(type) \(Self.size(body.data.count))\(hops)"
        }
        return (resolved, report)
    }

    /// One URI's bytes; errors are prefixed with the field and the URI.
    private func fetch(_ uri: String, field: String, deadline: Date?, budget: FetchBudget) async throws -> FetchedBody {
        do {
            let scheme = uri.firstIndex(of: ":").map { uri[..<$0].lowercased() }
            switch scheme {
            case "data"?:
                let decoded = try await offload { try DataURI.decode(uri, maxBytes: self.policy.maxBytes) }
                return FetchedBody(data: decoded.data, declaredType: decoded.mimeType, finalURL: uri, redirects: 0)
            case "http"?, "https"?:
                let timeout = Date(timeIntervalSinceNow: Double(policy.timeoutSeconds))
                let end = min(timeout, deadline ?? timeout)
                return try await origins.fetch(uri, end: end, endIsDeadline: end < timeout, budget: budget)
            case let other?:
                throw ProviderFailure(.invalidArgument, "the scheme '\(other)' is not fetched; use https, http or data")
            case nil:
                throw ProviderFailure(.invalidArgument, "is not an absolute URI (https://…, http://… or data:…)")
            }
        } catch let failure as ProviderFailure {
            throw ProviderFailure(failure.code, "\(field) '\(Self.quoted(uri))': \(failure.message)")
        }
    }

    /// A URI as error messages and reports quote it: cut short (a data: URI may be megabytes).
    static func quoted(_ uri: String) -> String {
        uri.count <= MediaFetchLimits.quotedURICharacters ? uri : uri.prefix(MediaFetchLimits.quotedURICharacters) + "…"
    }

    /// The last path segment of a URL ("cat.png"), the medium's name when the client gave none.
    static func fileName(_ url: String) -> String {
        guard let path = URL(string: url)?.path, path.count > 1 else { return "" }
        return (path as NSString).lastPathComponent
    }

    /// Bytes as "812 B", "120 KB", "3.4 MB".
    static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return "\((bytes + 512) / 1024) KB" }
        return String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }
}
