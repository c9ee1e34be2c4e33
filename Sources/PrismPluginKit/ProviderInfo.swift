// What a Swift plugin says it can do: Swift values for prism.plugin.v1.ProviderInfo and its
// model rows, encoded once by the kit for `describe`.
import Foundation

/// The operations and modalities of plugin.proto, by their proto numbers.
public enum Operation: Int, Sendable {
    case generate = 1, transcribe, synthesize, ocr, embed, imageGenerate
    /// ABI 1.2: an action on the vendor's batch API (ProviderRequest.batch); never a model row's operation.
    case batch = 64
}
public enum Modality: Int, Sendable { case text = 1, image, audio, pdf, video }

/// One row of the capability matrix; 0 or empty limits mean "no limit known".
public struct ModelInfo: Sendable {
    public var id: String
    public var operations: [Operation] = [.generate]
    public var inputs: [Modality] = [.text]
    public var outputs: [Modality] = [.text]
    public var maxImages: UInt32 = 0
    public var maxImageBytes: UInt64 = 0
    public var maxImageLongEdge: UInt32 = 0
    /// ABI 1.3: shortest side in pixels (OpenAI's `high` detail scales it to 768 anyway).
    public var maxImageShortEdge: UInt32 = 0
    public var maxImagePixels: UInt64 = 0
    public var imageMimeTypes: [String] = []
    public var maxPDFPages: UInt32 = 0
    public var maxPDFBytes: UInt64 = 0
    public var maxAudioSeconds: UInt32 = 0
    public var maxAudioBytes: UInt64 = 0
    public var audioMimeTypes: [String] = []
    public var maxRequestBytes: UInt64 = 0
    public var streaming = true
    public var tools = false
    public var jsonSchema = false
    public var batch = false
    public var systemPrompt = true
    /// Micro-dollars per million tokens.
    public var inputPrice: UInt64 = 0
    public var outputPrice: UInt64 = 0

    public init(id: String) { self.id = id }
}

/// The answer of `describe`.
public struct ProviderInfo: Sendable {
    public var name: String
    public var version: String
    public var description: String
    public var models: [ModelInfo]
    /// ABI 1.3: families, most specific first; each `id` is a pattern such as "claude-*" (see
    /// ProviderInfo.families in plugin.proto). Any id a family matches is routed to the plugin as it is.
    public var families: [ModelInfo]

    public init(name: String, version: String, description: String, models: [ModelInfo], families: [ModelInfo] = []) {
        self.name = name
        self.version = version
        self.description = description
        self.models = models
        self.families = families
    }

    /// The serialized prism.plugin.v1.ProviderInfo.
    func serialized() -> [UInt8] {
        var w = ProtoWriter()
        w.string(1, name)
        w.string(2, version)
        w.string(3, description)
        for (field, m) in models.map({ (4, $0) }) + families.map({ (5, $0) }) {
            w.message(field) { row in
                row.string(1, m.id)
                row.enums(2, m.operations.map(\.rawValue))
                row.enums(3, m.inputs.map(\.rawValue))
                row.enums(4, m.outputs.map(\.rawValue))
                row.message(5) { l in
                    l.uint(1, UInt64(m.maxImages))
                    l.uint(2, m.maxImageBytes)
                    l.uint(3, UInt64(m.maxImageLongEdge))
                    l.uint(4, m.maxImagePixels)
                    for t in m.imageMimeTypes { l.string(5, t) }
                    l.uint(6, UInt64(m.maxPDFPages))
                    l.uint(7, m.maxPDFBytes)
                    l.uint(8, UInt64(m.maxAudioSeconds))
                    l.uint(9, m.maxAudioBytes)
                    for t in m.audioMimeTypes { l.string(10, t) }
                    l.uint(11, m.maxRequestBytes)
                    l.uint(12, UInt64(m.maxImageShortEdge))
                }
                row.message(6) { f in
                    f.bool(1, m.streaming)
                    f.bool(2, m.tools)
                    f.bool(3, m.jsonSchema)
                    f.bool(4, m.batch)
                    f.bool(5, m.systemPrompt)
                }
                row.message(7) { p in
                    p.uint(1, m.inputPrice)
                    p.uint(2, m.outputPrice)
                }
            }
        }
        return w.bytes
    }
}
