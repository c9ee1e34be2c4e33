// The shared DocumentIndex: chunks' words in a GIN-indexed tsvector ranked by ts_rank with the embedded
// store's field weights; embeddings ranked exactly in this process (Debian 12 has no pgvector) from a
// copy in memory that the index's version, bumped by every write, marks stale on every replica.
import Foundation
import PrismStore

public final class PostgresDocumentIndex: DocumentIndex {
    private let pool: PostgresPool
    private let vectors = VersionedVectors()

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// ts_rank's weights for {D, C, B, A}: text (D) 1, title (C) 1.5, heading (B) 2, as the
    /// embedded store weighs bm25's columns. Normalisation 1 divides by 1 + log(length), so a long
    /// chunk does not win by length alone (BM25's length normalisation, roughly).
    static let rank = "ts_rank('{0.5, 0.75, 1.0, 1.0}', c.words, q, 1)::float8"
    /// The words of a chunk: its text, title and heading, each weighted by its field.
    static let words = "setweight(to_tsvector('english', $6), 'D') || setweight(to_tsvector('english', $7), 'C') || setweight(to_tsvector('english', $5), 'B')"

    public func replace(_ content: IndexedContent) async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        try await pool.transaction { db in
            try Self.remove(db, index: content.index, documentID: content.documentID)
            var bytes = 0, images = 0
            for page in content.pages {
                bytes += page.text.utf8.count + (page.image?.count ?? 0)
                if page.image != nil { images += 1 }
                try db.run("INSERT INTO index_pages (index_name, document_id, page, text, image, image_mime) VALUES ($1, $2, $3, $4, $5, $6)",
                           [.text(content.index), .text(content.documentID), .integer(Int64(page.number)), .text(page.text),
                            page.image.map { .bytes($0) } ?? .null, .text(page.imageMimeType)])
            }
            for chunk in content.chunks {
                bytes += chunk.text.utf8.count
                let id = try db.scalar("""
                    INSERT INTO index_chunks (index_name, document_id, page, heading, text, title, start_seconds, end_seconds, words)
                    VALUES ($1, $2, $3, $5, $6, $7, $4, $8, \(Self.words)) RETURNING id
                    """, [.text(content.index), .text(content.documentID), .integer(Int64(chunk.page)), chunk.startSeconds.map { .real($0) } ?? .null,
                          .text(chunk.heading), .text(chunk.text), .text(content.title), chunk.endSeconds.map { .real($0) } ?? .null])
                guard let id else { throw StoreError("inserting a chunk returned no id") }
                if let embedding = chunk.embedding {
                    try db.run("INSERT INTO index_vectors (chunk_id, index_name, model, vector) VALUES ($1, $2, $3, $4)",
                               [id, .text(content.index), .text(content.embeddingModel), .bytes(VectorMath.blob(embedding))])
                }
            }
            try db.run("""
                INSERT INTO index_documents (index_name, document_id, title, mime_type, pages, chunks, images, stored_bytes, indexed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """, [.text(content.index), .text(content.documentID), .text(content.title), .text(content.mimeType),
                      .integer(Int64(content.pages.count)), .integer(Int64(content.chunks.count)), .integer(Int64(images)),
                      .integer(Int64(bytes)), .integer(now)])
            try Self.bumpVersion(db, content.index)
        }
    }

    public func delete(index: String, documentID: String) async throws -> Bool {
        try await pool.transaction { db in
            let removed = try Self.remove(db, index: index, documentID: documentID)
            if removed { try Self.bumpVersion(db, index) }
            return removed
        }
    }

    /// Deletes a document's rows (its vectors go with its chunks).
    @discardableResult
    private static func remove(_ db: PostgresConnection, index: String, documentID: String) throws -> Bool {
        let key: [PostgresValue] = [.text(index), .text(documentID)]
        try db.run("DELETE FROM index_chunks WHERE index_name = $1 AND document_id = $2", key)
        try db.run("DELETE FROM index_pages WHERE index_name = $1 AND document_id = $2", key)
        return try db.run("DELETE FROM index_documents WHERE index_name = $1 AND document_id = $2", key) > 0
    }

    /// A new version of `index`: every replica's vectors of it in memory are stale from the commit on.
    private static func bumpVersion(_ db: PostgresConnection, _ index: String) throws {
        try db.run("""
            INSERT INTO index_versions (index_name, version) VALUES ($1, 1)
            ON CONFLICT (index_name) DO UPDATE SET version = index_versions.version + 1
            """, [.text(index)])
    }

    public func search(index: String, query: String, embedding: QueryEmbedding?, textLimit: Int, pageLimit: Int,
                       includeImages: Bool) async throws -> IndexRetrieval {
        let candidates = max(textLimit, SQLiteDocumentIndex.pageCandidateChunks)
        let match = Self.tsquery(query)
        return try await pool.run { db in
            // One snapshot: the version read and the vectors loaded belong together.
            try db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { if db.isOpen { try? db.exec("COMMIT") } }
            var hits: [IndexHit] = []
            if let match {
                hits = try db.query("""
                    SELECT \(Self.chunkColumns), \(Self.rank) AS score
                    FROM index_chunks c JOIN index_documents d ON d.index_name = c.index_name AND d.document_id = c.document_id,
                         to_tsquery('english', $1) q
                    WHERE c.index_name = $2 AND c.words @@ q ORDER BY score DESC, c.id LIMIT $3
                    """, [.text(match), .text(index), .integer(Int64(candidates))]).map { Self.hit($0, score: $0[8].real ?? 0) }
            }
            if let embedding {
                // Hybrid: the keyword ranking and the nearest chunks' fused by reciprocal rank.
                let version = try db.scalar("SELECT version FROM index_versions WHERE index_name = $1", [.text(index)])?.integer ?? 0
                let matrix = try self.vectors.matrix(index: index, model: embedding.model, version: version) {
                    try Self.loadVectors(db, index: index, model: embedding.model)
                }
                let nearest = matrix.nearest(embedding.vector, limit: candidates).map(\.id)
                var known = Dictionary(hits.map { ($0.chunkID, $0) }, uniquingKeysWith: { a, _ in a })
                for hit in try Self.chunks(db, ids: nearest.filter { known[$0] == nil }) { known[hit.chunkID] = hit }
                hits = VectorMath.fuse([hits.map(\.chunkID), nearest]).compactMap { id, score in
                    var hit = known[id]
                    hit?.score = score
                    return hit
                }
            }
            let pages = try IndexHit.rankPages(hits, limit: pageLimit).compactMap { hit in
                try Self.page(db, index: index, hit: hit, includeImages: includeImages)
            }
            return IndexRetrieval(text: Array(hits.prefix(textLimit)), pages: pages)
        }
    }

    /// The tsquery for a question: the words and compounds SQLiteDocumentIndex asks FTS5 for, each
    /// word a quoted lexeme and each compound a phrase (<->), any of them matching. Nil without words.
    static func tsquery(_ question: String) -> String? {
        let terms = SQLiteDocumentIndex.searchTerms(question).map { term in
            let words = term.split(separator: " ").map { "'\($0)'" }
            return words.count == 1 ? words[0] : "(" + words.joined(separator: " <-> ") + ")"
        }
        return terms.isEmpty ? nil : terms.joined(separator: " | ")
    }

    /// The columns `hit` reads, in its order.
    private static let chunkColumns = "c.id, c.document_id, d.title, c.page, c.text, c.heading, c.start_seconds, c.end_seconds"

    private static func hit(_ row: [PostgresValue], score: Double) -> IndexHit {
        IndexHit(chunkID: row[0].integer ?? 0, documentID: row[1].text ?? "", title: row[2].text ?? "", page: Int(row[3].integer ?? 0),
                 score: score, text: row[4].text ?? "", heading: row[5].text ?? "", startSeconds: row[6].real, endSeconds: row[7].real)
    }

    /// Chunks as hits (a vector search's hits that the keyword search did not find), in one query;
    /// those gone meanwhile are missing.
    private static func chunks(_ db: PostgresConnection, ids: [Int64]) throws -> [IndexHit] {
        guard !ids.isEmpty else { return [] }
        return try db.query("""
            SELECT \(chunkColumns) FROM index_chunks c
            JOIN index_documents d ON d.index_name = c.index_name AND d.document_id = c.document_id
            WHERE c.id = ANY(string_to_array($1, ',')::bigint[])
            """, [.text(ids.map(String.init).joined(separator: ","))]).map { hit($0, score: 0) }
    }

    /// A ranked page hit with the page's text and (when asked) image; nil when the page is gone.
    private static func page(_ db: PostgresConnection, index: String, hit: IndexHit, includeImages: Bool) throws -> IndexHit? {
        let columns = includeImages ? "text, image, image_mime" : "text, NULL::bytea, image_mime"
        guard let row = try db.query("SELECT \(columns) FROM index_pages WHERE index_name = $1 AND document_id = $2 AND page = $3",
                                     [.text(index), .text(hit.documentID), .integer(Int64(hit.page))]).first else { return nil }
        var page = hit
        page.text = row[0].text ?? ""
        page.image = row[1].bytes
        page.imageMimeType = row[2].text ?? ""
        page.startSeconds = nil
        page.endSeconds = nil
        return page
    }

    private static func loadVectors(_ db: PostgresConnection, index: String, model: String) throws -> VectorMatrix {
        var matrix = VectorMatrix()
        for row in try db.query("SELECT chunk_id, vector FROM index_vectors WHERE index_name = $1 AND model = $2 ORDER BY chunk_id",
                                [.text(index), .text(model)]) {
            guard let id = row[0].integer, let blob = row[1].bytes else { continue }
            matrix.append(id: id, VectorMath.floats(blob))
        }
        return matrix
    }

    public func documents(index: String) async throws -> [IndexedDocumentSummary] {
        try await pool.run { db in
            try db.query("""
                SELECT document_id, title, mime_type, pages, chunks, images, stored_bytes, indexed_at
                FROM index_documents WHERE index_name = $1 ORDER BY document_id
                """, [.text(index)]).map { row in
                IndexedDocumentSummary(documentID: row[0].text ?? "", title: row[1].text ?? "", mimeType: row[2].text ?? "",
                                       pages: Int(row[3].integer ?? 0), chunks: Int(row[4].integer ?? 0), images: Int(row[5].integer ?? 0),
                                       storedBytes: Int(row[6].integer ?? 0),
                                       indexedAt: Date(timeIntervalSince1970: Double(row[7].integer ?? 0) / 1000))
            }
        }
    }

    public func indexes() async throws -> [IndexSummary] {
        try await pool.run { db in
            try db.query("""
                SELECT index_name, count(*), sum(chunks)::bigint, sum(stored_bytes)::bigint FROM index_documents GROUP BY index_name ORDER BY index_name
                """).map { row in
                IndexSummary(name: row[0].text ?? "", documents: Int(row[1].integer ?? 0), chunks: Int(row[2].integer ?? 0),
                             storedBytes: Int(row[3].integer ?? 0))
            }
        }
    }

    public func contains(index: String) async throws -> Bool {
        try await pool.run { db in
            try db.scalar("SELECT 1 FROM index_documents WHERE index_name = $1 LIMIT 1", [.text(index)]) != nil
        }
    }
}

/// The vector matrices in memory, each kept with the index version it was loaded at and replaced
/// when a search finds a newer one. Thread-safe: `lock` guards `matrices` (a load runs outside it).
private final class VersionedVectors: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var matrices: [String: (version: Int64, matrix: VectorMatrix)] = [:]

    func matrix(index: String, model: String, version: Int64, load: () throws -> VectorMatrix) rethrows -> VectorMatrix {
        let key = index + "\u{0}" + model
        if let held = lock.withLock({ matrices[key] }), held.version == version { return held.matrix }
        let loaded = try load()
        lock.withLock {
            if (matrices[key]?.version ?? -1) < version { matrices[key] = (version, loaded) }
        }
        return loaded
    }
}
