// The embedded BatchStore: the batches, batch_items and batch_chunks tables of the EmbeddedStore
// (migration 2). This file holds what the RPCs do (create, read, cancel, retention) and recovery;
// SQLiteBatchWork.swift what the scheduler does. One process owns a data folder's batches: a lock
// file held for the process's life makes a second prism-server on the folder fail at start, so
// at startup every lease not this process's belongs to a dead one and is released at once.
import Foundation

/// Safe: immutable after init: `store` is Sendable and the lock file's descriptor is only closed in deinit.
public final class SQLiteBatchStore: BatchStore, @unchecked Sendable {
    let store: EmbeddedStore
    // The lock file's descriptor, held open (and flock'ed) until the store is released.
    private let lockDescriptor: Int32

    /// What a cancelled item's result says.
    public static let cancelledCode = 1  // google.rpc.Code CANCELLED
    public static let cancelledMessage = "the batch was cancelled before this item ran"
    /// What an item of an abandoned chunk says (google.rpc.Code ABORTED).
    public static let abandonedCode = 10

    public init(store: EmbeddedStore) throws {
        self.store = store
        let path = store.directory + "/" + StoreLimits.batchLockFileName
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError("another prism-server is using the data folder \(store.directory) (it holds \(path)); one process per data folder (PRISM_DATA_DIR)")
        }
        lockDescriptor = fd
    }

    deinit { close(lockDescriptor) }

    // MARK: - batches

    public func createBatch(id: String, label: String, items: [NewBatchItem], now: Date) async throws -> BatchRecord {
        let created = ms(now)
        // Durable: the client is told the batch is accepted once this returns.
        try await store.write(durable: true) { db in
            try db.run("INSERT INTO batches (id, label, state, total, created_at) VALUES (?1, ?2, 'queued', ?3, ?4)",
                       [.text(id), .text(label), .integer(Int64(items.count)), .integer(created)])
            let insert = try db.prepare("""
                INSERT INTO batch_items (batch_id, seq, custom_id, kind, request, model, lane, state)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')
                """)
            for (seq, item) in items.enumerated() {
                try insert.bind([.text(id), .integer(Int64(seq)), .text(item.customID), .integer(Int64(item.kind)),
                                 .blob(item.request), .text(item.model), .text(item.lane.rawValue)])
                while try insert.step() {}
                insert.reset()
            }
        }
        return BatchRecord(id: id, label: label, state: .queued, total: items.count, succeeded: 0, failed: 0, cancelled: 0,
                           createdAt: SQLiteResponseCache.date(created), finishedAt: nil, vendorBatchIDs: [], cancelRequested: false)
    }

    public func batch(_ id: String) async throws -> BatchRecord? {
        try await store.read { db in
            // One snapshot for the three reads, so the counts and the state agree.
            try db.exec("BEGIN")
            defer { try? db.exec("COMMIT") }
            return try Self.record(db, id)
        }
    }

    static func record(_ db: SQLiteConnection, _ id: String) throws -> BatchRecord? {
        guard let row = try db.query("SELECT label, state, total, cancel_requested, created_at, finished_at FROM batches WHERE id = ?1",
                                     [.text(id)]).first else { return nil }
        var counts: [String: Int] = [:]
        for count in try db.query("SELECT state, count(*) FROM batch_items WHERE batch_id = ?1 GROUP BY state", [.text(id)]) {
            counts[count[0].text ?? ""] = Int(count[1].integer ?? 0)
        }
        let vendorIDs = try db.query("""
            SELECT vendor_batch_id FROM batch_chunks WHERE batch_id = ?1 AND vendor_batch_id IS NOT NULL ORDER BY created_at, id
            """, [.text(id)]).compactMap { $0[0].text }
        return BatchRecord(
            id: id, label: row[0].text ?? "", state: BatchLifecycle(rawValue: row[1].text ?? "") ?? .failed,
            total: Int(row[2].integer ?? 0), succeeded: counts["succeeded"] ?? 0, failed: counts["failed"] ?? 0,
            cancelled: counts["cancelled"] ?? 0, createdAt: SQLiteResponseCache.date(row[4].integer ?? 0),
            finishedAt: row[5].integer.map(SQLiteResponseCache.date), vendorBatchIDs: vendorIDs, cancelRequested: row[3].integer == 1)
    }

    public func finishedItems(of id: String, after order: Int64, limit: Int) async throws -> [FinishedItem] {
        try await store.read { db in
            try db.query("""
                SELECT finished_order, custom_id, state, result, error_code, error_message FROM batch_items
                WHERE batch_id = ?1 AND finished_order > ?2 ORDER BY finished_order LIMIT ?3
                """, [.text(id), .integer(order), .integer(Int64(limit))]).map { row in
                FinishedItem(order: row[0].integer ?? 0, customID: row[1].text ?? "",
                             state: BatchItemState(rawValue: row[2].text ?? "") ?? .failed, result: row[3].blob,
                             errorCode: Int(row[4].integer ?? 0), errorMessage: row[5].text ?? "")
            }
        }
    }

    public func cancelBatch(_ id: String, now: Date) async throws -> BatchRecord? {
        let at = ms(now)
        return try await store.write(durable: true) { db in
            guard try db.run("UPDATE batches SET cancel_requested = 1 WHERE id = ?1", [.text(id)]) == 1 else { return nil }
            // pending → cancelled, and submitted → cancelled for chunks still preparing (nothing sent).
            try Self.finishInBulk(db, batchID: id, state: .cancelled, code: Self.cancelledCode, message: Self.cancelledMessage, where: """
                batch_id = ?1 AND (state = 'pending' OR (state = 'submitted' AND chunk_id IN
                    (SELECT id FROM batch_chunks WHERE batch_id = ?1 AND state = 'preparing')))
                """)
            // Chunks at the vendor are polled now; the poll asks the vendor to cancel.
            try db.run("UPDATE batch_chunks SET next_poll_at = ?2 WHERE batch_id = ?1 AND state = 'running'", [.text(id), .integer(at)])
            try Self.finishIfDone(db, id, at)
            return try Self.record(db, id)
        }
    }

    public func removeFinished(before cutoff: Date) async throws -> Int {
        let at = ms(cutoff)
        // Losing a removal to a power cut only delays it to the next sweep.
        return try await store.write(durable: false) { db in
            try db.run("DELETE FROM batches WHERE finished_at IS NOT NULL AND finished_at < ?1", [.integer(at)])
        }
    }

    // MARK: - recovery

    public func recover(owner: String, now: Date) async throws -> BatchRecovery {
        let at = ms(now)
        return try await store.write(durable: true) { db in
            var found = BatchRecovery()
            let me = SQLiteValue.text(owner)
            found.itemsReleased = try db.run("""
                UPDATE batch_items SET state = 'pending', lease_owner = NULL, lease_until = NULL
                WHERE lane = 'local' AND state = 'running' AND lease_owner IS NOT ?1
                """, [me])
            // Preparing: nothing reached the vendor, so the items may go out again.
            found.chunksReleased = Int(try db.scalar("SELECT count(*) FROM batch_chunks WHERE state = 'preparing' AND lease_owner IS NOT ?1", [me])?.integer ?? 0)
            try db.run("""
                UPDATE batch_items SET state = 'pending', chunk_id = NULL
                WHERE state = 'submitted' AND chunk_id IN (SELECT id FROM batch_chunks WHERE state = 'preparing' AND lease_owner IS NOT ?1)
                """, [me])
            try db.run("DELETE FROM batch_chunks WHERE state = 'preparing' AND lease_owner IS NOT ?1", [me])
            // Submitting without an id: the vendor may hold the batch. Never resubmitted (see VendorChunkState).
            let abandoned = try db.query("""
                SELECT c.id, c.batch_id, c.model, b.label FROM batch_chunks c JOIN batches b ON b.id = c.batch_id
                WHERE c.state = 'submitting' AND c.lease_owner IS NOT ?1
                """, [me])
            for chunk in abandoned {
                guard let chunkID = chunk[0].text, let batchID = chunk[1].text else { continue }
                let name = Self.displayName(batchID: batchID, chunkID: chunkID, label: chunk[3].text ?? "")
                let message = "prism-server stopped while handing this item to \(chunk[2].text ?? "the vendor") in vendor batch '\(name)'; "
                    + "the vendor may or may not have that batch, so the item was not sent again (it could run and be billed twice): "
                    + "check the vendor's console for that name, and resubmit the item if it is not there"
                try Self.finishInBulk(db, batchID: batchID, state: .failed, code: Self.abandonedCode, message: message,
                                      where: "chunk_id = ?2 AND state = 'submitted'", extra: [.text(chunkID)])
                try db.run("UPDATE batch_chunks SET state = 'abandoned', lease_owner = NULL WHERE id = ?1", [.text(chunkID)])
                found.chunksAbandoned += 1
            }
            try db.run("UPDATE batch_chunks SET lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND lease_owner IS NOT ?1", [me])
            // Items put back to pending in a batch cancelled meanwhile do not start again.
            for row in try db.query("SELECT DISTINCT batch_id FROM batch_items WHERE state = 'pending' AND batch_id IN (SELECT id FROM batches WHERE cancel_requested = 1)") {
                guard let batchID = row[0].text else { continue }
                try Self.finishInBulk(db, batchID: batchID, state: .cancelled, code: Self.cancelledCode, message: Self.cancelledMessage,
                                      where: "batch_id = ?1 AND state = 'pending'")
            }
            for row in try db.query("SELECT id FROM batches WHERE state IN ('queued', 'running')") {
                if let batchID = row[0].text { try Self.finishIfDone(db, batchID, at) }
            }
            return found
        }
    }

    /// The name a chunk's vendor batch carries in the vendor's console (where the vendor keeps
    /// one: OpenAI's metadata, Gemini's display name), followed by the batch's label.
    public static func displayName(batchID: String, chunkID: String, label: String = "") -> String {
        "prism \(batchID) chunk \(chunkID)" + (label.isEmpty ? "" : ": \(label)")
    }

    // MARK: - transitions shared by both files

    /// Finishes every item matching `condition` (?1 is the batch id, ?2... `extra`) in one
    /// statement, after the batch's last finished item, in submit order.
    static func finishInBulk(_ db: SQLiteConnection, batchID: String, state: BatchItemState, code: Int, message: String,
                             where condition: String, extra: [SQLiteValue] = []) throws {
        let base = try db.scalar("SELECT coalesce(max(finished_order), 0) FROM batch_items WHERE batch_id = ?1 AND finished_order IS NOT NULL", [.text(batchID)])?.integer ?? 0
        let n = extra.count
        try db.run("""
            UPDATE batch_items SET state = ?\(n + 2), error_code = ?\(n + 3), error_message = ?\(n + 4), finished_order = ?\(n + 5) + seq + 1,
                lease_owner = NULL, lease_until = NULL
            WHERE \(condition)
            """, [.text(batchID)] + extra + [.text(state.rawValue), .integer(Int64(code)), .text(message), .integer(base)])
    }

    /// running|queued → done|cancelled|failed once no item of the batch is unfinished.
    static func finishIfDone(_ db: SQLiteConnection, _ batchID: String, _ at: Int64) throws {
        try db.run("""
            UPDATE batches SET finished_at = ?2, state = CASE
                WHEN cancel_requested = 1 THEN 'cancelled'
                WHEN total > 0 AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = ?1 AND state <> 'failed') THEN 'failed'
                ELSE 'done' END
            WHERE id = ?1 AND state IN ('queued', 'running')
              AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = ?1 AND state IN ('pending', 'running', 'submitted'))
            """, [.text(batchID), .integer(at)])
    }

    func ms(_ date: Date) -> Int64 { SQLiteResponseCache.milliseconds(date) }
}
