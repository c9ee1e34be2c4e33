// The embedded response cache: the `response_cache` table of the EmbeddedStore. Entries are
// removed when found expired, by removeExpired (the gateway's periodic sweep), and oldest first
// when the table's bytes (kept by triggers in response_cache_size) would pass `maxDiskBytes`.
import Foundation

public final class SQLiteResponseCache: ResponseCache {
    private let store: EmbeddedStore
    /// Bound on the bytes the entries count (their answers plus a fixed overhead each).
    public let maxDiskBytes: Int

    public init(store: EmbeddedStore, maxDiskBytes: Int) {
        self.store = store
        self.maxDiskBytes = maxDiskBytes
    }

    public func lookup(_ key: Data) async throws -> CacheEntry? {
        let now = Self.milliseconds(Date())
        let row = try await store.read { db in
            try db.query("SELECT answer, created_at, expires_at FROM response_cache WHERE key = ?1", [.blob(key)]).first
        }
        guard let row, let answer = row[0].blob, let created = row[1].integer, let expires = row[2].integer else { return nil }
        guard expires > now else {
            _ = try await store.write(durable: false) { db in
                try db.run("DELETE FROM response_cache WHERE key = ?1 AND expires_at <= ?2", [.blob(key), .integer(now)])
            }
            return nil
        }
        return CacheEntry(value: answer, createdAt: Self.date(created), expiresAt: Self.date(expires))
    }

    public func store(_ key: Data, value: Data, ttl: TimeInterval) async throws {
        let bytes = value.count + StoreLimits.cacheEntryOverheadBytes
        guard bytes <= maxDiskBytes else { return }  // could never fit; not an error for the caller
        let now = Date()
        let limit = maxDiskBytes
        // A cache entry lost with the machine's power costs one vendor call: NORMAL sync is enough.
        try await store.write(durable: false) { db in
            try db.run("DELETE FROM response_cache WHERE key = ?1", [.blob(key)])
            let used = Int(try db.scalar("SELECT bytes FROM response_cache_size")?.integer ?? 0)
            if used + bytes > limit { try Self.evictOldest(db, toFree: used + bytes - limit) }
            try db.run("INSERT INTO response_cache (key, answer, bytes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                       [.blob(key), .blob(value), .integer(Int64(bytes)), .integer(Self.milliseconds(now)),
                        .integer(Self.milliseconds(now.addingTimeInterval(ttl)))])
        }
    }

    @discardableResult
    public func removeExpired() async throws -> Int {
        let now = Self.milliseconds(Date())
        return try await store.write(durable: false) { db in
            try db.run("DELETE FROM response_cache WHERE expires_at <= ?1", [.integer(now)])
        }
    }

    /// Entries and bytes on disk, for tests and the operator.
    public func usage() async throws -> (entries: Int, bytes: Int) {
        try await store.read { db in
            let row = try db.query("SELECT count(*), total(bytes) FROM response_cache").first
            return (Int(row?[0].integer ?? 0), Int(row?[1].realOrInteger ?? 0))
        }
    }

    /// Deletes the oldest entries until at least `toFree` bytes are gone.
    private static func evictOldest(_ db: SQLiteConnection, toFree: Int) throws {
        var keys: [Data] = []
        do {  // the cursor ends before the deletes
            let statement = try db.prepare("SELECT key, bytes FROM response_cache ORDER BY created_at")
            var freed = 0
            while freed < toFree, try statement.step() {
                let row = statement.row
                if let key = row[0].blob { keys.append(key) }
                freed += Int(row[1].integer ?? 0)
            }
        }
        for key in keys { try db.run("DELETE FROM response_cache WHERE key = ?1", [.blob(key)]) }
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

extension SQLiteValue {
    /// `total()` answers a real; `sum()` an integer.
    var realOrInteger: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .real(let v): return v
        default: return nil
        }
    }
}
