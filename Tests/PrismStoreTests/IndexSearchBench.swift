// A measurement, not a check: search latency of the document index on both engines at 10,000
// chunks (100 documents of 100 chunks of random words, 384-dimension embeddings), keyword and hybrid, printed.
// Runs only with PRISM_BENCH=1: `PRISM_BENCH=1 swift test --filter IndexSearchBench`.
import Foundation
@testable import PrismStore
import XCTest

final class IndexSearchBench: XCTestCase {
    /// The corpus: documents × chunks, the words per chunk, the vocabulary and the embedding size.
    static let documents = 100, chunksPerDocument = 100, wordsPerChunk = 60, vocabulary = 5_000, dimensions = 384
    static let searches = 50

    func testSearchLatencyAt10000Chunks() async throws {
        guard ProcessInfo.processInfo.environment["PRISM_BENCH"] == "1" else { throw XCTSkip("a measurement: set PRISM_BENCH=1") }
        var random = SystemRandomNumberGenerator()
        let words = (0..<Self.vocabulary).map { "w\($0)x" }
        func vector() -> [Float] { VectorMath.normalized((0..<Self.dimensions).map { _ in Float(random.next() % 2000) / 1000 - 1 }) }
        var contents: [IndexedContent] = []
        for d in 0..<Self.documents {
            var content = IndexedContent(index: "bench", documentID: "doc\(d)", title: "Document \(d)", mimeType: "text/markdown", pages: [], chunks: [])
            for c in 0..<Self.chunksPerDocument {
                let text = (0..<Self.wordsPerChunk).map { _ in words[Int(random.next() % UInt64(Self.vocabulary))] }.joined(separator: " ")
                var chunk = IndexChunk(page: 0, heading: "Section \(c)", text: text)
                chunk.embedding = vector()
                content.chunks.append(chunk)
            }
            content.embeddingModel = "bench/embed"
            contents.append(content)
        }
        let questions = (0..<Self.searches).map { _ in (0..<4).map { _ in words[Int(random.next() % UInt64(Self.vocabulary))] }.joined(separator: " ") }
        let embeddings = (0..<Self.searches).map { _ in QueryEmbedding(model: "bench/embed", vector: vector()) }
        // The in-process part of hybrid search alone: one exact scan of every vector.
        var matrix = VectorMatrix()
        for (i, chunk) in contents.flatMap(\.chunks).enumerated() { matrix.append(id: Int64(i), chunk.embedding ?? []) }
        let scanStarted = Date()
        for embedding in embeddings { _ = matrix.nearest(embedding.vector, limit: 64) }
        print(String(format: "[bench] exact scan of %d vectors of %d dimensions: %.1f ms each (this build's optimisation level)",
                     matrix.ids.count, Self.dimensions, Date().timeIntervalSince(scanStarted) * 1000 / Double(Self.searches)))
        try await onEachEngine { engine in
            let index = try engine.documentIndex()
            var started = Date()
            for content in contents { try await index.replace(content) }
            let indexing = Date().timeIntervalSince(started)
            func timed(_ body: () async throws -> Void) async rethrows -> Double {
                started = Date()
                try await body()
                return Date().timeIntervalSince(started) * 1000
            }
            var keyword: [Double] = [], hybrid: [Double] = []
            let firstHybrid = try await timed { _ = try await index.search(index: "bench", query: questions[0], embedding: embeddings[0], textLimit: 10, pageLimit: 0, includeImages: false) }
            for i in 0..<Self.searches {
                keyword.append(try await timed { _ = try await index.search(index: "bench", query: questions[i], embedding: nil, textLimit: 10, pageLimit: 0, includeImages: false) })
                hybrid.append(try await timed { _ = try await index.search(index: "bench", query: questions[i], embedding: embeddings[i], textLimit: 10, pageLimit: 0, includeImages: false) })
            }
            func p(_ values: [Double], _ q: Double) -> String { String(format: "%.1f", values.sorted()[min(values.count - 1, Int(Double(values.count) * q))]) }
            print("""
                [bench] \(engine.name): indexed \(Self.documents * Self.chunksPerDocument) chunks in \(String(format: "%.1f", indexing)) s; \
                keyword search p50 \(p(keyword, 0.5)) ms p95 \(p(keyword, 0.95)) ms; hybrid (cached vectors) p50 \(p(hybrid, 0.5)) ms \
                p95 \(p(hybrid, 0.95)) ms; first hybrid (loads \(Self.dimensions)-d vectors) \(String(format: "%.1f", firstHybrid)) ms
                """)
        }
    }
}
