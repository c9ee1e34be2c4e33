// The planner: request needs × capability matrix → an ordered list of candidates, each a model
// and the adaptation steps that make the request fit it. Pure: it decides from values alone, so
// tests drive it with capability rows made by hand.
import Foundation

/// One conversion the gateway makes so a model can serve a request.
public enum AdaptationStep: Sendable, Equatable, CustomStringConvertible {
    /// Fit every image to the model's image limits (always done; reported only if it changed one).
    case fitImages
    /// Rasterize a PDF (by index among the request's media) into page images, plus its text layer.
    case pdfToPages(medium: Int, pages: Int)
    /// Send only a PDF's text layer (the model takes no images at all).
    case pdfToText(medium: Int)
    /// Sample frames from a video; transcribe its audio track with `transcriber` if there is one.
    case videoToFrames(medium: Int, frames: Int, transcriber: String?)
    /// Transcribe an audio input with another provider.
    case audioToTranscript(medium: Int, via: String)
    /// OCR an image with another provider.
    case imageToText(medium: Int, via: String)
    /// Generate text, then synthesize speech with another provider.
    case synthesizeAudio(via: String)

    public var description: String {
        switch self {
        case .fitImages: return "fit images"
        case let .pdfToPages(m, pages): return "pdf #\(m + 1)→\(pages) page images + text layer"
        case let .pdfToText(m): return "pdf #\(m + 1)→text layer"
        case let .videoToFrames(m, frames, via): return "video #\(m + 1)→\(frames) frames" + (via.map { " + audio transcript via \($0)" } ?? "")
        case let .audioToTranscript(m, via): return "audio #\(m + 1)→transcript via \(via)"
        case let .imageToText(m, via): return "image #\(m + 1)→text via \(via)"
        case let .synthesizeAudio(via): return "text→audio via \(via)"
        }
    }

    /// Whether the step changes what kind of content the model sees (not mere fitting).
    public var isAdaptation: Bool { self != .fitImages }
}

/// A model that can serve the request, and what must be done first.
public struct Candidate: Sendable, Equatable {
    public var model: ModelCapability
    public var steps: [AdaptationStep]
    /// The operation the model is called with: the request's, or `imageGenerate` when a generate
    /// request asking for image output goes to an image generator (see Planner.operation(of:for:)).
    public var operation: Operation = .generate
    public var isNative: Bool { !steps.contains { $0.isAdaptation } }
}

/// Chooses models for requests. Holds only configuration; thread-safe.
public struct Planner: Sendable {
    /// Preferred providers or models, best first ("anthropic", "openai/gpt-4o"); others follow
    /// in matrix order. From the config file.
    public var preference: [String]
    /// Names clients may use for a model ("smart" → "anthropic/claude-sonnet-4-5"), from the
    /// config's `models.aliases`; resolved in Route.model and Route.fallbacks before planning.
    /// Their targets are real names: the config refuses an alias to an alias.
    public var aliases: [String: String]

    /// The provider name of the engines that run on this machine (tesseract, pocketsphinx, espeak).
    static let localProvider = "local"

    public init(preference: [String] = [], aliases: [String: String] = [:]) {
        self.preference = preference
        self.aliases = aliases
    }

    /// `route` with aliases replaced by the models they stand for.
    public func resolvingAliases(_ route: RouteRequest) -> RouteRequest {
        var route = route
        route.model = aliases[route.model] ?? route.model
        route.fallbacks = route.fallbacks.map { aliases[$0] ?? $0 }
        return route
    }

    /// The row for an explicitly named "provider/id": the known one, else one made from the
    /// first family of that provider matching the id (ABI 1.3), carrying the id as asked.
    public func model(named name: String, matrix: [ModelCapability], families: [ModelFamily]) -> ModelCapability? {
        if let known = matrix.first(where: { $0.name == name }) { return known }
        guard let slash = name.firstIndex(of: "/") else { return nil }
        let provider = String(name[..<slash]), id = String(name[name.index(after: slash)...])
        guard !id.isEmpty else { return nil }
        return families.first { $0.template.provider == provider && $0.matches(id) }?.model(id)
    }

