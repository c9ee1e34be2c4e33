// The embed operation's shape, shared by the plugins that serve it: the capability row of an
// embedding model, and one vector as the MediaChunk the host reads (plugins/README.md).
import Foundation

extension ModelInfo {
    /// An embedding model's row: texts in, one vector each, answered whole.
    public static func embedder(_ id: String) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.operations = [.embed]
        m.inputs = [.text]
        m.outputs = [.text]
        m.streaming = false
        m.systemPrompt = false
        return m
    }
}

extension ProviderCall {
    /// The MediaChunk type of one embedding: little-endian float32.
    public static let embeddingMimeType = "application/vnd.prism.embedding+f32le"

    /// Emits one embedding (the vendor's JSON numbers) as a MediaChunk of `embeddingMimeType`
    /// with `last` set; false when the call was cancelled.
    public func embedding(_ values: [NSNumber]) -> Bool {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for value in values { withUnsafeBytes(of: value.floatValue.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return media(mimeType: Self.embeddingMimeType, data: bytes, last: true)
    }
}
