// What only a store shared by replicas must get right, on a real PostgreSQL server: lease takeover by
// a second owner, concurrent claims that never overlap, markSubmitting as the one gate, concurrent usage
// adds, racing migrations, a connection cut while idle, an unreachable server reported with its reason.
import Foundation
import XCTest
import PrismStore
@testable import PrismStorePostgres

final class PostgresSharedStoreTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func items(_ n: Int, lane: BatchLane = .local) -> [NewBatchItem] {
        (0..<n).map { NewBatchItem(customID: "c\($0)", kind: 2, request: Data("request \($0)".utf8), model: "openai/gpt-4o", lane: lane) }
    }

    /// Two replicas: two stores, each with its own connections, on one database.
    private func replicas() async throws -> (PostgresBatchStore, PostgresBatchStore) {
        let url = try await TestPostgres.migratedDatabase()
        return (PostgresBatchStore(pool: PostgresPool(url: url)), PostgresBatchStore(pool: PostgresPool(url: url)))
    }

    func testALeaseIsTakenOverByAnotherOwnerOnlyOnceItExpired() async throws {
        let (a, b) = try await replicas()
        _ = try await a.createBatch(id: "b1", label: "", items: items(2), now: now)
        let held = try await a.claimLocal(owner: "a", limit: 1, now: now, leaseUntil: now.addingTimeInterval(30))
        XCTAssertEqual(held.map(\.seq), [0])
        // A heartbeat extends the lease; before its end nothing is taken over.
        try await a.renewLeases(owner: "a", until: now.addingTimeInterval(60))
        let early = try await b.recover(owner: "b", now: now.addingTimeInterval(45))
        XCTAssertEqual(early.itemsReleased, 0, "a live lease was taken over")
        let other = try await b.claimLocal(owner: "b", limit: 5, now: now.addingTimeInterval(45), leaseUntil: now.addingTimeInterval(105))
        XCTAssertEqual(other.map(\.seq), [1], "a leased item was handed out twice")
        // "a" dies: its lease runs out and "b" takes the item over and finishes it.
        let found = try await b.recover(owner: "b", now: now.addingTimeInterval(61))
        XCTAssertEqual(found.itemsReleased, 1)
        let taken = try await b.claimLocal(owner: "b", limit: 5, now: now.addingTimeInterval(61), leaseUntil: now.addingTimeInterval(121))
        XCTAssertEqual(taken.map(\.seq), [0])
        // b's own leases are never taken from it by its own recovery.
        let mine = try await b.recover(owner: "b", now: now.addingTimeInterval(200))
        XCTAssertEqual(mine.itemsReleased, 0)
        let first = try await b.finishItems(batchID: "b1", [ItemOutcome(seq: 0, state: .succeeded, result: Data("b".utf8)),
                                                             ItemOutcome(seq: 1, state: .succeeded, result: Data("b".utf8))], now: now)
        XCTAssertEqual(first, 2)
        // "a" was only slow, and reports late: the result is not stored twice.
        let late = try await a.finishItems(batchID: "b1", [ItemOutcome(seq: 0, state: .succeeded, result: Data("a".utf8))], now: now)
        XCTAssertEqual(late, 0)
        let results = try await a.finishedItems(of: "b1", after: 0, limit: 10)
        XCTAssertEqual(results.map(\.customID).sorted(), ["c0", "c1"])
        let batch = try await a.batch("b1")
        XCTAssertEqual(batch?.state, .done)
    }

    func testConcurrentClaimsOfTwoOwnersNeverOverlap() async throws {
        let (a, b) = try await replicas()
        let total = 300
        _ = try await a.createBatch(id: "b1", label: "", items: items(total), now: now)
        let now = self.now
        @Sendable func drain(_ store: PostgresBatchStore, _ owner: String) async throws -> [Int] {
            var seqs: [Int] = []
            while true {
                let claimed = try await store.claimLocal(owner: owner, limit: 7, now: now, leaseUntil: now.addingTimeInterval(60))
                if claimed.isEmpty { return seqs }
                seqs += claimed.map(\.seq)
            }
        }
        async let first = drain(a, "a")
        async let second = drain(b, "b")
        let (x, y) = try await (first, second)
        XCTAssertTrue(Set(x).isDisjoint(with: y), "an item was claimed by both owners")
        XCTAssertEqual(Set(x).union(y), Set(0..<total))
        XCTAssertEqual(x.count + y.count, total)
    }

    func testReplicasPreparingAtOnceNeverSplitABatchThatFitsOneChunk() async throws {
        let (a, b) = try await replicas()
        for round in 0..<10 {
            _ = try await a.createBatch(id: "b\(round)", label: "", items: items(40, lane: .vendor), now: now)
            async let first = a.prepareChunk(id: "ka\(round)", owner: "a", maxItems: 1000, maxBytes: 1 << 20, now: now)
            async let second = b.prepareChunk(id: "kb\(round)", owner: "b", maxItems: 1000, maxBytes: 1 << 20, now: now)
            let chunks = try await [first, second].compactMap { $0 }
            XCTAssertEqual(chunks.map(\.1.count), [40], "round \(round): the batch went out in \(chunks.count) chunks")
        }
    }

    func testMarkSubmittingLetsOneCallThroughAndNoneAfterATakeover() async throws {
        let (a, b) = try await replicas()
        _ = try await a.createBatch(id: "b1", label: "", items: items(4, lane: .vendor), now: now)
        guard let (chunk, _) = try await a.prepareChunk(id: "k1", owner: "a", maxItems: 2, maxBytes: 1 << 20, now: now) else {
            return XCTFail("no chunk")
        }
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<8 { group.addTask { try await (i % 2 == 0 ? a : b).markSubmitting(chunk.id) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(results.filter { $0 }.count, 1, "the gate to the vendor let \(results.filter { $0 }.count) calls through")
        // A second chunk whose preparer died before the intent: taken over, then the late intent is refused.
        guard let (late, _) = try await a.prepareChunk(id: "k2", owner: "a", maxItems: 2, maxBytes: 1 << 20, now: now) else {
            return XCTFail("no second chunk")
        }
        let found = try await b.recover(owner: "b", now: now.addingTimeInterval(PostgresLimits.defaultChunkLeaseSeconds + 1))
        XCTAssertEqual(found.chunksReleased, 1)
        let marked = try await a.markSubmitting(late.id)
        XCTAssertFalse(marked, "a chunk taken over was sent by its first owner")
        let again = try await b.prepareChunk(id: "k3", owner: "b", maxItems: 2, maxBytes: 1 << 20, now: now)
        XCTAssertEqual(again?.1.map(\.seq), [2, 3], "the released items go out once, in a new chunk")
    }

    func testConcurrentUsageAddsSumUp() async throws {
        let url = try await TestPostgres.migratedDatabase()
        let stores = [PostgresUsageStore(pool: PostgresPool(url: url)), PostgresUsageStore(pool: PostgresPool(url: url))]
        let adds = 60
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<adds {
                group.addTask {
                    try await stores[i % 2].add(UsageRecord(key: "team", model: "openai/gpt-4o", day: "2026-12-06", requests: 1,
                                                            inputTokens: 10, outputTokens: Int64(i), costMicros: 7))
                }
            }
            try await group.waitForAll()
        }
        try await stores[0].add(UsageRecord(key: "other", model: "openai/gpt-4o", day: "2026-12-05", requests: 1, inputTokens: 1,
                                            outputTokens: 1, costMicros: 1))
        let rows = try await stores[1].rows(key: "team", since: nil)
        XCTAssertEqual(rows, [UsageRecord(key: "team", model: "openai/gpt-4o", day: "2026-12-06", requests: Int64(adds),
                                          inputTokens: Int64(10 * adds), outputTokens: Int64((0..<adds).reduce(0, +)), costMicros: Int64(7 * adds))])
        let since = try await stores[1].rows(key: nil, since: "2026-12-06")
        XCTAssertEqual(since.map(\.key), ["team"])
        let all = try await stores[1].rows(key: nil, since: nil)
        XCTAssertEqual(all.map(\.day), ["2026-12-05", "2026-12-06"])
    }

    func testMigratorsStartingTogetherMakeOneSchemaWithoutError() async throws {
        let url = try TestPostgres.freshDatabase()
        let started = Date()
        let found = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 { group.addTask { try await PostgresSchema.migrate(PostgresPool(url: url, connections: 1)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        print("3 concurrent migrations on an empty database took \(Int(Date().timeIntervalSince(started) * 1000)) ms")
        let latest = PostgresSchema.migrations.last!.version
        XCTAssertEqual(found.sorted(), [0, latest, latest], "one migrator found the database empty, the others current")
        let versions = try await PostgresPool(url: url).run { db in try db.query("SELECT version FROM prism_schema ORDER BY version").compactMap { $0[0].integer } }
        XCTAssertEqual(versions, PostgresSchema.migrations.map { Int64($0.version) })
    }

    func testANewerSchemaIsRefused() async throws {
        let url = try await TestPostgres.migratedDatabase()
        let pool = PostgresPool(url: url)
        try await pool.run { db in try db.run("INSERT INTO prism_schema (version, summary) VALUES (999, 'future')") }
        do {
            try await PostgresSchema.migrate(pool)
            XCTFail("a newer schema was accepted")
        } catch let error as StoreError {
            XCTAssertTrue(error.description.contains("newer than this build"), error.description)
        }
    }

    func testAConnectionCutWhileIdleIsReplacedWithoutAnError() async throws {
        let url = try await TestPostgres.migratedDatabase()
        let pool = PostgresPool(url: url, connections: 1)
        let pid = try await pool.run { db in try db.scalar("SELECT pg_backend_pid()")?.integer }
        // The server ends that session (as a restart would): the pool finds out on its next call.
        try await PostgresPool(url: url, connections: 1).run { db in try db.query("SELECT pg_terminate_backend($1::int)", [.integer(pid ?? 0)]) }
        let again = try await pool.run { db in try db.scalar("SELECT pg_backend_pid()")?.integer }
        XCTAssertNotEqual(again, pid, "the cut connection was used again")
        XCTAssertNil(pool.unavailableReason)
    }

    func testReplicasAreToldOfNewWorkAndOfChangedResults() async throws {
        let url = try await TestPostgres.migratedDatabase()
        let heard = Heard()
        let notifier = PostgresNotifier(url: url, server: "the test server") { heard.add($0) }
        notifier.start()
        defer { notifier.stop() }
        try await waitFor("the listener's first wake-up") { heard.all.contains("") }
        heard.clear()
        let store = PostgresBatchStore(pool: PostgresPool(url: url))
        _ = try await store.createBatch(id: "b1", label: "", items: items(2), now: now)
        try await waitFor("new work announced") { heard.all.contains("") }
        try await store.finishItems(batchID: "b1", [ItemOutcome(seq: 0, state: .succeeded, result: Data())], now: now)
        try await waitFor("b1's results announced") { heard.all.contains("b1") }
    }

    /// Polls `condition` every 10 ms until it holds; fails after 10 s.
    private func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            guard Date() < deadline else { return XCTFail("\(what): not seen after 10 s") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    func testTheURLsOwnParametersWinOverTheStoresDefaults() async throws {
        let url = try await TestPostgres.migratedDatabase()
        let named = try await PostgresPool(url: url + "?application_name=from-url", connections: 1).run { db in
            try db.scalar("SELECT current_setting('application_name')")?.text
        }
        XCTAssertEqual(named, "from-url")
        let defaulted = try await PostgresPool(url: url, connections: 1).run { db in try db.scalar("SELECT current_setting('application_name')")?.text }
        XCTAssertEqual(defaulted, "prism-server")
    }

    func testAnUnreachableServerIsUnavailableWithItsReason() async throws {
        let port = try TestPostgres.freePort()  // nothing listens there
        let pool = PostgresPool(url: "postgres://prism@127.0.0.1:\(port)/prism", connections: 1)
        let store = PostgresBatchStore(pool: pool)
        do {
            _ = try await store.batch("b1")
            XCTFail("a call to an unreachable server succeeded")
        } catch let error as StoreError {
            XCTAssertTrue(error.isUnavailable)
            XCTAssertTrue(error.description.contains("127.0.0.1:\(port)/prism is unreachable"), error.description)
        }
        XCTAssertNotNil(pool.unavailableReason)
        // During the backoff the next call fails at once with the same reason.
        do {
            _ = try await store.batch("b1")
            XCTFail("a call to an unreachable server succeeded")
        } catch let error as StoreError {
            XCTAssertTrue(error.isUnavailable, error.description)
        }
    }
}

/// Payloads a listener heard. Thread-safe: `lock` guards `payloads`.
private final class Heard: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var payloads: [String] = []

    func add(_ payload: String) { lock.withLock { payloads.append(payload) } }
    func clear() { lock.withLock { payloads.removeAll() } }
    var all: [String] { lock.withLock { payloads } }
}
