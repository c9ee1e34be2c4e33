// The response cache as the generator sees it: answers stored under a key (a hash of the request
// as sent), each for a time. The embedded implementation is SQLite with a memory LRU in front; a
// shared one (Redis, issue 15) implements the same protocol. Values are opaque bytes: the
// generator encodes the answer it recorded, so the store knows nothing of providers.
import Foundation

/// One stored answer.
public struct CacheEntry: Sendable, Equatable {
    public var value: Data
    public var createdAt: Date
    /// Never served from this moment on.
    public var expiresAt: Date

    public init(value: Data, createdAt: Date, expiresAt: Date) {
        self.value = value
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

public protocol ResponseCache: Sendable {
    /// The entry under `key` if it has not expired (an expired one is absent, and removed).
    func lookup(_ key: Data) async throws -> CacheEntry?
    /// Stores `value` under `key` for `ttl` seconds, replacing any entry there; returns once the
    /// entry is committed (it survives a crash of the process).
    func store(_ key: Data, value: Data, ttl: TimeInterval) async throws
    /// Removes every expired entry; returns how many.
    @discardableResult
    func removeExpired() async throws -> Int
}
