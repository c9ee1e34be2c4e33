// The PostgreSQL schema, versioned like the embedded one (PrismStore's Migrations.swift), and its
// migration at start: all steps in one transaction under an advisory lock, so replicas starting
// together take turns, the first migrates and the others find the schema current.
import Foundation
import PrismStore

public enum PostgresSchema {
    /// Every migration, in order, numbered from 1 without gaps. Times are unix milliseconds (bigint),
    /// as in the embedded store; requests, results and page images are bytea.
    public static let migrations: [Migration] = [
        Migration(version: 1, summary: "batches", sql: """
            CREATE TABLE batches (
                id text PRIMARY KEY,
                label text NOT NULL,
                state text NOT NULL,                        -- BatchLifecycle
                total bigint NOT NULL,
                cancel_requested boolean NOT NULL DEFAULT false,
                created_at bigint NOT NULL,
                finished_at bigint
            );
            CREATE INDEX batches_finished ON batches(finished_at) WHERE finished_at IS NOT NULL;
            CREATE INDEX batches_open ON batches(state) WHERE state IN ('queued', 'running');
            CREATE TABLE batch_chunks (
                id text PRIMARY KEY,
                batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                model text NOT NULL,
                state text NOT NULL,                        -- VendorChunkState
                vendor_batch_id text,
                polls bigint NOT NULL DEFAULT 0,
                cancel_sent boolean NOT NULL DEFAULT false,
                next_poll_at bigint,
                lease_owner text,                           -- the replica preparing, submitting or polling it
                lease_until bigint,
                created_at bigint NOT NULL
            );
            CREATE INDEX batch_chunks_batch ON batch_chunks(batch_id);
            CREATE INDEX batch_chunks_due ON batch_chunks(next_poll_at) WHERE state = 'running';
            CREATE INDEX batch_chunks_leased ON batch_chunks(lease_until) WHERE state IN ('preparing', 'submitting');
            CREATE TABLE batch_items (
                id bigint GENERATED ALWAYS AS IDENTITY,     -- submit order across batches: oldest first
                batch_id text NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                seq bigint NOT NULL,
                custom_id text NOT NULL,
                kind bigint NOT NULL,
                request bytea NOT NULL,
                model text NOT NULL,
                lane text NOT NULL,                         -- BatchLane
                state text NOT NULL,                        -- BatchItemState
                chunk_id text REFERENCES batch_chunks(id) ON DELETE SET NULL,
                lease_owner text,
                lease_until bigint,
                attempts bigint NOT NULL DEFAULT 0,
                not_before bigint,
                result bytea,
                error_code bigint,
                error_message text,
                finished_order bigint,                      -- completion order within the batch
                PRIMARY KEY (batch_id, seq),
                UNIQUE (batch_id, custom_id)
            );
            CREATE INDEX batch_items_pending ON batch_items(lane, id) WHERE state = 'pending';
            CREATE INDEX batch_items_leased ON batch_items(lease_until) WHERE state = 'running';
            CREATE INDEX batch_items_state ON batch_items(batch_id, state);
            CREATE INDEX batch_items_chunk ON batch_items(chunk_id) WHERE chunk_id IS NOT NULL;
            CREATE INDEX batch_items_retry ON batch_items(not_before) WHERE state = 'pending' AND not_before IS NOT NULL;
            CREATE INDEX batch_items_finished ON batch_items(batch_id, finished_order) WHERE finished_order IS NOT NULL;
            """),
        Migration(version: 2, summary: "document index", sql: """
            CREATE TABLE index_documents (
                index_name text NOT NULL,
                document_id text NOT NULL,
                title text NOT NULL,
                mime_type text NOT NULL,
                pages bigint NOT NULL,
                chunks bigint NOT NULL,
                images bigint NOT NULL,
                stored_bytes bigint NOT NULL,
                indexed_at bigint NOT NULL,
                PRIMARY KEY (index_name, document_id)
            );
            CREATE TABLE index_pages (
                index_name text NOT NULL,
                document_id text NOT NULL,
                page bigint NOT NULL,
                text text NOT NULL,
                image bytea,
                image_mime text NOT NULL,
                PRIMARY KEY (index_name, document_id, page)
            );
            -- The chunks and their words: English stemming, weights by field (text D, title C,
            -- heading B) that ts_rank_cd scales as the embedded store's bm25 weights do.
            CREATE TABLE index_chunks (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                index_name text NOT NULL,
                document_id text NOT NULL,
                page bigint NOT NULL,
                heading text NOT NULL,
                text text NOT NULL,
                title text NOT NULL,
                start_seconds double precision,
                end_seconds double precision,
                words tsvector NOT NULL
            );
            CREATE INDEX index_chunks_document ON index_chunks(index_name, document_id);
            CREATE INDEX index_chunks_words ON index_chunks USING gin(words);
            -- Embeddings: float32 little-endian, L2-normalised, ranked in the server (no pgvector
            -- in Debian 12); a version per index tells replicas their copy in memory is stale.
            CREATE TABLE index_vectors (
                chunk_id bigint PRIMARY KEY REFERENCES index_chunks(id) ON DELETE CASCADE,
                index_name text NOT NULL,
                model text NOT NULL,
                vector bytea NOT NULL
            );
            CREATE INDEX index_vectors_model ON index_vectors(index_name, model);
            CREATE TABLE index_versions (
                index_name text PRIMARY KEY,
                version bigint NOT NULL
            );
            """),
        Migration(version: 3, summary: "usage", sql: """
            CREATE TABLE usage (
                key text NOT NULL,
                model text NOT NULL,
                day text NOT NULL,                          -- UTC, YYYY-MM-DD
                requests bigint NOT NULL DEFAULT 0,
                input_tokens bigint NOT NULL DEFAULT 0,
                output_tokens bigint NOT NULL DEFAULT 0,
                cost_micros bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (day, key, model)
            );
            CREATE INDEX usage_key ON usage(key, day);
            """),
    ]

    /// Brings the database to the newest version in `migrations` under the advisory lock, in one
    /// transaction; returns the version it found. Refuses a database written by a newer build.
    @discardableResult
    public static func migrate(_ pool: PostgresPool, _ migrations: [Migration] = PostgresSchema.migrations) async throws -> Int {
        try await pool.transaction(ungated: true) { db in
            // Held to the transaction's end: a replica starting meanwhile waits here, then finds
            // the schema current. The version table is created under the lock too.
            try db.query("SELECT pg_advisory_xact_lock($1)", [.integer(PostgresLimits.migrationLockKey)])
            try db.exec("CREATE TABLE IF NOT EXISTS prism_schema (version bigint NOT NULL, summary text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            let found = Int(try db.scalar("SELECT coalesce(max(version), 0) FROM prism_schema")?.integer ?? 0)
            let latest = migrations.last?.version ?? 0
            guard found <= latest else {
                throw StoreError("the PostgreSQL database at \(pool.server) has schema version \(found), newer than this build of Prism knows (\(latest)): run the newer build, or point PRISM_DATABASE_URL at another database")
            }
            for migration in migrations where migration.version > found {
                try db.exec(migration.sql)
                try db.run("INSERT INTO prism_schema (version, summary) VALUES ($1, $2)", [.integer(Int64(migration.version)), .text(migration.summary)])
            }
            return found
        }
    }
}
