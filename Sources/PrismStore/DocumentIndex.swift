// The document index behind IndexDocument and Query: what one indexed document holds (pages with
// their images, text chunks with page and heading), what a search returns, and the protocol an
// index store implements (embedded SQLite FTS5 now, PostgreSQL when a shared store lands).
import Foundation

/// One page of a document: its text (text layer or OCR) and its fitted image, if any.
public struct IndexPage: Sendable {
    /// 1-based.
    public var number: Int
    public var text: String
    public var image: Data?
    public var imageMimeType: String

    public init(number: Int, text: String, image: Data? = nil, imageMimeType: String = "") {
        self.number = number
        self.text = text
        self.image = image
        self.imageMimeType = imageMimeType
    }
}

/// One searchable piece of text, with where it sits in its document.
public struct IndexChunk: Sendable, Equatable {
    /// 1-based page; 0 for documents without pages (plain text, Markdown).
    public var page: Int
    /// The heading the text sits under ("Install › Debian"), empty when none.
    public var heading: String
    public var text: String
    /// Where a transcript chunk sits in its recording; nil for other documents.
    public var startSeconds: Double?
    public var endSeconds: Double?
    /// The chunk's embedding (L2-normalised) when an embedding model is configured.
    public var embedding: [Float]?

    public init(page: Int, heading: String, text: String, startSeconds: Double? = nil, endSeconds: Double? = nil) {
        self.page = page
        self.heading = heading
        self.text = text
        self.startSeconds = startSeconds
        self.endSeconds = endSeconds
    }
}

/// Everything stored for one document; `replace` swaps it in whole.
public struct IndexedContent: Sendable {
    public var index: String
    public var documentID: String
    public var title: String
    public var mimeType: String
    public var pages: [IndexPage]
    public var chunks: [IndexChunk]
    /// The model that made the chunks' embeddings; empty when they have none.
    public var embeddingModel = ""

    public init(index: String, documentID: String, title: String, mimeType: String, pages: [IndexPage], chunks: [IndexChunk]) {
        self.index = index
        self.documentID = documentID
        self.title = title
        self.mimeType = mimeType
        self.pages = pages
        self.chunks = chunks
    }
}

/// A question's embedding, for hybrid search: only chunks embedded by the same model are compared.
public struct QueryEmbedding: Sendable {
    public var model: String
    /// L2-normalised.
    public var vector: [Float]

    public init(model: String, vector: [Float]) {
        self.model = model
        self.vector = vector
    }
}

/// One retrieved chunk or page. `score`: higher is better.
public struct IndexHit: Sendable {
    /// The chunk's row (for a page hit, its best chunk's).
    public var chunkID: Int64 = 0
    public var documentID: String
    public var title: String
    public var page: Int
    public var score: Double
    public var text: String
    public var heading: String
    public var startSeconds: Double?
    public var endSeconds: Double?
    /// A page hit's image (when asked for) and its type.
    public var image: Data?
    public var imageMimeType: String = ""

    public init(chunkID: Int64, documentID: String, title: String, page: Int, score: Double, text: String, heading: String,
                startSeconds: Double?, endSeconds: Double?) {
        (self.chunkID, self.documentID, self.title, self.page, self.score) = (chunkID, documentID, title, page, score)
        (self.text, self.heading, self.startSeconds, self.endSeconds) = (text, heading, startSeconds, endSeconds)
    }

    /// The best `limit` pages among `hits` (chunk hits, best first): each page once, as its best
    /// chunk's hit, ranked by the summed scores of its chunks among `hits`. Text and image unset.
    public static func rankPages(_ hits: [IndexHit], limit: Int) -> [IndexHit] {
        guard limit > 0 else { return [] }
        var order: [String] = [], best: [String: IndexHit] = [:]
        for hit in hits where hit.page > 0 {
            let key = "\(hit.documentID)\u{0}\(hit.page)"
            if var page = best[key] {
                page.score += hit.score
                best[key] = page
            } else {
                order.append(key)
                best[key] = hit
            }
        }
        return Array(order.compactMap { best[$0] }.sorted { $0.score > $1.score }.prefix(limit))
    }
}

/// The result of one search: the best chunks and the best pages, each best first.
public struct IndexRetrieval: Sendable {
    public var text: [IndexHit]
    public var pages: [IndexHit]

    public init(text: [IndexHit], pages: [IndexHit]) {
        self.text = text
        self.pages = pages
    }
}

/// A stored document, as listed.
public struct IndexedDocumentSummary: Sendable {
    public var documentID: String
    public var title: String
    public var mimeType: String
    public var pages: Int
    public var chunks: Int
    public var images: Int
    public var storedBytes: Int
    public var indexedAt: Date

    public init(documentID: String, title: String, mimeType: String, pages: Int, chunks: Int, images: Int, storedBytes: Int, indexedAt: Date) {
        (self.documentID, self.title, self.mimeType) = (documentID, title, mimeType)
        (self.pages, self.chunks, self.images, self.storedBytes, self.indexedAt) = (pages, chunks, images, storedBytes, indexedAt)
    }
}

/// An index, as listed.
public struct IndexSummary: Sendable {
    public var name: String
    public var documents: Int
    public var chunks: Int
    public var storedBytes: Int

    public init(name: String, documents: Int, chunks: Int, storedBytes: Int) {
        (self.name, self.documents, self.chunks, self.storedBytes) = (name, documents, chunks, storedBytes)
    }
}

/// A store of named multi-modal indexes. An index exists while it holds a document.
public protocol DocumentIndex: Sendable {
    /// Stores `content`, replacing any document of the same id in the same index atomically:
    /// a search sees the old document or the new one, never a mix or neither.
    func replace(_ content: IndexedContent) async throws
    /// Removes a document; false when there was none.
    func delete(index: String, documentID: String) async throws -> Bool
    /// The best `textLimit` chunks for `query` and the best `pageLimit` pages, ranked by their
    /// matching chunks; page images only when `includeImages`. Keyword search (BM25) needs no
    /// model; with `embedding`, its ranking is fused with the nearest chunks' (hybrid search).
    func search(index: String, query: String, embedding: QueryEmbedding?, textLimit: Int, pageLimit: Int,
                includeImages: Bool) async throws -> IndexRetrieval
    func documents(index: String) async throws -> [IndexedDocumentSummary]
    func indexes() async throws -> [IndexSummary]
    func contains(index: String) async throws -> Bool
}
