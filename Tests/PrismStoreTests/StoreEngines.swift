// The engines the store conformance tests run on: embedded SQLite in a temporary folder and
// PostgreSQL in a fresh database of the test server. Each test runs its body once per engine.
import Foundation
import PrismStore
import PrismStorePostgres
import XCTest

/// One engine under test: opens stores on one database (each call a new store instance, as a
/// restarted or second process would open them) and counts rows behind the protocols' backs.
struct StoreEngine {
    let name: String
    let batchStore: () throws -> any BatchStore
    let documentIndex: () throws -> any DocumentIndex
    /// Rows of `table` (an engine-neutral name: "chunks", "vectors", "items") matching `condition`.
    let count: (_ table: String, _ condition: String) async throws -> Int
    let cleanup: () -> Void

    static func sqlite() throws -> StoreEngine {
        let folder = NSTemporaryDirectory() + "prism-store-\(UUID().uuidString)"
        try DataDirectory.prepare(folder)
        let embedded = try EmbeddedStore(directory: folder)
        let tables = ["chunks": "index_fts", "vectors": "index_vectors", "items": "batch_items"]
        return StoreEngine(
            name: "SQLite",
            batchStore: { try SQLiteBatchStore(store: EmbeddedStore(directory: folder)) },
            documentIndex: { SQLiteDocumentIndex(store: embedded) },
            count: { table, condition in
                let sql = "SELECT count(*) FROM \(tables[table]!) WHERE \(condition)"
                return try await embedded.read { db in Int(try db.scalar(sql)?.integer ?? 0) }
            },
            cleanup: {
                embedded.close()
                try? FileManager.default.removeItem(atPath: folder)
            })
    }

    static func postgres() async throws -> StoreEngine {
        let url = try await TestPostgres.migratedDatabase()
        let pool = PostgresPool(url: url)
        let tables = ["chunks": "index_chunks", "vectors": "index_vectors", "items": "batch_items"]
        return StoreEngine(
            name: "PostgreSQL",
            batchStore: { PostgresBatchStore(pool: PostgresPool(url: url, connections: 2)) },
            documentIndex: { PostgresDocumentIndex(pool: pool) },
            count: { table, condition in
                let sql = "SELECT count(*) FROM \(tables[table]!) WHERE \(condition)"
                return try await pool.run { db in Int(try db.scalar(sql)?.integer ?? 0) }
            },
            cleanup: {})
    }
}

extension XCTestCase {
    /// Runs `body` on each engine, a fresh database each; a failure names the engine.
    func onEachEngine(_ body: (StoreEngine) async throws -> Void) async throws {
        var skipped: XCTSkip?
        for make in [{ try StoreEngine.sqlite() }, { try await StoreEngine.postgres() }] as [() async throws -> StoreEngine] {
            let engine: StoreEngine
            do {
                engine = try await make()
            } catch let skip as XCTSkip {
                skipped = skip  // after the engines that are here have run
                continue
            }
            defer { engine.cleanup() }
            print("[engine: \(engine.name)]")  // failures below are this engine's
            do {
                try await body(engine)
            } catch {
                XCTFail("\(engine.name): \(error)")
            }
        }
        if let skipped { throw skipped }
    }
}
