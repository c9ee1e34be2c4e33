// The shared BatchStore: batches, items and vendor chunks in PostgreSQL with SQLiteBatchStore's states
// and transitions, safe for several replicas at once. This file: the RPCs' side (create, read, cancel,
// retention) and recovery; PostgresBatchWork.swift: the scheduler's.
import Foundation
import PrismStore

/// Replicas are told apart by their lease owner names; a replica's work is taken over only once its
/// leases expired (recover, which each replica's scheduler calls every heartbeat). Completion orders
/// are assigned with the batch's row locked, so they grow in commit order and a results stream
/// reading "after order N" never skips an item another replica committed late.
public final class PostgresBatchStore: BatchStore {
    let pool: PostgresPool
    /// How long a chunk's lease lasts from its preparation or submit intent (heartbeats extend it).
    let chunkLeaseSeconds: TimeInterval

    public init(pool: PostgresPool, chunkLeaseSeconds: TimeInterval = PostgresLimits.defaultChunkLeaseSeconds) {
        self.pool = pool
        self.chunkLeaseSeconds = chunkLeaseSeconds
    }

    /// Rows per INSERT when a batch is stored: 7 parameters each, well under PostgreSQL's 65,535.
    static let insertRows = 500

    // MARK: - batches

    public func createBatch(id: String, label: String, items: [NewBatchItem], now: Date) async throws -> BatchRecord {
        let created = ms(now)
        // Durable (synchronous commit): the client is told the batch is accepted once this returns.
        try await pool.transaction { db in
            try db.run("INSERT INTO batches (id, label, state, total, created_at) VALUES ($1, $2, 'queued', $3, $4)",
                       [.text(id), .text(label), .integer(Int64(items.count)), .integer(created)])
            for start in stride(from: 0, to: items.count, by: Self.insertRows) {
                let part = items[start..<min(items.count, start + Self.insertRows)]
                var rows: [String] = [], values: [PostgresValue] = []
                for (offset, item) in part.enumerated() {
                    let p = values.count
                    rows.append("($\(p + 1), $\(p + 2), $\(p + 3), $\(p + 4), $\(p + 5), $\(p + 6), $\(p + 7), 'pending')")
                    values += [.text(id), .integer(Int64(start + offset)), .text(item.customID), .integer(Int64(item.kind)),
                               .bytes(item.request), .text(item.model), .text(item.lane.rawValue)]
                }
                try db.run("INSERT INTO batch_items (batch_id, seq, custom_id, kind, request, model, lane, state) VALUES "
                           + rows.joined(separator: ", "), values)
            }
            try PostgresNotifier.notify(db, "")  // new work for every replica's scheduler
        }
        return BatchRecord(id: id, label: label, state: .queued, total: items.count, succeeded: 0, failed: 0, cancelled: 0,
                           createdAt: Self.date(created), finishedAt: nil, vendorBatchIDs: [], cancelRequested: false)
    }

    public func batch(_ id: String) async throws -> BatchRecord? {
        // REPEATABLE READ: one snapshot for the three reads, so the counts and the state agree.
        try await pool.run { db in
            try db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { if db.isOpen { try? db.exec("COMMIT") } }
            return try Self.record(db, id)
        }
    }

    static func record(_ db: PostgresConnection, _ id: String) throws -> BatchRecord? {
        guard let row = try db.query("SELECT label, state, total, cancel_requested, created_at, finished_at FROM batches WHERE id = $1",
                                     [.text(id)]).first else { return nil }
        var counts: [String: Int] = [:]
        for count in try db.query("SELECT state, count(*) FROM batch_items WHERE batch_id = $1 GROUP BY state", [.text(id)]) {
            counts[count[0].text ?? ""] = Int(count[1].integer ?? 0)
        }
        let vendorIDs = try db.query("""
            SELECT vendor_batch_id FROM batch_chunks WHERE batch_id = $1 AND vendor_batch_id IS NOT NULL ORDER BY created_at, id
            """, [.text(id)]).compactMap { $0[0].text }
        return BatchRecord(
            id: id, label: row[0].text ?? "", state: BatchLifecycle(rawValue: row[1].text ?? "") ?? .failed,
            total: Int(row[2].integer ?? 0), succeeded: counts["succeeded"] ?? 0, failed: counts["failed"] ?? 0,
            cancelled: counts["cancelled"] ?? 0, createdAt: date(row[4].integer ?? 0),
            finishedAt: row[5].integer.map(date), vendorBatchIDs: vendorIDs, cancelRequested: row[3].bool ?? false)
    }

