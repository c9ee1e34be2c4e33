// prism.v1.Prism, the gateway's own API. Every method is routed; those whose layers have not
// landed yet answer UNIMPLEMENTED saying what is missing, never a fake result. Generate and
// ListProviders are served by the plugin host (GenerateService, ProvidersService), Extract by the
// Extractor on top of Generate.
import PrismProviders
import PrismRPC

enum PrismService {
    static let name = "prism.v1.Prism"

    /// Method name, call shape, and the capability it waits for.
    private static let methods: [(String, Shape, String)] = [
        ("Generate", .serverStreaming, "provider plugins and routing"),
        ("Extract", .unary, "provider plugins and routing"),
        ("Converse", .bidirectional, "provider plugins and routing"),
        ("Transcribe", .bidirectional, "a transcribe-capable provider plugin"),
        ("Synthesize", .serverStreaming, "a synthesize-capable provider plugin"),
        ("ListProviders", .unary, "the plugin host"),
        ("SubmitBatch", .unary, "durable batches"),
        ("GetBatch", .unary, "durable batches"),
        ("CancelBatch", .unary, "durable batches"),
        ("StreamBatchResults", .serverStreaming, "durable batches"),
        ("IndexDocument", .clientStreaming, "the document index"),
        ("Query", .serverStreaming, "the document index"),
        ("DeleteDocument", .unary, "the document index"),
        ("ListDocuments", .unary, "the document index"),
        ("ListIndexes", .unary, "the document index"),
    ]

    private enum Shape { case unary, serverStreaming, clientStreaming, bidirectional }

    /// The method table; with a `generator`, Generate and ListProviders are served by its plugin
    /// host, Converse within the `converse` bounds, and Extract with `extractRepairs` repair rounds.
    /// With `documents` too, the index's methods are served by its store; with `batches`, the batch
    /// RPCs by the batch store (or, when it could not be had, answered FAILED_PRECONDITION with the reason).
    static func definition(generator: Generator? = nil, converse: ConverseLimits = ConverseLimits(),
                           extractRepairs: Int = Extractor.defaultRepairs, documents: IndexService.Parts? = nil,
                           batches: Result<BatchService, RPCError>? = nil) -> ServiceDefinition {
        var service = ServiceDefinition(name: name)
        for (method, shape, needs) in methods {
            let error = RPCError(.unimplemented, "\(name)/\(method) is not available in this build: it needs \(needs), which has not landed yet")
            switch shape {
            case .unary: service.add(method, .unary { _, _ in throw error })
            case .serverStreaming: service.add(method, .serverStreaming { _, _, _ in throw error })
            case .clientStreaming: service.add(method, .clientStreaming { _, _ in throw error })
            case .bidirectional: service.add(method, .bidirectional { _, _, _ in throw error })
            }
        }
        if let generator {
            service.add("Generate", GenerateService.handler(generator))
            service.add("Extract", ExtractService.handler(Extractor(generator: generator, repairs: extractRepairs)))
            service.add("ListProviders", ProvidersService.handler(generator.host))
            service.add("Transcribe", TranscribeService.handler(generator))
            service.add("Synthesize", SynthesizeService.handler(generator))
            service.add("Converse", ConverseService.handler(generator, limits: converse))
            if let documents {
                service.add("IndexDocument", IndexService.indexDocument(documents.index, documents.ingester, maxUploadBytes: documents.maxUploadBytes))
                service.add("Query", QueryService.handler(documents, generator))
                service.add("DeleteDocument", IndexService.deleteDocument(documents.index))
                service.add("ListDocuments", IndexService.listDocuments(documents.index))
                service.add("ListIndexes", IndexService.listIndexes(documents.index))
            }
        }
        switch batches {
        case .success(let batches)?: batches.register(in: &service)
        case .failure(let error)?:
            for method in ["SubmitBatch", "GetBatch", "CancelBatch"] { service.add(method, .unary { _, _ in throw error }) }
            service.add("StreamBatchResults", .serverStreaming { _, _, _ in throw error })
        case nil: break
        }
        return service
    }
}
