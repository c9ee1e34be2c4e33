// The capability matrix as Swift values: what each loaded model can do, accept, produce, and its
// limits, decoded from a plugin's serialized prism.plugin.v1.ProviderInfo.
import Foundation
import PrismProto

/// A kind of content. Raw values are the proto numbers (prism.v1 and prism.plugin.v1 agree).
public enum Modality: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case text = 1, image = 2, audio = 3, pdf = 4, video = 5

    public var description: String {
        switch self {
        case .text: return "text"
        case .image: return "image"
        case .audio: return "audio"
        case .pdf: return "pdf"
        case .video: return "video"
        }
    }

    public static func < (a: Modality, b: Modality) -> Bool { a.rawValue < b.rawValue }
}

/// What a model can be asked to do. Raw values are the proto numbers.
public enum Operation: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case generate = 1, transcribe = 2, synthesize = 3, ocr = 4, embed = 5, imageGenerate = 6

    public var description: String {
        switch self {
        case .generate: return "generate"
        case .transcribe: return "transcribe"
        case .synthesize: return "synthesize"
        case .ocr: return "ocr"
        case .embed: return "embed"
        case .imageGenerate: return "image-generate"
        }
    }

    public static func < (a: Operation, b: Operation) -> Bool { a.rawValue < b.rawValue }
}

/// A model's limits; nil or empty means no limit is known.
public struct ModelLimits: Sendable, Equatable {
    public var maxImages: Int?
    public var maxImageBytes: Int?
    public var maxImageLongEdge: Int?
    /// ABI 1.3: shortest side (OpenAI scales it to 768 before tiling).
    public var maxImageShortEdge: Int?
    public var maxImagePixels: Int?
    public var imageMimeTypes: [String] = []
    public var maxPDFPages: Int?
    public var maxPDFBytes: Int?
    public var maxAudioSeconds: Int?
    public var maxAudioBytes: Int?
    public var audioMimeTypes: [String] = []
    public var maxRequestBytes: Int?

    public init() {}
}

/// What a model supports beyond plain generation.
public struct ModelFeatures: Sendable, Equatable {
    public var streaming = false
    public var tools = false
    public var jsonSchema = false
    public var batch = false
    public var systemPrompt = false
    /// Reads its input while it arrives (host->read_input, ABI 1.1); see plugin.proto.
    public var streamingInput = false

    public init(streaming: Bool = false, tools: Bool = false, jsonSchema: Bool = false, batch: Bool = false, systemPrompt: Bool = false,
                streamingInput: Bool = false) {
        self.streaming = streaming
        self.tools = tools
        self.jsonSchema = jsonSchema
        self.batch = batch
        self.systemPrompt = systemPrompt
        self.streamingInput = streamingInput
    }
}

/// Price in micro-dollars per million tokens; 0 = unknown or free.
public struct ModelPricing: Sendable, Equatable {
    public var inputPerMillion: UInt64 = 0
    public var outputPerMillion: UInt64 = 0

    public init(inputPerMillion: UInt64 = 0, outputPerMillion: UInt64 = 0) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }
}

/// One row of the capability matrix: a model of a provider. The planner decides from these alone,
/// so tests can plan against rows made by hand.
public struct ModelCapability: Sendable, Equatable {
    public var provider: String
    public var id: String
    public var operations: Set<Operation>
    public var inputs: Set<Modality>
    public var outputs: Set<Modality>
    public var limits: ModelLimits
    public var features: ModelFeatures
    public var pricing: ModelPricing

    public init(provider: String, id: String, operations: Set<Operation> = [.generate], inputs: Set<Modality> = [.text],
                outputs: Set<Modality> = [.text], limits: ModelLimits = ModelLimits(), features: ModelFeatures = ModelFeatures(),
                pricing: ModelPricing = ModelPricing()) {
        self.provider = provider
        self.id = id
        self.operations = operations
        self.inputs = inputs
        self.outputs = outputs
        self.limits = limits
        self.features = features
        self.pricing = pricing
    }

    /// "provider/model", the name clients route by.
    public var name: String { "\(provider)/\(id)" }

    /// Whether the model takes `modality` as input (text is implied for generation).
    public func accepts(_ modality: Modality) -> Bool {
        modality == .text ? true : inputs.contains(modality)
    }
}

/// A provider as its plugin describes itself.
public struct ProviderDescription: Sendable, Equatable {
    public var name: String
    public var version: String
    public var summary: String
    /// The known models, each with exact limits and prices (what ListProviders lists).
    public var models: [ModelCapability]
    /// ABI 1.3: families that make other ids of this provider routable, most specific first.
    public var families: [ModelFamily]

    public init(name: String, version: String, summary: String = "", models: [ModelCapability], families: [ModelFamily] = []) {
        self.name = name
        self.version = version
        self.summary = summary
        self.models = models
        self.families = families
    }

    /// The row for `id`: the known model, else one made from the first family matching it.
    public func model(_ id: String) -> ModelCapability? {
        models.first { $0.id == id } ?? families.first { $0.matches(id) }?.model(id)
    }

    /// What this provider serves, for an error naming it: "claude-sonnet-4-5, …, and ids matching claude-*".
    public var served: String {
        Self.served(known: models.map(\.id), patterns: families.map(\.pattern)) ?? "no model" + (summary.isEmpty ? "" : " (\(summary))")
    }