    public func finishedItems(of id: String, after order: Int64, limit: Int) async throws -> [FinishedItem] {
        try await pool.run { db in
            try db.query("""
                SELECT finished_order, custom_id, state, result, error_code, error_message FROM batch_items
                WHERE batch_id = $1 AND finished_order > $2 ORDER BY finished_order LIMIT $3
                """, [.text(id), .integer(order), .integer(Int64(limit))]).map { row in
                FinishedItem(order: row[0].integer ?? 0, customID: row[1].text ?? "",
                             state: BatchItemState(rawValue: row[2].text ?? "") ?? .failed, result: row[3].bytes,
                             errorCode: Int(row[4].integer ?? 0), errorMessage: row[5].text ?? "")
            }
        }
    }

    public func cancelBatch(_ id: String, now: Date) async throws -> BatchRecord? {
        let at = ms(now)
        return try await pool.transaction { db in
            // The row lock also orders this against markSubmitting (which reads the flag under a
            // share lock): a chunk is either sent before the cancel or never.
            guard try db.run("UPDATE batches SET cancel_requested = true WHERE id = $1", [.text(id)]) == 1 else { return nil }
            try Self.finishInBulk(db, batchID: id, state: .cancelled, code: SQLiteBatchStore.cancelledCode, message: SQLiteBatchStore.cancelledMessage, where: """
                batch_id = $1 AND (state = 'pending' OR (state = 'submitted' AND chunk_id IN
                    (SELECT id FROM batch_chunks WHERE batch_id = $1 AND state = 'preparing')))
                """)
            try db.run("UPDATE batch_chunks SET next_poll_at = $2 WHERE batch_id = $1 AND state = 'running'", [.text(id), .integer(at)])
            try Self.finishIfDone(db, id, at)
            return try Self.record(db, id)
        }
    }

    public func removeFinished(before cutoff: Date) async throws -> Int {
        let at = ms(cutoff)
        return try await pool.transaction(durable: false) { db in
            try db.run("DELETE FROM batches WHERE finished_at IS NOT NULL AND finished_at < $1", [.integer(at)])
        }
    }

    // MARK: - recovery

