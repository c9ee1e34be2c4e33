// prism.v1.Prism/Query: retrieves the best text chunks and pages of an index (BM25, no model
// needed), then either returns them (retrieve_only: `routed`, then one `hits` event) or asks a
// capable model with one multi-modal request (page images and labelled chunks) and streams its
// answer as Generate does, `routed.adaptations` naming what was retrieved.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismStore

enum QueryService {
    /// What the answering model is told: answer from the excerpts, cite pages in one form.
    static let systemPrompt = """
        You answer questions from excerpts of indexed documents: page images and text passages, each \
        labelled with its document id and page, like [manual p.3]. Answer only from them, and cite the \
        pages you used in that form, e.g. [manual p.3]. If they do not contain the answer, say so.
        """

    /// A decoded QueryRequest.
    struct Query: Sendable {
        var index: String
        var question: String
        var topText: Int
        var topImages: Int
        var route: RouteRequest
        var maxTokens: UInt32
        var retrieveOnly: Bool
        var includeImages: Bool

        init(_ r: Prism__V1__QueryRequest) throws {
            index = try IndexService.indexName(String(protoC: r.index))
            question = String(protoC: r.question).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !question.isEmpty else { throw RPCError(.invalidArgument, "question: empty") }
            topText = Int(r.top_k_text == 0 ? UInt32(IndexLimits.defaultTopKText) : r.top_k_text)
            topImages = Int(r.top_k_images == 0 ? UInt32(IndexLimits.defaultTopKImages) : r.top_k_images)
            guard topText <= IndexLimits.maxTopKText else { throw RPCError(.invalidArgument, "top_k_text: at most \(IndexLimits.maxTopKText), not \(topText)") }
            guard topImages <= IndexLimits.maxTopKImages else { throw RPCError(.invalidArgument, "top_k_images: at most \(IndexLimits.maxTopKImages), not \(topImages)") }
            route = try GenerateService.routeRequest(r.route)
            maxTokens = r.max_tokens
            retrieveOnly = r.retrieve_only != 0
            includeImages = r.include_images != 0
        }
    }