    /// Known ids and family patterns as one phrase, or nil when there are neither.
    static func served(known: [String], patterns: [String]) -> String? {
        let matching = patterns.isEmpty ? nil : "ids matching " + patterns.joined(separator: ", ")
        switch (known.isEmpty, matching) {
        case (true, nil): return nil
        case (false, nil): return known.joined(separator: ", ")
        case (true, let matching?): return matching
        case (false, let matching?): return known.joined(separator: ", ") + ", and " + matching
        }
    }

    /// Decodes a serialized prism.plugin.v1.ProviderInfo, checking what the host relies on:
    /// a lower-case provider name without "/", and model ids that are present and unique.
    public init(serialized bytes: UnsafeRawBufferPointer) throws {
        let info = try ProtoMessage(prism__plugin__v1__provider_info__init, bytes: bytes)
        let name = String(protoC: info.pointee.name)
        guard !name.isEmpty, !name.contains("/"), name == name.lowercased() else {
            throw DescriptionError("provider name '\(name)' must be non-empty, lower-case and without '/'")
        }
        var models: [ModelCapability] = []
        var seen = Set<String>()
        for model in elements(info.pointee.models, info.pointee.n_models) {
            let id = String(protoC: model.pointee.id)
            guard !id.isEmpty, !seen.contains(id) else {
                throw DescriptionError("model id '\(id)' of provider '\(name)' is empty or repeated")
            }
            seen.insert(id)
            models.append(Self.capability(provider: name, id: id, model.pointee))
        }
        var families: [ModelFamily] = []
        for family in elements(info.pointee.families, info.pointee.n_families) {
            let pattern = String(protoC: family.pointee.id)
            guard pattern.contains("*"), !families.contains(where: { $0.pattern == pattern }) else {
                throw DescriptionError("family '\(pattern)' of provider '\(name)' has no '*' or is repeated")
            }
            families.append(ModelFamily(pattern: pattern, template: Self.capability(provider: name, id: pattern, family.pointee)))
        }
        self.init(name: name, version: String(protoC: info.pointee.version), summary: String(protoC: info.pointee.description),
                  models: models, families: families)
        withExtendedLifetime(info) {}
    }

    private static func capability(provider: String, id: String, _ m: Prism__Plugin__V1__ModelInfo) -> ModelCapability {
        var limits = ModelLimits()
        if let l = m.limits?.pointee {
            func some<T: BinaryInteger>(_ v: T) -> Int? { v > 0 ? Int(v) : nil }
            limits.maxImages = some(l.max_images)
            limits.maxImageBytes = some(l.max_image_bytes)
            limits.maxImageLongEdge = some(l.max_image_long_edge)
            limits.maxImageShortEdge = some(l.max_image_short_edge)
            limits.maxImagePixels = some(l.max_image_pixels)
            limits.imageMimeTypes = strings(l.image_mime_types, l.n_image_mime_types)
            limits.maxPDFPages = some(l.max_pdf_pages)
            limits.maxPDFBytes = some(l.max_pdf_bytes)
            limits.maxAudioSeconds = some(l.max_audio_seconds)
            limits.maxAudioBytes = some(l.max_audio_bytes)
            limits.audioMimeTypes = strings(l.audio_mime_types, l.n_audio_mime_types)
            limits.maxRequestBytes = some(l.max_request_bytes)
        }
        var features = ModelFeatures()
        if let f = m.features?.pointee {
            features = ModelFeatures(streaming: f.streaming != 0, tools: f.tools != 0, jsonSchema: f.json_schema != 0,
                                     batch: f.batch != 0, systemPrompt: f.system_prompt != 0, streamingInput: f.streaming_input != 0)
        }
        var pricing = ModelPricing()
        if let p = m.pricing?.pointee {
            pricing = ModelPricing(inputPerMillion: p.input_usd_micros_per_million_tokens, outputPerMillion: p.output_usd_micros_per_million_tokens)
        }
        // Unknown enum numbers (from a newer plugin) are ignored rather than refused.
        let operations = Set(UnsafeBufferPointer(start: m.operations, count: m.operations == nil ? 0 : m.n_operations)
            .compactMap { Operation(rawValue: Int($0.rawValue)) })
        let inputs = Set(UnsafeBufferPointer(start: m.inputs, count: m.inputs == nil ? 0 : m.n_inputs)
            .compactMap { Modality(rawValue: Int($0.rawValue)) })
        var outputs = Set(UnsafeBufferPointer(start: m.outputs, count: m.outputs == nil ? 0 : m.n_outputs)
            .compactMap { Modality(rawValue: Int($0.rawValue)) })
        if outputs.isEmpty && (operations.contains(.generate) || operations.contains(.transcribe) || operations.contains(.ocr)) {
            outputs = [.text]
        }
        return ModelCapability(provider: provider, id: id, operations: operations, inputs: inputs, outputs: outputs,
                               limits: limits, features: features, pricing: pricing)
    }
}

/// A plugin's description broke a rule the host relies on.
public struct DescriptionError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The non-NULL elements of a protobuf-c repeated message field.
func elements<Element>(_ array: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, _ count: Int) -> [UnsafeMutablePointer<Element>] {
    UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).compactMap { $0 }
}

/// A protobuf-c repeated string field as Swift strings.
func strings(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String] {
    UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).map { String(protoC: $0) }
}