    /// Takes over what other owners held past their leases' end: running items go back to pending,
    /// chunks still preparing release their items, chunks caught submitting are abandoned (never
    /// resubmitted). Live replicas renew their leases, so only a dead (or cut off) one loses work.
    public func recover(owner: String, now: Date) async throws -> BatchRecovery {
        let at = ms(now)
        return try await pool.transaction { db in
            var found = BatchRecovery()
            let me = PostgresValue.text(owner)
            found.itemsReleased = try db.run("""
                UPDATE batch_items SET state = 'pending', lease_owner = NULL, lease_until = NULL
                WHERE lane = 'local' AND state = 'running' AND lease_owner IS DISTINCT FROM $1 AND lease_until < $2
                """, [me, .integer(at)])
            let released = try db.query("""
                SELECT id FROM batch_chunks WHERE state = 'preparing' AND lease_owner IS DISTINCT FROM $1 AND lease_until < $2
                FOR UPDATE SKIP LOCKED
                """, [me, .integer(at)]).compactMap { $0[0].text }
            for chunkID in released {
                try db.run("UPDATE batch_items SET state = 'pending', chunk_id = NULL WHERE chunk_id = $1 AND state = 'submitted'", [.text(chunkID)])
                try db.run("DELETE FROM batch_chunks WHERE id = $1", [.text(chunkID)])
            }
            found.chunksReleased = released.count
            let abandoned = try db.query("""
                SELECT c.id, c.batch_id, c.model, b.label FROM batch_chunks c JOIN batches b ON b.id = c.batch_id
                WHERE c.state = 'submitting' AND c.lease_owner IS DISTINCT FROM $1 AND c.lease_until < $2
                FOR UPDATE OF c SKIP LOCKED
                """, [me, .integer(at)])
            for chunk in abandoned {
                guard let chunkID = chunk[0].text, let batchID = chunk[1].text else { continue }
                let name = SQLiteBatchStore.displayName(batchID: batchID, chunkID: chunkID, label: chunk[3].text ?? "")
                let message = "the prism-server replica handing this item to \(chunk[2].text ?? "the vendor") in vendor batch '\(name)' stopped; "
                    + "the vendor may or may not have that batch, so the item was not sent again (it could run and be billed twice): "
                    + "check the vendor's console for that name, and resubmit the item if it is not there"
                try Self.finishInBulk(db, batchID: batchID, state: .failed, code: SQLiteBatchStore.abandonedCode, message: message,
                                      where: "chunk_id = $2 AND state = 'submitted'", extra: [.text(chunkID)])
                try db.run("UPDATE batch_chunks SET state = 'abandoned', lease_owner = NULL, lease_until = NULL WHERE id = $1", [.text(chunkID)])
                found.chunksAbandoned += 1
            }
            // Items put back to pending in a batch cancelled meanwhile do not start again.
            for row in try db.query("""
                SELECT DISTINCT batch_id FROM batch_items WHERE state = 'pending' AND batch_id IN (SELECT id FROM batches WHERE cancel_requested)
                """) {
                guard let batchID = row[0].text else { continue }
                try Self.finishInBulk(db, batchID: batchID, state: .cancelled, code: SQLiteBatchStore.cancelledCode,
                                      message: SQLiteBatchStore.cancelledMessage, where: "batch_id = $1 AND state = 'pending'")
            }
            if found != BatchRecovery() {
                try PostgresNotifier.notify(db, "")
                for row in try db.query("SELECT id FROM batches WHERE state IN ('queued', 'running')") {
                    if let batchID = row[0].text { try Self.finishIfDone(db, batchID, at) }
                }
            }
            return found
        }
    }

    // MARK: - transitions shared by both files

    /// Locks batch `id`'s row until the transaction ends: completion orders of one batch are
    /// assigned by one transaction at a time (NO KEY UPDATE does not block inserts of its items).
    /// Its results change: its streams on every replica are told at commit.
    static func lockBatch(_ db: PostgresConnection, _ id: String) throws {
        try db.query("SELECT 1 FROM batches WHERE id = $1 FOR NO KEY UPDATE", [.text(id)])
        try PostgresNotifier.notify(db, id)
    }

    /// Finishes every item matching `condition` ($1 is the batch id, $2... `extra`) in one
    /// statement, after the batch's last finished item, in submit order.
    static func finishInBulk(_ db: PostgresConnection, batchID: String, state: BatchItemState, code: Int, message: String,
                             where condition: String, extra: [PostgresValue] = []) throws {
        try lockBatch(db, batchID)
        let base = try db.scalar("SELECT coalesce(max(finished_order), 0) FROM batch_items WHERE batch_id = $1 AND finished_order IS NOT NULL",
                                 [.text(batchID)])?.integer ?? 0
        let n = extra.count
        try db.run("""
            UPDATE batch_items SET state = $\(n + 2), error_code = $\(n + 3), error_message = $\(n + 4), finished_order = $\(n + 5) + seq + 1,
                lease_owner = NULL, lease_until = NULL
            WHERE \(condition)
            """, [.text(batchID)] + extra + [.text(state.rawValue), .integer(Int64(code)), .text(message), .integer(base)])
    }

    /// running|queued → done|cancelled|failed once no item of the batch is unfinished.
    static func finishIfDone(_ db: PostgresConnection, _ batchID: String, _ at: Int64) throws {
        try db.run("""
            UPDATE batches SET finished_at = $2, state = CASE
                WHEN cancel_requested THEN 'cancelled'
                WHEN total > 0 AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state <> 'failed') THEN 'failed'
                ELSE 'done' END
            WHERE id = $1 AND state IN ('queued', 'running')
              AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_id = $1 AND state IN ('pending', 'running', 'submitted'))
            """, [.text(batchID), .integer(at)])
    }

    func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
