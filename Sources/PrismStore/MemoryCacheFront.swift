// A memory LRU in front of any ResponseCache: hits on recent answers cost no store read. Bounded
// in bytes (cache.max_bytes); entries keep their expiry, so the memory never serves past the TTL.
// Writes go through to the store, which stays the truth after a restart.
import Foundation

/// Safe: `lock` guards the LRU (`entries`, `bytes`, `clock`); `backing` is Sendable and `maxBytes` immutable.
public final class MemoryCacheFront: ResponseCache, @unchecked Sendable {
    private let backing: any ResponseCache
    public let maxBytes: Int
    private let lock = NSLock()
    // All below is guarded by `lock`. Recency is a counter per entry; eviction scans for the
    // smallest, which is fine for the few thousand answers a memory budget holds.
    private var entries: [Data: (entry: CacheEntry, used: UInt64)] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0

    public init(backing: any ResponseCache, maxBytes: Int) {
        self.backing = backing
        self.maxBytes = maxBytes
    }

    public func lookup(_ key: Data) async throws -> CacheEntry? {
        let now = Date()
        let cached: CacheEntry? = lock.withLock {
            guard let found = entries[key] else { return nil }
            guard found.entry.expiresAt > now else {
                drop(key)
                return nil
            }
            clock += 1
            entries[key]?.used = clock
            return found.entry
        }
        if let cached { return cached }
        guard let stored = try await backing.lookup(key) else { return nil }
        remember(key, stored)
        return stored
    }

    public func store(_ key: Data, value: Data, ttl: TimeInterval) async throws {
        try await backing.store(key, value: value, ttl: ttl)
        let now = Date()
        remember(key, CacheEntry(value: value, createdAt: now, expiresAt: now.addingTimeInterval(ttl)))
    }

    @discardableResult
    public func removeExpired() async throws -> Int {
        let now = Date()
        lock.withLock {
            for (key, found) in entries where found.entry.expiresAt <= now { drop(key) }
        }
        return try await backing.removeExpired()
    }

    /// Answers held in memory, and their bytes.
    public var memoryUsage: (entries: Int, bytes: Int) { lock.withLock { (entries.count, bytes) } }

    private func remember(_ key: Data, _ entry: CacheEntry) {
        let size = Self.size(key, entry)
        guard size <= maxBytes else { return }
        lock.withLock {
            drop(key)
            while bytes + size > maxBytes, let oldest = entries.min(by: { $0.value.used < $1.value.used })?.key {
                drop(oldest)
            }
            clock += 1
            entries[key] = (entry, clock)
            bytes += size
        }
    }

    /// Call with `lock` held.
    private func drop(_ key: Data) {
        if let old = entries.removeValue(forKey: key) { bytes -= Self.size(key, old.entry) }
    }

    private static func size(_ key: Data, _ entry: CacheEntry) -> Int {
        key.count + entry.value.count + StoreLimits.cacheEntryOverheadBytes
    }
}