    static func handler(_ documents: IndexService.Parts, _ generator: Generator) -> RPCHandler {
        let index = documents.index, ingester = documents.ingester
        return .serverStreaming { body, context, writer in
            let message = try decodeRequest(prism__v1__query_request__init, body)
            let query = try withExtendedLifetime(message) { try Query(message.pointee) }
            guard try await IndexService.stored({ try await index.contains(index: query.index) }) else { throw IndexService.unknownIndex(query.index) }
            // Hybrid when an embedding model is configured: the question is embedded first.
            var embedding: QueryEmbedding?
            if let model = ingester.embedModel {
                do {
                    embedding = try await ingester.embed([query.question]).first.map { QueryEmbedding(model: model, vector: $0) }
                } catch let failure as ProviderFailure {
                    throw GenerateService.rpcError(ProviderFailure(failure.code, "index.embed_model \(model) cannot embed the question: \(failure.message)"), context)
                }
            }
            let retrieval = try await IndexService.stored {
                try await index.search(index: query.index, query: query.question, embedding: embedding, textLimit: query.topText,
                                       pageLimit: query.topImages, includeImages: query.includeImages || !query.retrieveOnly)
            }
            let steps = retrievalSteps(retrieval)
                + [embedding.map { "hybrid retrieval: BM25 and \($0.model) embeddings, reciprocal rank fusion" } ?? "keyword retrieval: BM25"]
            if query.retrieveOnly {
                // No model: `routed` names none, and lists the retrieval.
                try await writer.write(GenerateService.encode(.routed(RouteInfo(provider: "", model: "", adaptations: steps, attempt: 1))))
                try await writer.write(encodeHits(retrieval))
                return
            }
            var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: parts(retrieval, query))])
            request.system = systemPrompt
            request.route = query.route
            request.maxTokens = query.maxTokens
            do {
                try await GenerateService.relay(request, generator, context, writer) { output in
                    guard case .routed(var info) = output else { return output }
                    info.adaptations = steps + info.adaptations
                    return .routed(info)
                }
            } catch let error as RPCError where error.status.code == .failedPrecondition {
                throw RPCError(.failedPrecondition, "Query: no model can answer from the retrieved pages and text: \(error.status.message) (retrieve_only returns the hits without a model)",
                               trailers: error.trailers)
            }
        }
    }

    /// "[manual p.3]", "[notes]", "[talk 12.0-30.5 s]": how a hit is labelled for the model and in `routed`.
    static func label(_ hit: IndexHit) -> String {
        if hit.page > 0 { return "[\(hit.documentID) p.\(hit.page)]" }
        if let start = hit.startSeconds, let end = hit.endSeconds { return String(format: "[%@ %.1f-%.1f s]", hit.documentID, start, end) }
        return "[\(hit.documentID)]"
    }

    /// The request's content: the best pages' images, then the text chunks, each labelled, then the question.
    static func parts(_ retrieval: IndexRetrieval, _ query: Query) -> [ContentPart] {
        var parts: [ContentPart] = []
        for page in retrieval.pages {
            guard let image = page.image else { continue }
            parts.append(.text("\(label(page)) page image of \"\(page.title)\":"))
            parts.append(.media(MediaInput(mimeType: page.imageMimeType, data: image, name: "\(page.documentID)-p\(page.page).jpg")))
        }
        for chunk in retrieval.text {
            let heading = chunk.heading.isEmpty ? "" : " › \(chunk.heading)"
            parts.append(.text("\(label(chunk)) \"\(chunk.title)\"\(heading):\n\(chunk.text)"))
        }
        if parts.isEmpty { parts.append(.text("No page or passage of the index '\(query.index)' matched the question.")) }
        parts.append(.text("Question: \(query.question)"))
        return parts
    }

    /// What was retrieved, for `routed.adaptations`: label, kind and score of each hit.
    static func retrievalSteps(_ retrieval: IndexRetrieval) -> [String] {
        retrieval.pages.map { "retrieved page\($0.image == nil ? "" : " image") \(label($0)) score \(String(format: "%.2f", $0.score))" }
            + retrieval.text.map { "retrieved text \(label($0)) score \(String(format: "%.2f", $0.score))" }
    }

    /// GenerateEvent{hits}.
    static func encodeHits(_ retrieval: IndexRetrieval) -> ByteBuffer {
        let b = ProtoBuilder()
        func hits(_ list: [IndexHit]) -> [UnsafeMutablePointer<Prism__V1__QueryHit>] {
            list.map { hit in
                let h = b.message(prism__v1__query_hit__init)
                h.pointee.document_id = b.string(hit.documentID)
                h.pointee.title = b.string(hit.title)
                h.pointee.page = UInt32(hit.page)
                h.pointee.score = hit.score
                h.pointee.text = b.string(hit.text)
                h.pointee.heading = b.string(hit.heading)
                h.pointee.start_seconds = hit.startSeconds ?? 0
                h.pointee.end_seconds = hit.endSeconds ?? 0
                if let image = hit.image {
                    let m = b.message(prism__v1__media__init)
                    m.pointee.mime_type = b.string(hit.imageMimeType)
                    m.pointee.data = image.withUnsafeBytes { b.bytes($0) }
                    m.pointee.name = b.string("\(hit.documentID)-p\(hit.page).jpg")
                    h.pointee.image = m
                }
                return h
            }
        }
        let text = hits(retrieval.text), pages = hits(retrieval.pages)
        let q = b.message(prism__v1__query_hits__init)
        q.pointee.n_text = text.count
        q.pointee.text = b.array(text)
        q.pointee.n_pages = pages.count
        q.pointee.pages = b.array(pages)
        let e = b.message(prism__v1__generate_event__init)
        e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_HITS
        e.pointee.hits = q
        return encodeResponse(b, e)
    }
}
