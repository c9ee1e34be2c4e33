// The API keys of `auth.keys` (named, with limits and a model allow-list) and of the shorthand
// `auth.api_keys` / PRISM_API_KEYS / --api-key (unnamed, no limits), checked once at start and
// held as SHA-256 digests only: a key given in clear in the config is hashed and dropped.
import Foundation
import PrismProviders
import PrismRPC

/// One entry of `auth.keys` in the config file.
public struct APIKeyConfig: Codable, Sendable {
    public var name: String
    /// The key's SHA-256, 64 hex digits (`printf %s KEY | sha256sum`): the config need not hold the key.
    public var key_sha256: String?
    /// The key itself, when the config is as secret as the key.
    public var key: String?
    public var requests_per_minute: Int?
    public var tokens_per_minute: Int?
    public var usd_per_day: Double?
    /// Globs of "provider/model" this key may use ("openai/*", "anthropic/claude-*"); absent: all.
    public var models: [String]?

    public init(name: String, key: String? = nil, key_sha256: String? = nil) {
        self.name = name
        self.key = key
        self.key_sha256 = key_sha256
    }
}

/// A key's limits; nil is unlimited. Budgets are charged from the usage answers report.
public struct KeyLimits: Sendable, Equatable {
    public var requestsPerMinute: Int64?
    /// Input plus output tokens per minute.
    public var tokensPerMinute: Int64?
    /// Cost per UTC day, in millionths of a US dollar.
    public var usdMicrosPerDay: Int64?

    public init(requestsPerMinute: Int64? = nil, tokensPerMinute: Int64? = nil, usdMicrosPerDay: Int64? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.usdMicrosPerDay = usdMicrosPerDay
    }

    public var isUnlimited: Bool { requestsPerMinute == nil && tokensPerMinute == nil && usdMicrosPerDay == nil }
}

/// A key the server accepts, as resolved from the config.
public struct APIKey: Sendable, Equatable {
    public var digest: APIKeyDigest
    public var limits: KeyLimits
    public var models: ModelAllowList
    public var name: String { digest.name }

    public var caller: Caller { Caller(keyName: name, models: models) }
}

/// Every configured key, by name (unnamed ones share the name "" and have no limits).
public struct KeyRing: Sendable {
    public let keys: [APIKey]
    private let byName: [String: APIKey]

    /// Checks `named` (names unique and plain, one key each, limits positive) and adds `unnamed`;
    /// throws SettingsError naming the entry and field that is wrong.
    public init(named: [APIKeyConfig], unnamed: [String]) throws {
        var keys: [APIKey] = []
        for (index, entry) in named.enumerated() {
            keys.append(try Self.resolve(entry, field: "auth.keys[\(index)]"))
        }
        var seen = Set<String>()
        for key in keys where !seen.insert(key.name).inserted {
            throw SettingsError("auth.keys: the name '\(key.name)' is used twice; each key needs its own")
        }
        keys += unnamed.map { APIKey(digest: APIKeyDigest(name: "", key: $0), limits: KeyLimits(), models: ModelAllowList([])) }
        var digests = Set<[UInt8]>()
        for key in keys where !digests.insert(key.digest.sha256).inserted {
            throw SettingsError("auth: one key is configured twice\(key.name.isEmpty ? "" : " (again as '\(key.name)')"); a presented key must name one entry")
        }
        self.keys = keys
        byName = Dictionary(keys.filter { !$0.name.isEmpty }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public var isEmpty: Bool { keys.isEmpty }

    /// The named key; nil for "" (an unnamed key: no limits, every model).
    public func named(_ name: String) -> APIKey? { byName[name] }

    /// Names may appear in logs, Redis keys and `prism usage`: letters, digits, `.`, `_`, `-`.
    static let maxNameLength = 64

    private static func resolve(_ entry: APIKeyConfig, field: String) throws -> APIKey {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-"))
        guard !entry.name.isEmpty, entry.name.count <= maxNameLength, entry.name.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }) else {
            throw SettingsError("\(field).name must be 1 to \(maxNameLength) letters, digits, '.', '_' or '-', not '\(entry.name)'")
        }
        let field = "auth.keys[\(entry.name)]"
        let digest: [UInt8]
        switch (entry.key, entry.key_sha256) {
        case (let key?, nil):
            guard !key.isEmpty else { throw SettingsError("\(field).key is empty") }
            digest = APIKeyDigest.digest(key)
        case (nil, let hex?):
            guard let bytes = Self.hexBytes(hex), bytes.count == 32 else {
                throw SettingsError("\(field).key_sha256 must be 64 hex digits (the SHA-256 of the key)")
            }
            digest = bytes
        case (nil, nil): throw SettingsError("\(field) needs key_sha256 (or key)")
        case (.some, .some): throw SettingsError("\(field) has both key and key_sha256; give one")
        }
        func positive(_ value: Int?, _ name: String) throws -> Int64? {
            guard let value else { return nil }
            guard value >= 1 else { throw SettingsError("\(field).\(name) must be 1 or more, not \(value)") }
            return Int64(value)
        }
        var limits = KeyLimits(requestsPerMinute: try positive(entry.requests_per_minute, "requests_per_minute"),
                               tokensPerMinute: try positive(entry.tokens_per_minute, "tokens_per_minute"))
        if let usd = entry.usd_per_day {
            guard usd > 0, usd < 1e9 else { throw SettingsError("\(field).usd_per_day must be more than 0, not \(usd)") }
            limits.usdMicrosPerDay = Int64((usd * 1e6).rounded())
        }
        let models = entry.models ?? []
        if let empty = models.firstIndex(where: \.isEmpty) { throw SettingsError("\(field).models[\(empty)] is empty") }
        return APIKey(digest: APIKeyDigest(name: entry.name, sha256: digest), limits: limits, models: ModelAllowList(models))
    }

    private static func hexBytes(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.lowercased().utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
