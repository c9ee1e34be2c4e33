// The embedded store on real SQLite files: the data folder, WAL mode, migrations (fresh, reopen,
// a failing step rolled back, a newer database refused), and the response cache's entries:
// expiry, replacement, the disk bound, the memory front, and surviving a reopen.
import CSQLite
import Foundation
import XCTest
@testable import PrismStore

final class EmbeddedStoreTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "prism-store-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func testDataFolderIsCreatedPrivate() throws {
        let nested = folder + "/a/prism"
        try DataDirectory.prepare(nested)
        let mode = try FileManager.default.attributesOfItem(atPath: nested)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o700)
    }

    func testUnusableDataFolderIsAClearError() throws {
        let file = folder + "-file"
        FileManager.default.createFile(atPath: file, contents: Data())
        defer { unlink(file) }
        XCTAssertThrowsError(try DataDirectory.prepare(file)) { XCTAssertTrue("\($0)".contains("is not a folder"), "\($0)") }
        XCTAssertThrowsError(try DataDirectory.prepare(file + "/prism")) { XCTAssertTrue("\($0)".contains("cannot create the data folder"), "\($0)") }
    }

    func testUnwritableDataFolderIsAClearError() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        chmod(folder, 0o500)
        defer { chmod(folder, 0o700) }
        guard getuid() != 0 else { throw XCTSkip("root writes anywhere") }
        XCTAssertThrowsError(try DataDirectory.prepare(folder)) { error in
            XCTAssertTrue("\(error)".contains("not writable"), "\(error)")
        }
    }

    func testDataFolderDefaults() {
        XCTAssertEqual(DataDirectory.resolve(["PRISM_DATA_DIR": "/d", "HOME": "/h"]), "/d")
        XCTAssertEqual(DataDirectory.resolve(["XDG_DATA_HOME": "/x", "HOME": "/h"]), "/x/prism")
        XCTAssertEqual(DataDirectory.resolve(["HOME": "/h"]), "/h/.local/share/prism")
        XCTAssertNil(DataDirectory.resolve([:]))
    }

    func testOpensInWALModeAtTheLatestSchema() throws {
        let store = try openStore()
        let db = try SQLiteConnection(path: store.path)
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode")?.text, "wal")
        XCTAssertEqual(try Schema.version(db), Schema.migrations.last?.version)
        XCTAssertNotNil(try db.scalar("SELECT name FROM sqlite_master WHERE name = 'response_cache'"))
    }

    func testReopenAppliesOnlyNewMigrations() throws {
        let first = [Migration(version: 1, summary: "t", sql: "CREATE TABLE t (x INTEGER)")]
        try DataDirectory.prepare(folder)
        _ = try EmbeddedStore(directory: folder, migrations: first)
        // Reopening with one more step runs only that step (re-running step 1 would fail: t exists).
        let second = first + [Migration(version: 2, summary: "u", sql: "CREATE TABLE u (y INTEGER)")]
        let store = try EmbeddedStore(directory: folder, migrations: second)
        let db = try SQLiteConnection(path: store.path)
        XCTAssertEqual(try Schema.version(db), 2)
        XCTAssertNotNil(try db.scalar("SELECT name FROM sqlite_master WHERE name = 'u'"))
    }

    func testFailingMigrationLeavesThePreviousSchema() throws {
        try DataDirectory.prepare(folder)
        let steps = [Migration(version: 1, summary: "t", sql: "CREATE TABLE t (x INTEGER)"),
                     Migration(version: 2, summary: "broken", sql: "CREATE TABLE v (z INTEGER); CREATE TABLE t (x INTEGER)")]
        XCTAssertThrowsError(try EmbeddedStore(directory: folder, migrations: steps))
        let db = try SQLiteConnection(path: folder + "/" + StoreLimits.databaseFileName)
        XCTAssertEqual(try Schema.version(db), 1)
        XCTAssertNil(try db.scalar("SELECT name FROM sqlite_master WHERE name = 'v'"), "half a migration was kept")
    }

    func testNewerDatabaseIsRefused() throws {
        _ = try openStore()
        let db = try SQLiteConnection(path: folder + "/" + StoreLimits.databaseFileName)
        try db.exec("PRAGMA user_version = 99")
        XCTAssertThrowsError(try EmbeddedStore(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("schema version 99, newer than this build"), "\(error)")
        }
    }

    func testWritesAreVisibleToReadersAndAfterReopen() async throws {
        var store: EmbeddedStore? = try openStore()
        try await store!.write { db in try db.run("INSERT INTO response_cache VALUES (x'01', x'02', 1, 0, 9999999999999)") }
        let seen = try await store!.read { db in try db.scalar("SELECT count(*) FROM response_cache")?.integer }
        XCTAssertEqual(seen, 1)
        store!.close()
        store = nil
        store = try openStore()
        let again = try await store!.read { db in try db.scalar("SELECT count(*) FROM response_cache")?.integer }
        XCTAssertEqual(again, 1)
    }

    func testFailedWriteRollsBack() async throws {
        let store = try openStore()
        do {
            try await store.write { db in
                try db.run("INSERT INTO response_cache VALUES (x'01', x'02', 1, 0, 0)")
                try db.run("INSERT INTO no_such_table VALUES (1)")
            }
            XCTFail("the write should fail")
        } catch {}
        let count = try await store.read { db in try db.scalar("SELECT count(*) FROM response_cache")?.integer }
        XCTAssertEqual(count, 0)
    }

    // MARK: - the response cache

    func testCacheStoresReplacesAndExpires() async throws {
        let cache = SQLiteResponseCache(store: try openStore(), maxDiskBytes: 1 << 20)
        let key = Data([1, 2, 3])
        let missing = try await cache.lookup(key)
        XCTAssertNil(missing)
        try await cache.store(key, value: Data("one".utf8), ttl: 60)
        try await cache.store(key, value: Data("two".utf8), ttl: 60)
        let found = try await cache.lookup(key)
        XCTAssertEqual(found?.value, Data("two".utf8))
        try await cache.store(Data([9]), value: Data("old".utf8), ttl: -1)
        let expired = try await cache.lookup(Data([9]))
        XCTAssertNil(expired, "an expired entry was served")
        try await cache.store(Data([8]), value: Data("old".utf8), ttl: -1)
        let removed = try await cache.removeExpired()
        XCTAssertEqual(removed, 1)
        let usage = try await cache.usage()
        XCTAssertEqual(usage.entries, 1)
    }

    func testDiskBoundEvictsTheOldest() async throws {
        let entry = 1000 + StoreLimits.cacheEntryOverheadBytes
        let cache = SQLiteResponseCache(store: try openStore(), maxDiskBytes: entry * 3)
        for i in 0..<5 { try await cache.store(Data([UInt8(i)]), value: Data(count: 1000), ttl: 60) }
        let usage = try await cache.usage()
        XCTAssertEqual(usage.entries, 3)
        XCTAssertLessThanOrEqual(usage.bytes, entry * 3)
        let oldest = try await cache.lookup(Data([0]))
        let newest = try await cache.lookup(Data([4]))
        XCTAssertNil(oldest)
        XCTAssertNotNil(newest)
        // Replacing an entry, expiring one and a new instance on the same table keep the count right.
        try await cache.store(Data([4]), value: Data(count: 1000), ttl: 60)
        try await cache.store(Data([3]), value: Data(count: 1000), ttl: -1)
        _ = try await cache.lookup(Data([3]))
        let reopened = SQLiteResponseCache(store: try openStore(), maxDiskBytes: entry * 3)
        for i in 10..<12 { try await reopened.store(Data([UInt8(i)]), value: Data(count: 1000), ttl: 60) }
        let after = try await reopened.usage()
        XCTAssertEqual(after.entries, 3)
        XCTAssertLessThanOrEqual(after.bytes, entry * 3)
        try await cache.store(Data([20]), value: Data(count: 1000), ttl: 60)
        let last = try await cache.usage()
        XCTAssertEqual(last.entries, 3, "the first instance's bound went stale when the second wrote")
        let counted = try await openStore().read { db in try db.scalar("SELECT bytes FROM response_cache_size")?.integer }
        XCTAssertEqual(counted.map(Int.init), last.bytes, "the triggers' count disagrees with the rows")
    }

    func testMemoryFrontIsBoundedAndBackedByTheStore() async throws {
        let disk = SQLiteResponseCache(store: try openStore(), maxDiskBytes: 1 << 20)
        let front = MemoryCacheFront(backing: disk, maxBytes: 2 * (1000 + 1 + StoreLimits.cacheEntryOverheadBytes))
        for i in 0..<4 { try await front.store(Data([UInt8(i)]), value: Data(count: 1000), ttl: 60) }
        XCTAssertEqual(front.memoryUsage.entries, 2)
        // Evicted from memory, still served from the store.
        let first = try await front.lookup(Data([0]))
        XCTAssertEqual(first?.value.count, 1000)
    }

    func testEntriesSurviveReopen() async throws {
        var store: EmbeddedStore? = try openStore()
        try await SQLiteResponseCache(store: store!, maxDiskBytes: 1 << 20).store(Data([7]), value: Data("kept".utf8), ttl: 60)
        store = nil  // no close(): the connections just go away, as in a crash after the commit
        let reopened = SQLiteResponseCache(store: try openStore(), maxDiskBytes: 1 << 20)
        let found = try await reopened.lookup(Data([7]))
        XCTAssertEqual(found?.value, Data("kept".utf8))
    }

    private func openStore() throws -> EmbeddedStore {
        try DataDirectory.prepare(folder)
        return try EmbeddedStore(directory: folder)
    }
}