    /// The candidates for `needs`, best first: the explicit model and its fallbacks when the
    /// route names one (a known row, or any id a family of its provider matches); else native
    /// candidates in preference order, then adapted ones. Aliases are resolved first.
    /// Throws `failedPrecondition` (or `resourceExhausted` when only limits stood in the way)
    /// naming what was missing, when no model can serve.
    public func plan(_ needs: RequestNeeds, route: RouteRequest, matrix: [ModelCapability], families: [ModelFamily] = [],
                     skipping unhealthy: Set<String> = []) throws -> [Candidate] {
        let route = resolvingAliases(route)
        if !route.model.isEmpty {
            guard let model = model(named: route.model, matrix: matrix, families: families) else {
                throw unknownModel(route.model, matrix: matrix, families: families)
            }
            var candidates: [Candidate]
            switch evaluate(model, needs, nativeOnly: route.nativeOnly, matrix: matrix) {
            case .success(let steps): candidates = [candidate(model, steps, needs)]
            case .failure(let refusal): throw ProviderFailure(refusal.limit ? .resourceExhausted : .failedPrecondition, "\(model.name) cannot serve this request: \(refusal.reason)")
            }
            for name in route.fallbacks where name != model.name {
                guard let fallback = self.model(named: name, matrix: matrix, families: families),
                      case .success(let steps) = evaluate(fallback, needs, nativeOnly: route.nativeOnly, matrix: matrix) else { continue }
                candidates.append(candidate(fallback, steps, needs))
            }
            return candidates
        }

        let pool = matrix.filter { route.provider.isEmpty || $0.provider == route.provider }
        var native: [Candidate] = [], adapted: [Candidate] = [], refusals: [(ModelCapability, Refusal)] = []
        for model in ordered(pool, for: needs.operation) where operation(of: model, for: needs) != nil {
            switch evaluate(model, needs, nativeOnly: route.nativeOnly, matrix: matrix) {
            case .success(let steps):
                let found = candidate(model, steps, needs)
                if found.isNative { native.append(found) } else { adapted.append(found) }
            case .failure(let refusal):
                refusals.append((model, refusal))
            }
        }
        // A provider in its cool-down goes last rather than away: better slow than nothing.
        let all = native + adapted
        let ranked = all.filter { !unhealthy.contains($0.model.name) } + all.filter { unhealthy.contains($0.model.name) }
        var candidates = ranked
        for name in route.fallbacks where !candidates.contains(where: { $0.model.name == name }) {
            guard let fallback = model(named: name, matrix: matrix, families: families),
                  case .success(let steps) = evaluate(fallback, needs, nativeOnly: route.nativeOnly, matrix: matrix) else { continue }
            candidates.append(candidate(fallback, steps, needs))
        }
        guard candidates.isEmpty else { return candidates }
        throw noCandidate(needs, route: route, pool: pool, matrix: matrix, refusals: refusals)
    }

    /// The error for a named model nobody serves: what its provider does serve, or which providers are loaded.
    private func unknownModel(_ name: String, matrix: [ModelCapability], families: [ModelFamily]) -> ProviderFailure {
        let provider = name.firstIndex(of: "/").map { String(name[..<$0]) } ?? ""
        if let served = ProviderDescription.served(known: matrix.filter { $0.provider == provider }.map(\.id),
                                                   patterns: families.filter { $0.template.provider == provider }.map(\.pattern)) {
            return ProviderFailure(.failedPrecondition, "model '\(name)' is not served: \(provider) serves \(served)")
        }
        var providers: [String] = []
        for p in matrix.map(\.provider) + families.map(\.template.provider) where !providers.contains(p) { providers.append(p) }
        let hint = name.contains("/") ? "" : " (a model is named provider/model, or by an alias of the config)"
        return ProviderFailure(.failedPrecondition, "model '\(name)' is not loaded\(hint) (loaded providers: \(providers.isEmpty ? "none" : providers.joined(separator: ", ")))")
    }

    /// `models` with preferred ones first, each group in matrix order. Among models the preference
    /// does not name, the local engines come before vendors for every operation but generate:
    /// transcription, speech and OCR stay on this machine (no audio or scans sent out, no cost)
    /// unless the config prefers a vendor for them.
    func ordered(_ models: [ModelCapability], for operation: Operation) -> [ModelCapability] {
        func rank(_ m: ModelCapability) -> Int {
            if let index = preference.firstIndex(where: { $0 == m.name || $0 == m.provider }) { return index }
            return preference.count + (operation != .generate && m.provider == Self.localProvider ? 0 : 1)
        }
        return models.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }

    /// The operation `model` serves `needs` with, or nil if it cannot: the request's own, or
    /// `imageGenerate` for a generate request that asks for image output (an image generator
    /// such as openai/gpt-image-1 serves it; generate models with image output do too, as generate).
    func operation(of model: ModelCapability, for needs: RequestNeeds) -> Operation? {
        if model.operations.contains(needs.operation) { return needs.operation }
        if needs.operation == .generate, needs.outputs.contains(.image), model.operations.contains(.imageGenerate) {
            return .imageGenerate
        }
        return nil
    }

    private func candidate(_ model: ModelCapability, _ steps: [AdaptationStep], _ needs: RequestNeeds) -> Candidate {
        Candidate(model: model, steps: steps, operation: operation(of: model, for: needs) ?? needs.operation)
    }

    struct Refusal: Error, Equatable {
        var reason: String
        /// True when a limit (count, size) refused, not a missing capability.
        var limit = false
    }

    /// The steps that make `needs` fit `model`, or why nothing can.
    func evaluate(_ model: ModelCapability, _ needs: RequestNeeds, nativeOnly: Bool, matrix: [ModelCapability]) -> Result<[AdaptationStep], Refusal> {
        guard operation(of: model, for: needs) != nil else {
            let hint = needs.operation == .generate && model.operations.contains(.imageGenerate) ? " (ask for image output to generate an image)" : ""
            return .failure(Refusal(reason: "it does not \(needs.operation)" + hint))
        }
        if needs.tools && !model.features.tools { return .failure(Refusal(reason: "it does not support tools")) }
        if needs.jsonSchema && !model.features.jsonSchema { return .failure(Refusal(reason: "it does not support a response JSON schema")) }
        var steps: [AdaptationStep] = []
        for output in needs.outputs.sorted() where !model.outputs.contains(output) {
            if output == .audio && !nativeOnly && model.outputs.contains(.text), let voice = helper(.synthesize, accepting: .text, matrix) {
                steps.append(.synthesizeAudio(via: voice.name))
            } else {
                return .failure(Refusal(reason: "it has no \(output) output" + (output == .audio && !nativeOnly ? " and no synthesize-capable provider is loaded" : "")))
            }
        }

        var images = 0
        for (index, medium) in needs.media.enumerated() {
            switch medium.modality {
            case .text:
                continue
            case .image:
                if model.accepts(.image) {
                    images += 1
                } else if nativeOnly {
                    return .failure(Refusal(reason: "it has no image input (adaptation is off)"))
                } else if let ocr = helper(.ocr, accepting: .image, matrix) {
                    steps.append(.imageToText(medium: index, via: ocr.name))
                } else {
                    return .failure(Refusal(reason: "it has no image input and no ocr-capable provider is loaded"))
                }
            case .pdf:
                let pages = medium.pages ?? 1
                if model.accepts(.pdf) {
                    if let max = model.limits.maxPDFPages, pages > max {
                        return .failure(Refusal(reason: "PDF #\(index + 1) has \(pages) pages, over its max_pdf_pages of \(max)", limit: true))
                    }
                    if let max = model.limits.maxPDFBytes, medium.bytes > max {
                        return .failure(Refusal(reason: "PDF #\(index + 1) is \(medium.bytes) bytes, over its max_pdf_bytes of \(max)", limit: true))
                    }
                } else if nativeOnly {
                    return .failure(Refusal(reason: "it has no PDF input (adaptation is off)"))
                } else if model.accepts(.image) {
                    steps.append(.pdfToPages(medium: index, pages: pages))
                    images += pages
                } else {
                    steps.append(.pdfToText(medium: index))
                }
            case .audio:
                if model.accepts(.audio) {
                    if let max = model.limits.maxAudioSeconds, let seconds = medium.seconds, seconds > Double(max) {
                        return .failure(Refusal(reason: "audio #\(index + 1) is \(Int(seconds.rounded(.up))) s, over its max_audio_seconds of \(max)", limit: true))
                    }
                    if let max = model.limits.maxAudioBytes, medium.bytes > max {
                        return .failure(Refusal(reason: "audio #\(index + 1) is \(medium.bytes) bytes, over its max_audio_bytes of \(max)", limit: true))
                    }
                } else if nativeOnly {
                    return .failure(Refusal(reason: "it has no audio input (adaptation is off)"))
                } else if let transcriber = helper(.transcribe, accepting: .audio, matrix) {
                    steps.append(.audioToTranscript(medium: index, via: transcriber.name))
                } else {
                    return .failure(Refusal(reason: "it has no audio input and no transcribe-capable provider is loaded"))
                }
            case .video:
                if model.accepts(.video) { continue }
                if nativeOnly { return .failure(Refusal(reason: "it has no video input (adaptation is off)")) }
                guard model.accepts(.image) else {
                    return .failure(Refusal(reason: "it has neither video nor image input, so video frames cannot be sent"))
                }
                let room = model.limits.maxImages.map { $0 - images } ?? ProviderLimits.videoFrames
                let frames = min(ProviderLimits.videoFrames, room)
                guard frames > 0 else {
                    return .failure(Refusal(reason: "its max_images of \(model.limits.maxImages ?? 0) leaves no room for video frames", limit: true))
                }
                let transcriber = medium.hasAudio ? helper(.transcribe, accepting: .audio, matrix)?.name : nil
                steps.append(.videoToFrames(medium: index, frames: frames, transcriber: transcriber))
                images += frames
            }
        }
        if let max = model.limits.maxImages, images > max {
            return .failure(Refusal(reason: "the request has \(images) images (PDF pages and video frames included), over its max_images of \(max)", limit: true))
        }
        if images > 0 { steps.insert(.fitImages, at: 0) }
        return .success(steps)
    }

