// What the gateway's batch scheduler needs from the planner and the adapter: the model a request
// would go to first (to group items by model at submit), the request adapted for a vendor batch
// exactly as Generate would adapt it for that model, and the batch price of an item's usage.
import Foundation

extension Generator {
    /// The model `request` would be sent to first (fallbacks aside), as Generate plans it now.
    /// Throws the planner's ProviderFailure when no model can serve it.
    public func firstChoice(for request: GenerationRequest) async throws -> ModelCapability {
        let needs = try await offload { try RequestNeeds.of(request) }
        let candidates = try planner.plan(needs, route: request.route, matrix: host.capabilityMatrix(), skipping: health.coolingDown())
        guard let first = candidates.first else { throw ProviderFailure(.unavailable, "no provider could serve the request") }
        return first.model
    }

    /// `request` as `model` receives it (media fitted, PDFs paged, ...), for a vendor batch where
    /// there is no fallback: the plan is for `model` alone. Throws the planner's or the media
    /// core's ProviderFailure when the request cannot be made to fit it.
    public func adaptForBatch(_ request: GenerationRequest, model: ModelCapability) async throws -> GenerationRequest {
        var route = request.route
        route.model = model.name
        route.fallbacks = []
        let needs = try await offload { try RequestNeeds.of(request) }
        guard let candidate = try planner.plan(needs, route: route, matrix: host.capabilityMatrix()).first else {
            throw ProviderFailure(.failedPrecondition, "\(model.name) cannot serve this request")
        }
        return try await Adapter(host: host).adapt(request, for: candidate).0
    }
}

extension Usage {
    /// What a vendor batch bills relative to the list price: OpenAI's Batch API, Anthropic's
    /// Message Batches and Gemini's batch mode all charge half.
    public static let batchPriceFactor = 0.5

    /// This usage at `pricing`'s batch price, in micro-dollars.
    public func batchCost(at pricing: ModelPricing) -> UInt64 {
        UInt64((Double(cost(at: pricing)) * Self.batchPriceFactor).rounded())
    }

    /// What the same usage would cost at the list price, in micro-dollars.
    public func listCost(at pricing: ModelPricing) -> UInt64 { cost(at: pricing) }
}
