// The embedded usage store: the `usage` table of the EmbeddedStore, one row per key, model and
// UTC day, added to by an upsert in the writer's transaction (atomic against other processes on
// the same data folder) and read by `prism usage`.
import Foundation

public final class SQLiteUsageStore: UsageStore {
    private let store: EmbeddedStore

    public init(store: EmbeddedStore) {
        self.store = store
    }

    public func add(_ record: UsageRecord) async throws {
        // Usage lost with the machine's power is a few answers' worth: NORMAL sync is enough.
        _ = try await store.write(durable: false) { db in
            try db.run("""
                INSERT INTO usage (key, model, day, requests, input_tokens, output_tokens, cost_micros)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                ON CONFLICT (day, key, model) DO UPDATE SET
                    requests = requests + excluded.requests,
                    input_tokens = input_tokens + excluded.input_tokens,
                    output_tokens = output_tokens + excluded.output_tokens,
                    cost_micros = cost_micros + excluded.cost_micros
                """, [.text(record.key), .text(record.model), .text(record.day), .integer(record.requests),
                      .integer(record.inputTokens), .integer(record.outputTokens), .integer(record.costMicros)])
        }
    }

    public func rows(key: String?, since: String?) async throws -> [UsageRecord] {
        try await store.read { db in
            try db.query("""
                SELECT key, model, day, requests, input_tokens, output_tokens, cost_micros FROM usage
                WHERE (?1 IS NULL OR key = ?1) AND (?2 IS NULL OR day >= ?2)
                ORDER BY day, key, model
                """, [key.map { .text($0) } ?? .null, since.map { .text($0) } ?? .null]).map { row in
                UsageRecord(key: row[0].text ?? "", model: row[1].text ?? "", day: row[2].text ?? "",
                            requests: row[3].integer ?? 0, inputTokens: row[4].integer ?? 0,
                            outputTokens: row[5].integer ?? 0, costMicros: row[6].integer ?? 0)
            }
        }
    }
}
