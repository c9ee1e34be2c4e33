// API-key authentication: callers send `authorization: Bearer <key>`; keys are compared by
// SHA-256 digest with CRYPTO_memcmp, so timing reveals neither a key's bytes nor its length.
import COpenSSL

public struct APIKeyAuthInterceptor: ServerInterceptor {
    private let digests: [[UInt8]]

    /// `keys` must not be empty: an auth interceptor with no keys would refuse everyone.
    public init(keys: [String]) {
        precondition(!keys.isEmpty, "API-key auth needs at least one key")
        digests = keys.map(Self.digest)
    }

    public func accept(_ call: CallHead) throws {
        guard let header = call.metadata["authorization"] else {
            throw RPCError(.unauthenticated, "missing API key: send 'authorization: Bearer <key>'")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw RPCError(.unauthenticated, "authorization header must be 'Bearer <key>'")
        }
        let presented = Self.digest(String(header.dropFirst(prefix.count)))
        var matched = false
        for digest in digests {
            // Check every key, so the time taken does not depend on which one matched.
            let same = presented.withUnsafeBytes { a in
                digest.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, 32) == 0 }
            }
            matched = matched || same
        }
        guard matched else { throw RPCError(.unauthenticated, "invalid API key") }
    }

    private static func digest(_ key: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(key.utf8)
        _ = SHA256(bytes, bytes.count, &out)
        return out
    }
}