    /// The first model that does `operation` on `input` (a transcriber, an OCR engine, a voice).
    func helper(_ operation: Operation, accepting input: Modality, _ matrix: [ModelCapability]) -> ModelCapability? {
        ordered(matrix, for: operation).first { $0.operations.contains(operation) && $0.inputs.contains(input) }
    }

    /// The error for a request nobody can serve: what it needs that nothing loaded provides.
    private func noCandidate(_ needs: RequestNeeds, route: RouteRequest, pool: [ModelCapability], matrix: [ModelCapability],
                             refusals: [(ModelCapability, Refusal)]) -> ProviderFailure {
        let scope = route.provider.isEmpty ? "" : " of provider '\(route.provider)'"
        if needs.outputs.contains(.image), !pool.contains(where: { $0.outputs.contains(.image) }) {
            return ProviderFailure(.failedPrecondition, "needs image output; no loaded provider\(scope) generates images")
        }
        guard pool.contains(where: { operation(of: $0, for: needs) != nil }) else {
            return ProviderFailure(.failedPrecondition, "no loaded provider\(scope) can \(needs.operation)" + (pool.isEmpty && route.provider.isEmpty ? ": no provider plugin is loaded" : ""))
        }
        // What no adaptation can supply: a modality nothing takes, and no helper to convert it.
        var missing: [String] = []
        let generators = pool.filter { operation(of: $0, for: needs) != nil }
        for modality in needs.modalities.sorted() where !generators.contains(where: { $0.accepts(modality) }) {
            switch modality {
            case .audio where helper(.transcribe, accepting: .audio, matrix) == nil:
                missing.append("needs audio input; no provider accepts audio and no transcriber is loaded")
            case .image where helper(.ocr, accepting: .image, matrix) == nil:
                missing.append("needs image input; no provider accepts images and no ocr-capable provider is loaded")
            case .video where !generators.contains(where: { $0.accepts(.image) }):
                missing.append("needs video input; no provider accepts video or images (for frames)")
            default:
                continue
            }
        }
        let reasons = refusals.prefix(6).map { "\($0.0.name): \($0.1.reason)" }
        let onlyLimits = !refusals.isEmpty && refusals.allSatisfy(\.1.limit)
        let message = (missing + reasons).joined(separator: "; ")
        return ProviderFailure(onlyLimits ? .resourceExhausted : .failedPrecondition,
                               "no loaded provider\(scope) can serve this request: \(message.isEmpty ? "no candidate" : message)")
    }
}
