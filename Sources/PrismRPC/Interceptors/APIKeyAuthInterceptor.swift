// API-key authentication: callers send `authorization: Bearer <key>`; keys are compared by
// SHA-256 digest with CRYPTO_memcmp, so timing reveals neither a key's bytes nor its length.
// The matching key's name becomes the call's `apiKeyName` (quotas and usage go by it).
import COpenSSL

/// A key as the server holds it: a name and the SHA-256 of the key, never the key itself.
public struct APIKeyDigest: Sendable, Equatable {
    public let name: String
    public let sha256: [UInt8]

    /// `sha256` must be 32 bytes.
    public init(name: String, sha256: [UInt8]) {
        precondition(sha256.count == 32, "a SHA-256 digest has 32 bytes")
        self.name = name
        self.sha256 = sha256
    }

    public init(name: String, key: String) {
        self.init(name: name, sha256: Self.digest(key))
    }

    public static func digest(_ key: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(key.utf8)
        _ = SHA256(bytes, bytes.count, &out)
        return out
    }
}

public struct APIKeyAuthInterceptor: CallAuthenticator {
    private let keys: [APIKeyDigest]

    /// Unnamed keys (`auth.api_keys`, PRISM_API_KEYS): each authenticates as name "".
    public init(keys: [String]) {
        self.init(digests: keys.map { APIKeyDigest(name: "", key: $0) })
    }

    /// `digests` must not be empty: an auth interceptor with no keys would refuse everyone.
    public init(digests: [APIKeyDigest]) {
        precondition(!digests.isEmpty, "API-key auth needs at least one key")
        keys = digests
    }

    public func accept(_ call: CallHead) throws {
        _ = try authenticate(call)
    }

    public func authenticate(_ call: CallHead) throws -> String {
        guard let header = call.metadata["authorization"] else {
            throw RPCError(.unauthenticated, "missing API key: send 'authorization: Bearer <key>'")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw RPCError(.unauthenticated, "authorization header must be 'Bearer <key>'")
        }
        let presented = APIKeyDigest.digest(String(header.dropFirst(prefix.count)))
        var matched: String?
        for key in keys {
            // Check every key, so the time taken does not depend on the presented key's bytes.
            let same = presented.withUnsafeBytes { a in
                key.sha256.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, 32) == 0 }
            }
            if same { matched = key.name }
        }
        guard let matched else { throw RPCError(.unauthenticated, "invalid API key") }
        return matched
    }
}
