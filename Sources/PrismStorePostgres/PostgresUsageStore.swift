// The shared UsageStore: one row per key, model and UTC day in PostgreSQL, added to with one
// INSERT ... ON CONFLICT DO UPDATE, which is atomic against every other replica's adds.
import Foundation
import PrismStore

public final class PostgresUsageStore: UsageStore {
    private let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public func add(_ record: UsageRecord) async throws {
        try await pool.transaction { db in
            try db.run("""
                INSERT INTO usage (key, model, day, requests, input_tokens, output_tokens, cost_micros) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (day, key, model) DO UPDATE SET requests = usage.requests + EXCLUDED.requests,
                    input_tokens = usage.input_tokens + EXCLUDED.input_tokens, output_tokens = usage.output_tokens + EXCLUDED.output_tokens,
                    cost_micros = usage.cost_micros + EXCLUDED.cost_micros
                """, [.text(record.key), .text(record.model), .text(record.day), .integer(record.requests), .integer(record.inputTokens),
                      .integer(record.outputTokens), .integer(record.costMicros)])
        }
    }

    public func rows(key: String?, since: String?) async throws -> [UsageRecord] {
        try await pool.run { db in
            try db.query("""
                SELECT key, model, day, requests, input_tokens, output_tokens, cost_micros FROM usage
                WHERE ($1::text IS NULL OR key = $1) AND ($2::text IS NULL OR day >= $2) ORDER BY day, key, model
                """, [key.map(PostgresValue.text) ?? .null, since.map(PostgresValue.text) ?? .null]).map { row in
                UsageRecord(key: row[0].text ?? "", model: row[1].text ?? "", day: row[2].text ?? "", requests: row[3].integer ?? 0,
                            inputTokens: row[4].integer ?? 0, outputTokens: row[5].integer ?? 0, costMicros: row[6].integer ?? 0)
            }
        }
    }
}
