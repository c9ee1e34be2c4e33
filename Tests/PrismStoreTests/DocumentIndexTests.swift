// The document index on both engines (SQLite FTS5 and BM25, PostgreSQL tsvector and ts_rank): ranking
// of chunks and pages, the query made from a question (operators are words, compounds phrases), atomic
// replacement, deletion, the lists, page images only when asked for, hybrid search with vectors.
import Foundation
import XCTest
@testable import PrismStore
@testable import PrismStorePostgres

final class DocumentIndexTests: XCTestCase {
    private func manual(_ id: String = "manual", words: [String] = ["quetzal feathers", "zygomorphic flowers", "obsidian blades"]) -> IndexedContent {
        IndexedContent(index: "books", documentID: id, title: "Field guide", mimeType: "application/pdf",
                       pages: words.indices.map { IndexPage(number: $0 + 1, text: words[$0], image: Data([0xFF, 0xD8, 0xFF, UInt8($0)]), imageMimeType: "image/jpeg") },
                       chunks: words.indices.map { IndexChunk(page: $0 + 1, heading: "Chapter \($0 + 1)", text: "Some text about \(words[$0]) and more.") })
    }

    func testTheMatchingPageRanksFirst() async throws {
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            try await index.replace(manual())
            let result = try await index.search(index: "books", query: "Which flowers are zygomorphic?", embedding: nil, textLimit: 5, pageLimit: 2, includeImages: true)
            XCTAssertEqual(result.text.first?.page, 2)
            XCTAssertEqual(result.text.first?.heading, "Chapter 2")
            XCTAssertEqual(result.text.first?.title, "Field guide")
            XCTAssertGreaterThan(result.text.first?.score ?? 0, 0)
            XCTAssertEqual(result.pages.first?.page, 2)
            XCTAssertEqual(result.pages.first?.text, "zygomorphic flowers")
            XCTAssertEqual(result.pages.first?.image, Data([0xFF, 0xD8, 0xFF, 1]))
            let textOnly = try await index.search(index: "books", query: "zygomorphic", embedding: nil, textLimit: 5, pageLimit: 2, includeImages: false)
            XCTAssertNil(textOnly.pages.first?.image)
            // Stemming: "feather" finds "feathers".
            let stemmed = try await index.search(index: "books", query: "feather", embedding: nil, textLimit: 5, pageLimit: 0, includeImages: false)
            XCTAssertEqual(stemmed.text.map(\.page), [1])
            XCTAssertEqual(stemmed.pages.count, 0)
        }
    }

    func testAQuestionIsWordsNotOperators() async throws {
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            try await index.replace(manual())
            let result = try await index.search(index: "books", query: "NOT obsidian*", embedding: nil, textLimit: 5, pageLimit: 1, includeImages: false)
            XCTAssertEqual(result.text.first?.page, 3)
        }
    }

    func testReplaceSwapsTheWholeDocument() async throws {
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            try await index.replace(manual())
            try await index.replace(manual(words: ["walrus tusks"]))
            let old = try await index.search(index: "books", query: "quetzal obsidian", embedding: nil, textLimit: 5, pageLimit: 5, includeImages: false)
            XCTAssertTrue(old.text.isEmpty && old.pages.isEmpty, "the old chunks and pages are gone")
            let new = try await index.search(index: "books", query: "walrus", embedding: nil, textLimit: 5, pageLimit: 5, includeImages: false)
            XCTAssertEqual(new.text.count, 1)
            let documents = try await index.documents(index: "books")
            XCTAssertEqual(documents.map(\.pages), [1])
            let rows = try await engine.count("chunks", "true")
            XCTAssertEqual(rows, 1, "no orphaned chunk rows")
        }
    }

    func testDeleteAndLists() async throws {
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            try await index.replace(manual("a"))
            try await index.replace(manual("b"))
            var other = manual("c")
            other.index = "other"
            try await index.replace(other)
            let indexes = try await index.indexes()
            XCTAssertEqual(indexes.map(\.name), ["books", "other"])
            XCTAssertEqual(indexes.first?.documents, 2)
            XCTAssertEqual(indexes.first?.chunks, 6)
            XCTAssertGreaterThan(indexes.first?.storedBytes ?? 0, 0)
            let deletedA = try await index.delete(index: "books", documentID: "a")
            let deletedAgain = try await index.delete(index: "books", documentID: "a")
            XCTAssertTrue(deletedA)
            XCTAssertFalse(deletedAgain)
            let remaining = try await index.documents(index: "books")
            XCTAssertEqual(remaining.map(\.documentID), ["b"])
            // Searching one index never returns another's chunks.
            let hits = try await index.search(index: "other", query: "quetzal", embedding: nil, textLimit: 10, pageLimit: 10, includeImages: false)
            XCTAssertEqual(Set(hits.text.map(\.documentID)), ["c"])
            let containsBooks = try await index.contains(index: "books")
            let containsNone = try await index.contains(index: "none")
            XCTAssertTrue(containsBooks)
            XCTAssertFalse(containsNone)
        }
    }

    func testHybridSearchFusesKeywordsAndVectors() async throws {
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            var content = manual()
            // Made-up 3-d embeddings: page 3's chunk points where the question will.
            let vectors: [[Float]] = [[1, 0, 0], [0, 1, 0.5], [0, 0.6, 0.8]]
            for i in content.chunks.indices { content.chunks[i].embedding = VectorMath.normalized(vectors[i]) }
            content.embeddingModel = "test/embed"
            try await index.replace(content)
            let question = QueryEmbedding(model: "test/embed", vector: [0, 0, 1])
            // No keyword matches at all: the vectors alone rank.
            let semantic = try await index.search(index: "books", query: "volcanic glass", embedding: question, textLimit: 3, pageLimit: 1, includeImages: false)
            XCTAssertEqual(semantic.text.map(\.page), [3, 2, 1])
            XCTAssertEqual(semantic.pages.first?.page, 3)
            // Page 2, second by its vector and first by its words, outranks page 3, first by its vector alone.
            let fused = try await index.search(index: "books", query: "zygomorphic", embedding: question, textLimit: 3, pageLimit: 0, includeImages: false)
            XCTAssertEqual(fused.text.map(\.page), [2, 3, 1])
            XCTAssertEqual(fused.text.first?.score ?? 0, 1 / 61.0 + 1 / 62.0, accuracy: 1e-12)
            // Another model's question meets none of these vectors: keywords alone.
            let other = try await index.search(index: "books", query: "zygomorphic", embedding: QueryEmbedding(model: "other", vector: [0, 0, 1]),
                                               textLimit: 3, pageLimit: 0, includeImages: false)
            XCTAssertEqual(other.text.map(\.page), [2])
            // Replacing the document drops its vectors (and the cached matrix).
            try await index.replace(manual())
            let gone = try await index.search(index: "books", query: "volcanic glass", embedding: question, textLimit: 3, pageLimit: 0, includeImages: false)
            XCTAssertTrue(gone.text.isEmpty)
            let rows = try await engine.count("vectors", "true")
            XCTAssertEqual(rows, 0)
        }
    }

    func testAQuestionBecomesAnFTS5AndATSQuery() {
        XCTAssertEqual(SQLiteDocumentIndex.matchExpression("NOT obsidian OR \"x\" AND (y*)"), "\"not\" OR \"obsidian\" OR \"or\" OR \"x\" OR \"and\" OR \"y\"")
        XCTAssertEqual(SQLiteDocumentIndex.matchExpression("asn1_der_decoding"), "\"asn1\" OR \"der\" OR \"decoding\" OR \"asn1 der decoding\"")
        XCTAssertNil(SQLiteDocumentIndex.matchExpression("?! ..."))
        XCTAssertEqual(PostgresDocumentIndex.tsquery("NOT obsidian's (y*)"), "'not' | 'obsidian' | 's' | ('obsidian' <-> 's') | 'y'")
        XCTAssertEqual(PostgresDocumentIndex.tsquery("asn1_der_decoding"), "'asn1' | 'der' | 'decoding' | ('asn1' <-> 'der' <-> 'decoding')")
        XCTAssertNil(PostgresDocumentIndex.tsquery("?! ..."))
    }

    func testVectorMath() {
        XCTAssertEqual(VectorMath.floats(VectorMath.blob([1.5, -2, 0])), [1.5, -2, 0])
        XCTAssertEqual(VectorMath.normalized([3, 4]), [0.6, 0.8])
        let fused = VectorMath.fuse([[1, 2, 3], [3, 1]])
        XCTAssertEqual(fused.map(\.id), [1, 3, 2])
        XCTAssertEqual(fused[0].score, 1 / 61.0 + 1 / 62.0, accuracy: 1e-12)
        // The one-pass top-k agrees with sorting every score (dimensions not a multiple of 8 too).
        var generator = SystemRandomNumberGenerator()
        let dimensions = 13
        var matrix = VectorMatrix()
        matrix.dimensions = dimensions
        matrix.ids = (0..<500).map { Int64($0) * 10 }
        matrix.values = (0..<(500 * dimensions)).map { _ in Float.random(in: -1...1, using: &generator) }
        let query = VectorMath.normalized((0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) })
        func score(_ row: Int) -> Float {
            var sum: Float = 0
            for k in 0..<dimensions { sum += matrix.values[row * dimensions + k] * query[k] }
            return sum
        }
        let all: [(id: Int64, score: Float)] = (0..<500).map { (Int64($0) * 10, score($0)) }
        let expected = all.sorted { $0.score > $1.score }.prefix(7)
        let found = matrix.nearest(query, limit: 7)
        XCTAssertEqual(found.map(\.id), expected.map(\.id))
        for (a, b) in zip(found, expected) { XCTAssertEqual(a.score, b.score, accuracy: 1e-5) }
        XCTAssertTrue(matrix.nearest(Array(query.prefix(3)), limit: 7).isEmpty, "a query of another size meets nothing")
    }
}
