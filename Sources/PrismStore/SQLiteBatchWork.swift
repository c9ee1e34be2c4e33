// The embedded BatchStore's side for the scheduler: leasing local items, taking vendor chunks
// through preparing → submitting → running, leasing due polls, and recording results once (each
// write guarded by the item's state, so a result that raced a cancel or a recovery is dropped).
import Foundation

extension SQLiteBatchStore {
    public func claimLocal(owner: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [ClaimedItem] {
        let (at, until) = (ms(now), ms(leaseUntil))
        // NORMAL sync: a claim lost with the power is only work that runs again.
        return try await store.write(durable: false) { db in
            let items = try db.query("""
                UPDATE batch_items SET state = 'running', lease_owner = ?1, lease_until = ?2
                WHERE rowid IN (SELECT rowid FROM batch_items WHERE lane = 'local' AND state = 'pending'
                                AND (not_before IS NULL OR not_before <= ?4) ORDER BY rowid LIMIT ?3)
                RETURNING batch_id, seq, custom_id, kind, request, model, attempts
                """, [.text(owner), .integer(until), .integer(Int64(limit)), .integer(at)]).map(Self.claimed)
            try Self.markRunning(db, Set(items.map(\.batchID)))
            return items.sorted { ($0.batchID, $0.seq) < ($1.batchID, $1.seq) }
        }
    }

    public func retryLater(batchID: String, seq: Int, notBefore: Date) async throws {
        let at = ms(notBefore)
        try await store.write(durable: false) { db in
            try db.run("""
                UPDATE batch_items SET state = 'pending', attempts = attempts + 1, not_before = ?3, lease_owner = NULL, lease_until = NULL
                WHERE batch_id = ?1 AND seq = ?2 AND state = 'running'
                """, [.text(batchID), .integer(Int64(seq)), .integer(at)])
        }
    }

    public func renewLeases(owner: String, until: Date) async throws {
        let at = ms(until)
        try await store.write(durable: false) { db in
            try db.run("UPDATE batch_items SET lease_until = ?2 WHERE lane = 'local' AND state = 'running' AND lease_owner = ?1",
                       [.text(owner), .integer(at)])
            // A chunk being polled, so a long poll is not handed out again meanwhile.
            try db.run("UPDATE batch_chunks SET lease_until = max(lease_until, ?2) WHERE state = 'running' AND lease_owner = ?1",
                       [.text(owner), .integer(at)])
        }
    }

    @discardableResult
    public func finishItems(batchID: String, _ outcomes: [ItemOutcome], now: Date) async throws -> Int {
        let at = ms(now)
        // Durable: a result the client may have read must not come back different after a crash.
        return try await store.write(durable: true) { db in
            let recorded = try Self.record(db, batchID: batchID, outcomes, unfinished: "('pending', 'running', 'submitted')")
            try Self.finishIfDone(db, batchID, at)
            return recorded
        }
    }

    public func prepareChunk(id: String, owner: String, maxItems: Int, maxBytes: Int, now: Date) async throws -> (VendorChunk, [ClaimedItem])? {
        let at = ms(now)
        return try await store.write(durable: true) { db in
            guard let first = try db.query("SELECT batch_id, model FROM batch_items WHERE lane = 'vendor' AND state = 'pending' ORDER BY rowid LIMIT 1").first,
                  let batchID = first[0].text, let model = first[1].text else { return nil }
            try db.run("INSERT INTO batch_chunks (id, batch_id, model, state, lease_owner, created_at) VALUES (?1, ?2, ?3, 'preparing', ?4, ?5)",
                       [.text(id), .text(batchID), .text(model), .text(owner), .integer(at)])
            // In submit order, up to maxItems and maxBytes of requests (the first whatever its size).
            let items = try db.query("""
                UPDATE batch_items SET state = 'submitted', chunk_id = ?1
                WHERE rowid IN (SELECT rowid FROM (
                    SELECT rowid, length(request) AS size, sum(length(request)) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS running
                    FROM batch_items WHERE batch_id = ?2 AND model = ?3 AND lane = 'vendor' AND state = 'pending' ORDER BY seq LIMIT ?4)
                  WHERE running = size OR running <= ?5)
                RETURNING batch_id, seq, custom_id, kind, request, model, attempts
                """, [.text(id), .text(batchID), .text(model), .integer(Int64(maxItems)), .integer(Int64(maxBytes))]).map(Self.claimed)
            try Self.markRunning(db, [batchID])
            let label = try db.scalar("SELECT label FROM batches WHERE id = ?1", [.text(batchID)])?.text ?? ""
            let chunk = VendorChunk(id: id, batchID: batchID, label: label, model: model, state: .preparing, vendorBatchID: nil, polls: 0, cancelRequested: false)
            return (chunk, items.sorted { $0.seq < $1.seq })
        }
    }

    public func moveChunkToLocal(_ chunkID: String) async throws {
        try await store.write(durable: true) { db in
            try db.run("UPDATE batch_items SET state = 'pending', lane = 'local', chunk_id = NULL WHERE chunk_id = ?1 AND state = 'submitted'", [.text(chunkID)])
            try db.run("DELETE FROM batch_chunks WHERE id = ?1 AND state = 'preparing'", [.text(chunkID)])
        }
    }

    public func markSubmitting(_ chunkID: String) async throws -> Bool {
        // Durable: after a crash this row is what keeps the items from a second vendor batch.
        try await store.write(durable: true) { db in
            let marked = try db.run("""
                UPDATE batch_chunks SET state = 'submitting' WHERE id = ?1 AND state = 'preparing'
                  AND NOT EXISTS (SELECT 1 FROM batches WHERE id = batch_chunks.batch_id AND cancel_requested = 1)
                """, [.text(chunkID)]) == 1
            if !marked { try db.run("DELETE FROM batch_chunks WHERE id = ?1 AND state = 'preparing'", [.text(chunkID)]) }
            return marked
        }
    }

    public func recordVendorBatch(_ chunkID: String, vendorBatchID: String, nextPoll: Date) async throws {
        let at = ms(nextPoll)
        try await store.write(durable: true) { db in
            try db.run("""
                UPDATE batch_chunks SET state = 'running', vendor_batch_id = ?2, next_poll_at = ?3, lease_owner = NULL, lease_until = NULL
                WHERE id = ?1 AND state = 'submitting'
                """, [.text(chunkID), .text(vendorBatchID), .integer(at)])
        }
    }

    public func dueChunks(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [VendorChunk] {
        let (at, until) = (ms(now), ms(leaseUntil))
        return try await store.write(durable: false) { db in
            let ids = try db.query("""
                UPDATE batch_chunks SET lease_owner = ?1, lease_until = ?2
                WHERE id IN (SELECT id FROM batch_chunks WHERE state = 'running' AND next_poll_at <= ?3
                             AND (lease_until IS NULL OR lease_until < ?3) ORDER BY next_poll_at LIMIT ?4)
                RETURNING id
                """, [.text(owner), .integer(until), .integer(at), .integer(Int64(limit))]).compactMap { $0[0].text }
            return try ids.compactMap { id in
                try db.query("""
                    SELECT c.id, c.batch_id, c.model, c.vendor_batch_id, c.polls, b.cancel_requested = 1 AND c.cancel_sent = 0, b.label
                    FROM batch_chunks c JOIN batches b ON b.id = c.batch_id WHERE c.id = ?1
                    """, [.text(id)]).first.map { row in
                    VendorChunk(id: row[0].text ?? "", batchID: row[1].text ?? "", label: row[6].text ?? "", model: row[2].text ?? "", state: .running,
                                vendorBatchID: row[3].text, polls: Int(row[4].integer ?? 0), cancelRequested: row[5].integer == 1)
                }
            }
        }
    }

    public func reschedulePoll(_ chunkID: String, nextPoll: Date) async throws {
        let at = ms(nextPoll)
        try await store.write(durable: false) { db in
            try db.run("""
                UPDATE batch_chunks SET polls = polls + 1, next_poll_at = ?2, lease_owner = NULL, lease_until = NULL
                WHERE id = ?1 AND state = 'running'
                """, [.text(chunkID), .integer(at)])
        }
    }

    public func markCancelSent(_ chunkID: String) async throws {
        try await store.write(durable: true) { db in
            try db.run("UPDATE batch_chunks SET cancel_sent = 1 WHERE id = ?1", [.text(chunkID)])
        }
    }

    public func chunkItems(_ chunkID: String) async throws -> [Int: String] {
        try await store.read { db in
            var items: [Int: String] = [:]
            for row in try db.query("SELECT seq, custom_id FROM batch_items WHERE chunk_id = ?1", [.text(chunkID)]) {
                if let seq = row[0].integer, let id = row[1].text { items[Int(seq)] = id }
            }
            return items
        }
    }

    public func finishChunk(_ chunkID: String, state: VendorChunkState, outcomes: [ItemOutcome], leftover: ItemOutcome, now: Date) async throws {
        let at = ms(now)
        try await store.write(durable: true) { db in
            guard let batchID = try db.scalar("SELECT batch_id FROM batch_chunks WHERE id = ?1", [.text(chunkID)])?.text else { return }
            _ = try Self.record(db, batchID: batchID, outcomes, unfinished: "('submitted')")
            try Self.finishInBulk(db, batchID: batchID, state: leftover.state, code: leftover.errorCode, message: leftover.errorMessage,
                                  where: "chunk_id = ?2 AND state = 'submitted'", extra: [.text(chunkID)])
            try db.run("UPDATE batch_chunks SET state = ?2, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                       [.text(chunkID), .text(state.rawValue)])
            try Self.finishIfDone(db, batchID, at)
        }
    }

    public func nextDue(after now: Date) async throws -> Date? {
        let at = ms(now)
        // Retries already due wait for a free slot, whose end wakes the scheduler anyway.
        return try await store.read { db in
            try db.scalar("""
                SELECT min(due) FROM (SELECT min(next_poll_at) AS due FROM batch_chunks WHERE state = 'running'
                  UNION ALL SELECT min(not_before) FROM batch_items WHERE state = 'pending' AND not_before IS NOT NULL AND not_before > ?1)
                """, [.integer(at)])?.integer.map(SQLiteResponseCache.date)
        }
    }

    // MARK: - helpers

    /// Records each outcome on its item if the item is still in one of `unfinished`; one statement
    /// per item, each taking the next completion order. Returns how many were recorded. (The
    /// `IS NOT NULL` lets the order's max come from the partial index batch_items_finished in
    /// O(log n), not from a scan of the batch's items.)
    static func record(_ db: SQLiteConnection, batchID: String, _ outcomes: [ItemOutcome], unfinished: String) throws -> Int {
        guard !outcomes.isEmpty else { return 0 }
        let update = try db.prepare("""
            UPDATE batch_items SET state = ?3, result = ?4, error_code = ?5, error_message = ?6, lease_owner = NULL, lease_until = NULL,
                finished_order = (SELECT coalesce(max(finished_order), 0) + 1 FROM batch_items WHERE batch_id = ?1 AND finished_order IS NOT NULL)
            WHERE batch_id = ?1 AND seq = ?2 AND state IN \(unfinished)
            """)
        var recorded = 0
        for outcome in outcomes {
            try update.bind([.text(batchID), .integer(Int64(outcome.seq)), .text(outcome.state.rawValue),
                             outcome.result.map(SQLiteValue.blob) ?? .null, .integer(Int64(outcome.errorCode)), .text(outcome.errorMessage)])
            while try update.step() {}
            recorded += db.changes
            update.reset()
        }
        return recorded
    }

    static func markRunning(_ db: SQLiteConnection, _ batchIDs: Set<String>) throws {
        for id in batchIDs { try db.run("UPDATE batches SET state = 'running' WHERE id = ?1 AND state = 'queued'", [.text(id)]) }
    }

    static func claimed(_ row: [SQLiteValue]) -> ClaimedItem {
        ClaimedItem(batchID: row[0].text ?? "", seq: Int(row[1].integer ?? 0), customID: row[2].text ?? "",
                    kind: Int(row[3].integer ?? 0), request: row[4].blob ?? Data(), model: row[5].text ?? "", attempts: Int(row[6].integer ?? 0))
    }
}
