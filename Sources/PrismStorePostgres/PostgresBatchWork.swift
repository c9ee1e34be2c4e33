// The shared BatchStore's side for every replica's scheduler: items and due polls leased with FOR UPDATE
// SKIP LOCKED (never one row to two replicas), chunks through preparing → submitting (markSubmitting,
// the one gate before a vendor call) → running, each result recorded once (writes guarded by state).
import Foundation
import PrismStore

extension PostgresBatchStore {
    public func claimLocal(owner: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [ClaimedItem] {
        let (at, until) = (ms(now), ms(leaseUntil))
        // Not durable: a claim lost with the server's power is only work that runs again.
        return try await pool.transaction(durable: false) { db in
            let items = try db.query("""
                UPDATE batch_items i SET state = 'running', lease_owner = $1, lease_until = $2
                FROM (SELECT batch_id, seq FROM batch_items WHERE lane = 'local' AND state = 'pending'
                      AND (not_before IS NULL OR not_before <= $4) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) free
                WHERE i.batch_id = free.batch_id AND i.seq = free.seq
                RETURNING i.batch_id, i.seq, i.custom_id, i.kind, i.request, i.model, i.attempts
                """, [.text(owner), .integer(until), .integer(Int64(limit)), .integer(at)]).map(Self.claimed)
            try Self.markRunning(db, Set(items.map(\.batchID)))
            return items.sorted { ($0.batchID, $0.seq) < ($1.batchID, $1.seq) }
        }
    }

    public func retryLater(batchID: String, seq: Int, notBefore: Date) async throws {
        let at = ms(notBefore)
        try await pool.transaction(durable: false) { db in
            try db.run("""
                UPDATE batch_items SET state = 'pending', attempts = attempts + 1, not_before = $3, lease_owner = NULL, lease_until = NULL
                WHERE batch_id = $1 AND seq = $2 AND state = 'running'
                """, [.text(batchID), .integer(Int64(seq)), .integer(at)])
        }
    }

    /// The heartbeat: extends `owner`'s leases on running items and on the chunks it prepares,
    /// submits or polls.
    public func renewLeases(owner: String, until: Date) async throws {
        let at = ms(until)
        try await pool.transaction(durable: false) { db in
            try db.run("UPDATE batch_items SET lease_until = $2 WHERE lane = 'local' AND state = 'running' AND lease_owner = $1",
                       [.text(owner), .integer(at)])
            try db.run("""
                UPDATE batch_chunks SET lease_until = greatest(lease_until, $2)
                WHERE lease_owner = $1 AND state IN ('preparing', 'submitting', 'running')
                """, [.text(owner), .integer(at)])
        }
    }

    @discardableResult
    public func finishItems(batchID: String, _ outcomes: [ItemOutcome], now: Date) async throws -> Int {
        let at = ms(now)
        return try await pool.transaction { db in
            let recorded = try Self.record(db, batchID: batchID, outcomes, unfinished: "('pending', 'running', 'submitted')")
            try Self.finishIfDone(db, batchID, at)
            return recorded
        }
    }

    public func prepareChunk(id: String, owner: String, maxItems: Int, maxBytes: Int, now: Date) async throws -> (VendorChunk, [ClaimedItem])? {
        let (at, until) = (ms(now), ms(now.addingTimeInterval(chunkLeaseSeconds)))
        return try await pool.transaction { db in
            guard let first = try db.query("""
                SELECT batch_id, model FROM batch_items WHERE lane = 'vendor' AND state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
                """).first, let batchID = first[0].text, let model = first[1].text else { return nil }
            // One replica at a time takes a batch's items for a model: two taking parts of them at
            // once would split what fits one vendor batch into two. The second waits here, then
            // finds what the first left (nothing, unless the bounds cut the first chunk short).
            try db.query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", [.text(batchID), .text(model)])
            // In submit order, up to maxItems and maxBytes of requests (the first whatever its size).
            let candidates = try db.query("""
                SELECT seq, octet_length(request)::bigint FROM batch_items
                WHERE batch_id = $1 AND model = $2 AND lane = 'vendor' AND state = 'pending' ORDER BY seq LIMIT $3 FOR UPDATE
                """, [.text(batchID), .text(model), .integer(Int64(maxItems))])
            guard !candidates.isEmpty else { return nil }
            var taken: [Int64] = [], bytes: Int64 = 0
            for row in candidates {
                bytes += row[1].integer ?? 0
                guard taken.isEmpty || bytes <= Int64(maxBytes) else { break }
                taken.append(row[0].integer ?? 0)
            }
            try db.run("""
                INSERT INTO batch_chunks (id, batch_id, model, state, lease_owner, lease_until, created_at) VALUES ($1, $2, $3, 'preparing', $4, $5, $6)
                """, [.text(id), .text(batchID), .text(model), .text(owner), .integer(until), .integer(at)])
            let items = try db.query("""
                UPDATE batch_items SET state = 'submitted', chunk_id = $1
                WHERE batch_id = $2 AND seq = ANY(string_to_array($3, ',')::bigint[]) AND state = 'pending'
                RETURNING batch_id, seq, custom_id, kind, request, model, attempts
                """, [.text(id), .text(batchID), .text(taken.map(String.init).joined(separator: ","))]).map(Self.claimed)
            try Self.markRunning(db, [batchID])
            let label = try db.scalar("SELECT label FROM batches WHERE id = $1", [.text(batchID)])?.text ?? ""
            let chunk = VendorChunk(id: id, batchID: batchID, label: label, model: model, state: .preparing, vendorBatchID: nil, polls: 0, cancelRequested: false)
            return (chunk, items.sorted { $0.seq < $1.seq })
        }
    }

    public func moveChunkToLocal(_ chunkID: String) async throws {
        try await pool.transaction { db in
            try db.run("UPDATE batch_items SET state = 'pending', lane = 'local', chunk_id = NULL WHERE chunk_id = $1 AND state = 'submitted'", [.text(chunkID)])
            try db.run("DELETE FROM batch_chunks WHERE id = $1 AND state = 'preparing'", [.text(chunkID)])
            try PostgresNotifier.notify(db, "")
        }
    }

    /// The single gate before a vendor call: only a chunk still preparing (not taken over by a
    /// recovery meanwhile) of a batch not cancelled becomes submitting, once, durably.
    public func markSubmitting(_ chunkID: String) async throws -> Bool {
        try await pool.transaction { db in
            // A share lock on the batch's row: a cancel (which updates it) commits wholly before
            // or after this transaction, never between its read and its write.
            let cancelled = try db.scalar("""
                SELECT b.cancel_requested FROM batches b JOIN batch_chunks c ON c.batch_id = b.id WHERE c.id = $1 FOR SHARE OF b
                """, [.text(chunkID)])?.bool ?? true
            let marked = try !cancelled && db.run("""
                UPDATE batch_chunks SET state = 'submitting' WHERE id = $1 AND state = 'preparing'
                """, [.text(chunkID)]) == 1
            if !marked { try db.run("DELETE FROM batch_chunks WHERE id = $1 AND state = 'preparing'", [.text(chunkID)]) }
            return marked
        }
    }

    public func recordVendorBatch(_ chunkID: String, vendorBatchID: String, nextPoll: Date) async throws {
        let at = ms(nextPoll)
        try await pool.transaction { db in
            try db.run("""
                UPDATE batch_chunks SET state = 'running', vendor_batch_id = $2, next_poll_at = $3, lease_owner = NULL, lease_until = NULL
                WHERE id = $1 AND state = 'submitting'
                """, [.text(chunkID), .text(vendorBatchID), .integer(at)])
        }
    }

    public func dueChunks(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [VendorChunk] {
        let (at, until) = (ms(now), ms(leaseUntil))
        return try await pool.transaction(durable: false) { db in
            try db.query("""
                UPDATE batch_chunks c SET lease_owner = $1, lease_until = $2
                FROM (SELECT id FROM batch_chunks WHERE state = 'running' AND next_poll_at <= $3
                      AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_poll_at LIMIT $4 FOR UPDATE SKIP LOCKED) due, batches b
                WHERE c.id = due.id AND b.id = c.batch_id
                RETURNING c.id, c.batch_id, c.model, c.vendor_batch_id, c.polls, b.cancel_requested AND NOT c.cancel_sent, b.label, c.next_poll_at
                """, [.text(owner), .integer(until), .integer(at), .integer(Int64(limit))])
                .sorted { ($0[7].integer ?? 0, $0[0].text ?? "") < ($1[7].integer ?? 0, $1[0].text ?? "") }
                .map { row in
                    VendorChunk(id: row[0].text ?? "", batchID: row[1].text ?? "", label: row[6].text ?? "", model: row[2].text ?? "", state: .running,
                                vendorBatchID: row[3].text, polls: Int(row[4].integer ?? 0), cancelRequested: row[5].bool ?? false)
                }
        }
    }

    public func reschedulePoll(_ chunkID: String, nextPoll: Date) async throws {
        let at = ms(nextPoll)
        try await pool.transaction(durable: false) { db in
            try db.run("""
                UPDATE batch_chunks SET polls = polls + 1, next_poll_at = $2, lease_owner = NULL, lease_until = NULL
                WHERE id = $1 AND state = 'running'
                """, [.text(chunkID), .integer(at)])
        }
    }

    public func markCancelSent(_ chunkID: String) async throws {
        try await pool.transaction { db in
            try db.run("UPDATE batch_chunks SET cancel_sent = true WHERE id = $1", [.text(chunkID)])
        }
    }

    public func chunkItems(_ chunkID: String) async throws -> [Int: String] {
        try await pool.run { db in
            var items: [Int: String] = [:]
            for row in try db.query("SELECT seq, custom_id FROM batch_items WHERE chunk_id = $1", [.text(chunkID)]) {
                if let seq = row[0].integer, let id = row[1].text { items[Int(seq)] = id }
            }
            return items
        }
    }

    public func finishChunk(_ chunkID: String, state: VendorChunkState, outcomes: [ItemOutcome], leftover: ItemOutcome, now: Date) async throws {
        let at = ms(now)
        try await pool.transaction { db in
            guard let batchID = try db.scalar("SELECT batch_id FROM batch_chunks WHERE id = $1", [.text(chunkID)])?.text else { return }
            _ = try Self.record(db, batchID: batchID, outcomes, unfinished: "('submitted')")
            try Self.finishInBulk(db, batchID: batchID, state: leftover.state, code: leftover.errorCode, message: leftover.errorMessage,
                                  where: "chunk_id = $2 AND state = 'submitted'", extra: [.text(chunkID)])
            try db.run("UPDATE batch_chunks SET state = $2, lease_owner = NULL, lease_until = NULL WHERE id = $1",
                       [.text(chunkID), .text(state.rawValue)])
            try Self.finishIfDone(db, batchID, at)
        }
    }

    public func nextDue(after now: Date) async throws -> Date? {
        let at = ms(now)
        return try await pool.run { db in
            try db.scalar("""
                SELECT min(due) FROM (SELECT min(next_poll_at) AS due FROM batch_chunks WHERE state = 'running'
                  UNION ALL SELECT min(not_before) FROM batch_items WHERE state = 'pending' AND not_before IS NOT NULL AND not_before > $1) AS next
                """, [.integer(at)])?.integer.map(Self.date)
        }
    }

    // MARK: - helpers

    /// Records each outcome on its item if the item is still in one of `unfinished`, each taking
    /// the next completion order (the batch's row locked meanwhile). Returns how many were recorded.
    static func record(_ db: PostgresConnection, batchID: String, _ outcomes: [ItemOutcome], unfinished: String) throws -> Int {
        guard !outcomes.isEmpty else { return 0 }
        try lockBatch(db, batchID)
        var order = try db.scalar("SELECT coalesce(max(finished_order), 0) FROM batch_items WHERE batch_id = $1 AND finished_order IS NOT NULL",
                                  [.text(batchID)])?.integer ?? 0
        var recorded = 0
        for outcome in outcomes {
            let changed = try db.run("""
                UPDATE batch_items SET state = $3, result = $4, error_code = $5, error_message = $6, lease_owner = NULL, lease_until = NULL,
                    finished_order = $7
                WHERE batch_id = $1 AND seq = $2 AND state IN \(unfinished)
                """, [.text(batchID), .integer(Int64(outcome.seq)), .text(outcome.state.rawValue), outcome.result.map(PostgresValue.bytes) ?? .null,
                      .integer(Int64(outcome.errorCode)), .text(outcome.errorMessage), .integer(order + 1)])
            order += Int64(changed)
            recorded += changed
        }
        return recorded
    }

    static func markRunning(_ db: PostgresConnection, _ batchIDs: Set<String>) throws {
        for id in batchIDs.sorted() { try db.run("UPDATE batches SET state = 'running' WHERE id = $1 AND state = 'queued'", [.text(id)]) }
    }

    static func claimed(_ row: [PostgresValue]) -> ClaimedItem {
        ClaimedItem(batchID: row[0].text ?? "", seq: Int(row[1].integer ?? 0), customID: row[2].text ?? "",
                    kind: Int(row[3].integer ?? 0), request: row[4].bytes ?? Data(), model: row[5].text ?? "", attempts: Int(row[6].integer ?? 0))
    }
}
