// The shared response cache: entries in Redis, so an answer stored by one replica is a hit on
// every other. Redis expires entries itself (SET … PX ttl); entries above `maxEntryBytes` are not
// stored at all (counted in `refused`), and the server's own `maxmemory` policy bounds the total.
import Foundation

public final class RedisResponseCache: ResponseCache {
    private let pool: RedisPool
    /// Bytes one stored value may have; a larger answer is skipped, not an error for the caller.
    public let maxEntryBytes: Int
    /// Prefix of every key this cache writes, so one Redis can hold other data beside it.
    public static let keyPrefix = "prism:cache:"
    private let counts = Counts()

    public init(pool: RedisPool, maxEntryBytes: Int = StoreLimits.redisCacheMaxEntryBytes) {
        self.pool = pool
        self.maxEntryBytes = maxEntryBytes
    }

    /// Answers not stored because they were over `maxEntryBytes`.
    public var refused: Int { counts.value(\.refused) }
    /// Lookups and stores that failed (Redis unreachable or erring): the generator then bypasses
    /// the cache, calling the model and logging each; this counts them for operators.
    public var failures: Int { counts.value(\.failures) }

    public func lookup(_ key: Data) async throws -> CacheEntry? {
        let reply = try await counted { try await pool.command([Data("GET".utf8), Self.redisKey(key)]) }
        switch reply {
        case .string(let stored): return Self.decode(stored)
        case .null: return nil
        case .error(let message): throw RedisError(unreachable: false, description: "GET: \(message)")
        default: return nil
        }
    }

    public func store(_ key: Data, value: Data, ttl: TimeInterval) async throws {
        guard value.count <= maxEntryBytes else {
            counts.add(\.refused)
            return
        }
        let now = Date()
        let milliseconds = max(1, Int64((ttl * 1000).rounded()))
        let stored = Self.encode(CacheEntry(value: value, createdAt: now, expiresAt: now.addingTimeInterval(ttl)))
        let reply = try await counted {
            try await pool.command([Data("SET".utf8), Self.redisKey(key), stored, Data("PX".utf8), Data(String(milliseconds).utf8)])
        }
        if case .error(let message) = reply { throw RedisError(unreachable: false, description: "SET: \(message)") }
    }

    private func counted(_ command: () async throws -> RedisReply) async throws -> RedisReply {
        do {
            let reply = try await command()
            if case .error = reply { counts.add(\.failures) }
            return reply
        } catch {
            counts.add(\.failures)
            throw error
        }
    }

    /// Redis removes expired keys itself.
    @discardableResult
    public func removeExpired() async throws -> Int { 0 }

    /// The cache key under the prefix, in hex (readable in redis-cli).
    static func redisKey(_ key: Data) -> Data {
        Data((keyPrefix + key.map { String(format: "%02x", $0) }.joined()).utf8)
    }

    // A stored value: created-at and expires-at in unix milliseconds (8 bytes each, big-endian),
    // then the answer's bytes.
    static func encode(_ entry: CacheEntry) -> Data {
        var data = Data(capacity: 16 + entry.value.count)
        for date in [entry.createdAt, entry.expiresAt] {
            withUnsafeBytes(of: Int64((date.timeIntervalSince1970 * 1000).rounded()).bigEndian) { data.append(contentsOf: $0) }
        }
        data.append(entry.value)
        return data
    }

    static func decode(_ data: Data) -> CacheEntry? {
        guard data.count >= 16 else { return nil }
        let bytes = [UInt8](data.prefix(16))
        func milliseconds(_ offset: Int) -> Date {
            let value = bytes[offset..<offset + 8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            return Date(timeIntervalSince1970: Double(value) / 1000)
        }
        let expires = milliseconds(8)
        guard expires > Date() else { return nil }
        return CacheEntry(value: Data(data.dropFirst(16)), createdAt: milliseconds(0), expiresAt: expires)
    }
}

/// Thread-safe counters of the cache; `lock` guards `counts`.
private final class Counts: @unchecked Sendable {
    struct Values {
        var refused = 0
        var failures = 0
    }

    private let lock = NSLock()
    private var counts = Values()

    func value(_ path: KeyPath<Values, Int>) -> Int { lock.withLock { counts[keyPath: path] } }
    func add(_ path: WritableKeyPath<Values, Int>) { lock.withLock { counts[keyPath: path] += 1 } }
}
