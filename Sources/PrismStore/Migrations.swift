// The embedded store's schema, as numbered migrations applied in order when the store opens. The
// version lives in SQLite's `user_version` header field, written in the same transaction as the
// migration, so a crash leaves either the old schema or the new one, never half of it.
import Foundation

/// One step of the schema. Never edit a released migration: add the next one.
public struct Migration: Sendable {
    public let version: Int
    public let summary: String
    public let sql: String

    public init(version: Int, summary: String, sql: String) {
        self.version = version
        self.summary = summary
        self.sql = sql
    }
}

public enum Schema {
    /// Every migration, in order, numbered from 1 without gaps.
    public static let migrations: [Migration] = [
        Migration(version: 1, summary: "response cache", sql: """
            CREATE TABLE response_cache (
                key BLOB PRIMARY KEY,          -- SHA-256 of the request as sent (CacheKey)
                answer BLOB NOT NULL,          -- the recorded answer, encoded by the generator
                bytes INTEGER NOT NULL,        -- what the entry counts against cache.max_disk_bytes
                created_at INTEGER NOT NULL,   -- unix ms; the oldest go first when over the bound
                expires_at INTEGER NOT NULL    -- unix ms; never served after this
            ) WITHOUT ROWID;
            CREATE INDEX response_cache_expires ON response_cache(expires_at);
            CREATE INDEX response_cache_created ON response_cache(created_at, bytes);  -- covers eviction
            -- The table's bytes, kept by triggers in the writing transaction: exact whoever writes
            -- (another process on the same data folder too), and read in O(1) by each store.
            CREATE TABLE response_cache_size (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
            INSERT INTO response_cache_size VALUES (1, 0);
            CREATE TRIGGER response_cache_added AFTER INSERT ON response_cache
                BEGIN UPDATE response_cache_size SET bytes = bytes + NEW.bytes; END;
            CREATE TRIGGER response_cache_removed AFTER DELETE ON response_cache
                BEGIN UPDATE response_cache_size SET bytes = bytes - OLD.bytes; END;
            """),
        Migration(version: 2, summary: "document index", sql: """
            CREATE TABLE index_documents (
                index_name TEXT NOT NULL,
                document_id TEXT NOT NULL,
                title TEXT NOT NULL,
                mime_type TEXT NOT NULL,
                pages INTEGER NOT NULL,
                chunks INTEGER NOT NULL,
                images INTEGER NOT NULL,
                stored_bytes INTEGER NOT NULL,  -- page images and text, what ListDocuments reports
                indexed_at INTEGER NOT NULL,    -- unix ms
                PRIMARY KEY (index_name, document_id)
            ) WITHOUT ROWID;
            CREATE TABLE index_pages (
                index_name TEXT NOT NULL,
                document_id TEXT NOT NULL,
                page INTEGER NOT NULL,          -- 1-based
                text TEXT NOT NULL,             -- text layer or OCR
                image BLOB,                     -- fitted page image for answering
                image_mime TEXT NOT NULL,
                PRIMARY KEY (index_name, document_id, page)
            ) WITHOUT ROWID;
            CREATE TABLE index_chunks (
                id INTEGER PRIMARY KEY,         -- the rowid of the chunk's row in index_fts
                index_name TEXT NOT NULL,
                document_id TEXT NOT NULL,
                page INTEGER NOT NULL,          -- 0: no pages
                start_seconds REAL,
                end_seconds REAL
            );
            CREATE INDEX index_chunks_document ON index_chunks(index_name, document_id);
            -- The chunks' words: BM25 ranking, Porter stemming over Unicode words without diacritics.
            CREATE VIRTUAL TABLE index_fts USING fts5(text, heading, title, tokenize = 'porter unicode61 remove_diacritics 2');
            -- The chunks' embeddings when an embedding model is configured (index.embed_model).
            CREATE TABLE index_vectors (
                chunk_id INTEGER PRIMARY KEY,   -- index_chunks.id
                index_name TEXT NOT NULL,
                model TEXT NOT NULL,            -- provider/model: vectors of different models never meet
                vector BLOB NOT NULL            -- float32 little-endian, L2-normalised
            );
            CREATE INDEX index_vectors_model ON index_vectors(index_name, model);
            """),
        Migration(version: 3, summary: "batches", sql: """
            CREATE TABLE batches (
                id TEXT PRIMARY KEY,
                label TEXT NOT NULL,
                state TEXT NOT NULL,                      -- BatchLifecycle
                total INTEGER NOT NULL,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,              -- unix ms
                finished_at INTEGER                       -- unix ms; NULL until finished
            );
            CREATE INDEX batches_finished ON batches(finished_at) WHERE finished_at IS NOT NULL;
            CREATE TABLE batch_chunks (
                id TEXT PRIMARY KEY,
                batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                state TEXT NOT NULL,                      -- VendorChunkState
                vendor_batch_id TEXT,                     -- recorded after the vendor's answer
                polls INTEGER NOT NULL DEFAULT 0,
                cancel_sent INTEGER NOT NULL DEFAULT 0,   -- the vendor was asked to cancel
                next_poll_at INTEGER,                     -- unix ms
                lease_owner TEXT,
                lease_until INTEGER,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX batch_chunks_batch ON batch_chunks(batch_id);
            CREATE INDEX batch_chunks_due ON batch_chunks(next_poll_at) WHERE state = 'running';
            CREATE TABLE batch_items (
                batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,                     -- position in SubmitBatchRequest.items
                custom_id TEXT NOT NULL,
                kind INTEGER NOT NULL,                    -- 1 generate, 2 extract
                request BLOB NOT NULL,                    -- the request as sent
                model TEXT NOT NULL,                      -- chosen at submit
                lane TEXT NOT NULL,                       -- BatchLane
                state TEXT NOT NULL,                      -- BatchItemState
                chunk_id TEXT REFERENCES batch_chunks(id) ON DELETE SET NULL,
                lease_owner TEXT,
                lease_until INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,      -- runs that ended in a passing failure
                not_before INTEGER,                       -- unix ms; a retried item waits until then
                result BLOB,                              -- the encoded answer, or NULL with error_*
                error_code INTEGER,
                error_message TEXT,
                finished_order INTEGER,                   -- completion order within the batch
                PRIMARY KEY (batch_id, seq),
                UNIQUE (batch_id, custom_id)
            );
            CREATE INDEX batch_items_state ON batch_items(batch_id, state);
            CREATE INDEX batch_items_lane ON batch_items(lane, state);
            CREATE INDEX batch_items_chunk ON batch_items(chunk_id) WHERE chunk_id IS NOT NULL;
            CREATE INDEX batch_items_retry ON batch_items(not_before) WHERE state = 'pending' AND not_before IS NOT NULL;
            CREATE INDEX batch_items_finished ON batch_items(batch_id, finished_order) WHERE finished_order IS NOT NULL;
            """),
        Migration(version: 4, summary: "usage", sql: """
            CREATE TABLE usage (
                key TEXT NOT NULL,              -- the API key's name ('' without auth or a name)
                model TEXT NOT NULL,            -- provider/model that answered
                day TEXT NOT NULL,              -- UTC, YYYY-MM-DD
                requests INTEGER NOT NULL,
                input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                cost_micros INTEGER NOT NULL,   -- millionths of a US dollar
                PRIMARY KEY (day, key, model)
            ) WITHOUT ROWID;
            """),
    ]

    /// Brings `db` to the newest version in `migrations`, one transaction per step; returns the
    /// version it found. Refuses a database written by a newer build, which this one cannot read.
    @discardableResult
    public static func migrate(_ db: SQLiteConnection, _ migrations: [Migration] = Schema.migrations) throws -> Int {
        let latest = migrations.last?.version ?? 0
        let found = try version(db)
        guard found <= latest else {
            throw StoreError("the database \(db.path) has schema version \(found), newer than this build of Prism knows (\(latest)): run the newer build, or point PRISM_DATA_DIR at another folder")
        }
        for migration in migrations where migration.version > found {
            try db.transaction {
                // Another process may have migrated between our read and our write lock.
                guard try version(db) < migration.version else { return }
                try db.exec(migration.sql)
                try db.exec("PRAGMA user_version = \(migration.version)")
            }
        }
        return found
    }

    /// The schema version recorded in the database (0 for a new one).
    public static func version(_ db: SQLiteConnection) throws -> Int {
        Int(try db.scalar("PRAGMA user_version")?.integer ?? 0)
    }
}
