// The embedded DocumentIndex: documents, pages (with their images) and chunks in the EmbeddedStore,
// the chunks' words in an FTS5 table ranked by bm25(), their embeddings (when made) searched
// exactly in memory and fused with BM25 by reciprocal rank. A document is replaced in one transaction.
import Foundation

public final class SQLiteDocumentIndex: DocumentIndex {
    private let store: EmbeddedStore
    private let vectors = VectorCache()

    public init(store: EmbeddedStore) {
        self.store = store
    }

    /// Column weights of bm25(index_fts): text, heading, title. A word in a heading or the title
    /// says more about a chunk than one in its body.
    static let weights = "1.0, 2.0, 1.5"
    /// Chunks looked at to rank pages: a page's score is the sum of its chunks' among these.
    public static let pageCandidateChunks = 64

    public func replace(_ content: IndexedContent) async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        try await store.write { db in
            try Self.remove(db, index: content.index, documentID: content.documentID)
            var bytes = 0, images = 0
            for page in content.pages {
                bytes += page.text.utf8.count + (page.image?.count ?? 0)
                if page.image != nil { images += 1 }
                try db.run("INSERT INTO index_pages (index_name, document_id, page, text, image, image_mime) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           [.text(content.index), .text(content.documentID), .integer(Int64(page.number)), .text(page.text),
                            page.image.map { .blob($0) } ?? .null, .text(page.imageMimeType)])
            }
            for chunk in content.chunks {
                bytes += chunk.text.utf8.count
                let id = try db.scalar("INSERT INTO index_chunks (index_name, document_id, page, start_seconds, end_seconds) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                                       [.text(content.index), .text(content.documentID), .integer(Int64(chunk.page)),
                                        chunk.startSeconds.map { .real($0) } ?? .null, chunk.endSeconds.map { .real($0) } ?? .null])
                guard let id else { throw StoreError("inserting a chunk returned no id") }
                try db.run("INSERT INTO index_fts (rowid, text, heading, title) VALUES (?1, ?2, ?3, ?4)",
                           [id, .text(chunk.text), .text(chunk.heading), .text(content.title)])
                if let embedding = chunk.embedding {
                    try db.run("INSERT INTO index_vectors (chunk_id, index_name, model, vector) VALUES (?1, ?2, ?3, ?4)",
                               [id, .text(content.index), .text(content.embeddingModel), .blob(VectorMath.blob(embedding))])
                }
            }
            try db.run("""
                INSERT INTO index_documents (index_name, document_id, title, mime_type, pages, chunks, images, stored_bytes, indexed_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """, [.text(content.index), .text(content.documentID), .text(content.title), .text(content.mimeType),
                      .integer(Int64(content.pages.count)), .integer(Int64(content.chunks.count)), .integer(Int64(images)),
                      .integer(Int64(bytes)), .integer(now)])
        }
        vectors.invalidate(index: content.index)
    }

    public func delete(index: String, documentID: String) async throws -> Bool {
        defer { vectors.invalidate(index: index) }
        return try await store.write { db in try Self.remove(db, index: index, documentID: documentID) }
    }

    /// Deletes a document's rows, FTS rows first (they are found through index_chunks).
    private static func remove(_ db: SQLiteConnection, index: String, documentID: String) throws -> Bool {
        let key: [SQLiteValue] = [.text(index), .text(documentID)]
        try db.run("DELETE FROM index_vectors WHERE chunk_id IN (SELECT id FROM index_chunks WHERE index_name = ?1 AND document_id = ?2)", key)
        try db.run("DELETE FROM index_fts WHERE rowid IN (SELECT id FROM index_chunks WHERE index_name = ?1 AND document_id = ?2)", key)
        try db.run("DELETE FROM index_chunks WHERE index_name = ?1 AND document_id = ?2", key)
        try db.run("DELETE FROM index_pages WHERE index_name = ?1 AND document_id = ?2", key)
        return try db.run("DELETE FROM index_documents WHERE index_name = ?1 AND document_id = ?2", key) > 0
    }

    public func search(index: String, query: String, embedding: QueryEmbedding?, textLimit: Int, pageLimit: Int,
                       includeImages: Bool) async throws -> IndexRetrieval {
        let candidates = max(textLimit, Self.pageCandidateChunks)
        let match = Self.matchExpression(query)
        return try await store.read { db in
            var hits: [IndexHit] = []
            if let match {
                hits = try db.query("""
                    SELECT \(Self.chunkColumns), -bm25(index_fts, \(Self.weights))
                    FROM index_fts JOIN index_chunks c ON c.id = index_fts.rowid
                    JOIN index_documents d ON d.index_name = c.index_name AND d.document_id = c.document_id
                    WHERE index_fts MATCH ?1 AND c.index_name = ?2 ORDER BY bm25(index_fts, \(Self.weights)) LIMIT ?3
                    """, [.text(match), .text(index), .integer(Int64(candidates))]).map { Self.hit($0, score: $0[8].realOrInteger ?? 0) }
            }
            if let embedding {
                // Hybrid: the keyword ranking and the nearest chunks' fused by reciprocal rank.
                let matrix = try self.vectors.matrix(index: index, model: embedding.model) { try Self.loadVectors(db, index: index, model: embedding.model) }
                let nearest = matrix.nearest(embedding.vector, limit: candidates).map(\.id)
                let known = Dictionary(hits.map { ($0.chunkID, $0) }, uniquingKeysWith: { a, _ in a })
                hits = try VectorMath.fuse([hits.map(\.chunkID), nearest]).compactMap { id, score in
                    var hit = try known[id] ?? Self.chunk(db, id: id, score: 0)
                    hit?.score = score
                    return hit
                }
            }
            return IndexRetrieval(text: Array(hits.prefix(textLimit)),
                                  pages: try Self.bestPages(db, index: index, hits: hits, limit: pageLimit, includeImages: includeImages))
        }
    }

    /// The columns `hit` reads, in its order.
    private static let chunkColumns = "c.id, c.document_id, d.title, c.page, index_fts.text, index_fts.heading, c.start_seconds, c.end_seconds"

    private static func hit(_ row: [SQLiteValue], score: Double) -> IndexHit {
        IndexHit(chunkID: row[0].integer ?? 0, documentID: row[1].text ?? "", title: row[2].text ?? "", page: Int(row[3].integer ?? 0),
                 score: score, text: row[4].text ?? "", heading: row[5].text ?? "", startSeconds: row[6].realOrInteger, endSeconds: row[7].realOrInteger)
    }

    /// One chunk as a hit with `score` (a vector search's hit that BM25 did not find); nil when it is gone.
    private static func chunk(_ db: SQLiteConnection, id: Int64, score: Double) throws -> IndexHit? {
        try db.query("""
            SELECT \(chunkColumns) FROM index_chunks c JOIN index_fts ON index_fts.rowid = c.id
            JOIN index_documents d ON d.index_name = c.index_name AND d.document_id = c.document_id WHERE c.id = ?1
            """, [.integer(id)]).first.map { hit($0, score: score) }
    }

    private static func loadVectors(_ db: SQLiteConnection, index: String, model: String) throws -> VectorMatrix {
        var matrix = VectorMatrix()
        let statement = try db.prepare("SELECT chunk_id, vector FROM index_vectors WHERE index_name = ?1 AND model = ?2 ORDER BY chunk_id",
                                       [.text(index), .text(model)])
        while try statement.step() {
            let row = statement.row
            guard let id = row[0].integer, let blob = row[1].blob else { continue }
            matrix.append(id: id, VectorMath.floats(blob))
        }
        return matrix
    }

    /// Pages ranked by the summed scores of their chunks among `hits`, with their text and image.
    private static func bestPages(_ db: SQLiteConnection, index: String, hits: [IndexHit], limit: Int, includeImages: Bool) throws -> [IndexHit] {
        try IndexHit.rankPages(hits, limit: limit).compactMap { hit in
            let columns = includeImages ? "text, image, image_mime" : "text, NULL, image_mime"
            guard let row = try db.query("SELECT \(columns) FROM index_pages WHERE index_name = ?1 AND document_id = ?2 AND page = ?3",
                                         [.text(index), .text(hit.documentID), .integer(Int64(hit.page))]).first else { return nil }
            var page = hit
            page.text = row[0].text ?? ""
            page.image = row[1].blob
            page.imageMimeType = row[2].text ?? ""
            page.startSeconds = nil
            page.endSeconds = nil
            return page
        }
    }

    /// The FTS5 query for a question: its words, each quoted (so no word is read as an operator),
    /// any of them matching; BM25 ranks chunks with more and rarer words first. A compound such as
    /// `asn1_der_decoding` or `utf-8` is also asked for as a phrase, so that the exact sequence
    /// outranks its parts scattered over a page. Nil without words.
    static func matchExpression(_ question: String) -> String? {
        let terms = searchTerms(question).map { "\"\($0)\"" }
        return terms.isEmpty ? nil : terms.joined(separator: " OR ")
    }

    /// A question's search terms, each once: its words (lower-cased runs of letters and digits),
    /// and each compound of several words as those words joined by spaces (a phrase).
    public static func searchTerms(_ question: String) -> [String] {
        var seen = Set<String>(), terms: [String] = []
        func add(_ term: String) {
            if seen.insert(term).inserted { terms.append(term) }
        }
        for token in question.lowercased().split(whereSeparator: \.isWhitespace) {
            let parts = token.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
            parts.forEach(add)
            if parts.count > 1 { add(parts.joined(separator: " ")) }
        }
        return terms
    }

    public func documents(index: String) async throws -> [IndexedDocumentSummary] {
        try await store.read { db in
            try db.query("""
                SELECT document_id, title, mime_type, pages, chunks, images, stored_bytes, indexed_at
                FROM index_documents WHERE index_name = ?1 ORDER BY document_id
                """, [.text(index)]).map { row in
                IndexedDocumentSummary(documentID: row[0].text ?? "", title: row[1].text ?? "", mimeType: row[2].text ?? "",
                                       pages: Int(row[3].integer ?? 0), chunks: Int(row[4].integer ?? 0), images: Int(row[5].integer ?? 0),
                                       storedBytes: Int(row[6].integer ?? 0),
                                       indexedAt: Date(timeIntervalSince1970: Double(row[7].integer ?? 0) / 1000))
            }
        }
    }

    public func indexes() async throws -> [IndexSummary] {
        try await store.read { db in
            try db.query("""
                SELECT index_name, count(*), sum(chunks), sum(stored_bytes) FROM index_documents GROUP BY index_name ORDER BY index_name
                """).map { row in
                IndexSummary(name: row[0].text ?? "", documents: Int(row[1].integer ?? 0), chunks: Int(row[2].integer ?? 0),
                             storedBytes: Int(row[3].integer ?? 0))
            }
        }
    }

    public func contains(index: String) async throws -> Bool {
        try await store.read { db in
            try db.scalar("SELECT 1 FROM index_documents WHERE index_name = ?1 LIMIT 1", [.text(index)]) != nil
        }
    }
}
