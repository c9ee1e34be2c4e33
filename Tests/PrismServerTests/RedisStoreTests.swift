// The Redis stores against a real redis-server: the response cache (set/get, expiry, the entry
// size bound, sharing between two pools as two replicas would), the quota counters (atomic adds,
// expiry) and the pool's outage handling (a clear reason, recovery once Redis is back).
import Foundation
import XCTest
@testable import PrismStore

final class RedisStoreTests: XCTestCase {
    private var redis: TestRedis!

    override func setUpWithError() throws {
        redis = try TestRedis.start()
    }

    override func tearDown() {
        redis?.remove()
    }

    private func pool() throws -> RedisPool { RedisPool(url: try RedisURL(redis.url)) }

    func testURLParsing() throws {
        let url = try RedisURL("redis://:s3cret@cache.internal:6380/2")
        XCTAssertEqual(url.host, "cache.internal")
        XCTAssertEqual(url.port, 6380)
        XCTAssertEqual(url.password, "s3cret")
        XCTAssertEqual(url.database, 2)
        XCTAssertFalse(url.description.contains("s3cret"))
        XCTAssertEqual(try RedisURL("redis://localhost").port, 6379)
        XCTAssertThrowsError(try RedisURL("http://localhost:6379")) { XCTAssertFalse("\($0)".contains("s3cret")) }
        XCTAssertThrowsError(try RedisURL("redis://:s3cret@localhost/x")) { XCTAssertFalse("\($0)".contains("s3cret"), "\($0)") }
    }

    func testCacheStoresAndServesAcrossPools() async throws {
        let writer = RedisResponseCache(pool: try pool())
        let reader = RedisResponseCache(pool: try pool())
        let key = Data("request one".utf8)
        let missing = try await reader.lookup(key)
        XCTAssertNil(missing)
        try await writer.store(key, value: Data("the answer".utf8), ttl: 60)
        let entry = try await reader.lookup(key)
        XCTAssertEqual(entry?.value, Data("the answer".utf8))
        XCTAssertEqual(entry.map { $0.expiresAt.timeIntervalSince($0.createdAt) } ?? 0, 60, accuracy: 0.01)
        try await writer.store(key, value: Data("replaced".utf8), ttl: 60)
        let replaced = try await reader.lookup(key)
        XCTAssertEqual(replaced?.value, Data("replaced".utf8))
    }

    func testCacheEntriesExpire() async throws {
        let cache = RedisResponseCache(pool: try pool())
        let key = Data("short-lived".utf8)
        try await cache.store(key, value: Data("soon gone".utf8), ttl: 0.3)
        let stored = try await cache.lookup(key)
        XCTAssertEqual(stored?.value, Data("soon gone".utf8))
        let expired = try await eventually { try await cache.lookup(key) == nil }
        XCTAssertTrue(expired, "the entry outlived its TTL")
        let ttl = try await pool().command("PTTL", String(decoding: RedisResponseCache.redisKey(key), as: UTF8.self))
        XCTAssertEqual(ttl, .integer(-2), "Redis still holds the key")
    }

    func testCacheRefusesEntriesOverTheBound() async throws {
        let cache = RedisResponseCache(pool: try pool(), maxEntryBytes: 100)
        try await cache.store(Data("big".utf8), value: Data(count: 101), ttl: 60)
        try await cache.store(Data("fits".utf8), value: Data(count: 100), ttl: 60)
        let big = try await cache.lookup(Data("big".utf8))
        let fits = try await cache.lookup(Data("fits".utf8))
        XCTAssertNil(big)
        XCTAssertEqual(fits?.value.count, 100)
        XCTAssertEqual(cache.refused, 1)
    }

    func testCountersAddAtomicallyAcrossPools() async throws {
        let pools = [try pool(), try pool()]
        let counters = pools.map { RedisQuotaCounters(pool: $0) }
        let values = try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<60 {
                group.addTask { try await counters[i % 2].add([CounterIncrement(key: "test:atomic", amount: 1, lifetimeMilliseconds: 60_000)])[0] }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        XCTAssertEqual(values.sorted(), Array(1...60), "each add saw its own count")
        let both = try await counters[0].add([CounterIncrement(key: "test:atomic", amount: 0, lifetimeMilliseconds: 60_000),
                                              CounterIncrement(key: "test:other", amount: 5, lifetimeMilliseconds: 60_000)])
        XCTAssertEqual(both, [60, 5])
    }

    func testCountersExpireWithTheirWindow() async throws {
        for counters in [RedisQuotaCounters(pool: try pool()) as any QuotaCounters, MemoryQuotaCounters()] {
            let first = try await counters.add([CounterIncrement(key: "test:window", amount: 7, lifetimeMilliseconds: 200)])
            XCTAssertEqual(first, [7])
            // A later add does not extend the window it was created with.
            _ = try await counters.add([CounterIncrement(key: "test:window", amount: 1, lifetimeMilliseconds: 60_000)])
            let reset = try await eventually { try await counters.add([CounterIncrement(key: "test:window", amount: 0, lifetimeMilliseconds: 200)]) == [0] }
            XCTAssertTrue(reset, "\(type(of: counters)): the counter outlived its window")
        }
    }

    func testOutageIsReportedAndRecovered() async throws {
        let pool = try pool()
        let cache = RedisResponseCache(pool: pool)
        try await cache.store(Data("k".utf8), value: Data("v".utf8), ttl: 60)
        XCTAssertNil(pool.unavailableReason)
        redis.stop()
        do {
            _ = try await cache.lookup(Data("k".utf8))
            XCTFail("a lookup with Redis stopped succeeded")
        } catch let error as RedisError {
            XCTAssertTrue(error.unreachable)
            XCTAssertTrue(error.description.contains("127.0.0.1:\(redis.port)"), error.description)
        }
        XCTAssertNotNil(pool.unavailableReason)
        XCTAssertEqual(cache.failures, 1)
        try redis.restart()
        let recovered = try await eventually {
            (try? await pool.command("PING")) == .status("PONG")
        }
        XCTAssertTrue(recovered, "the pool did not reconnect: \(pool.unavailableReason ?? "")")
        XCTAssertNil(pool.unavailableReason)
    }
}
