// Every bound of the document index's server side in one place, each with the reason for its number.
import Foundation

enum IndexLimits {
    /// Default of `index.max_upload_bytes`: a long scanned book fits, a stray disk image does not.
    static let defaultMaxUploadBytes = 256 << 20
    /// Words per chunk: a few paragraphs, enough context for an answer, few enough that BM25 still
    /// tells a chunk about the question from one that mentions it in passing.
    static let chunkWords = 220
    /// Words repeated from the end of one chunk at the start of the next, so that a sentence cut
    /// by a chunk boundary is still found whole.
    static let overlapWords = 30
    /// A page whose text layer has fewer letters than this is treated as scanned and OCR'd.
    static let minTextLayerLetters = 24
    /// Long edge of the stored page images: Anthropic's own (1568 px), which every vision model
    /// takes; the adapter fits them further for a model with smaller limits.
    static let pageImageLongEdge = 1568
    /// Names of indexes and documents: short enough to label every chunk sent to a model.
    static let maxIndexNameLength = 128
    static let maxDocumentIDLength = 256
    /// Chunks per embedding call: few calls for a long document, small enough requests for any vendor.
    static let embedBatch = 64
    /// Query's top_k bounds: more would not fit a model's context usefully.
    static let maxTopKText = 50
    static let maxTopKImages = 20
    static let defaultTopKText = 5
    static let defaultTopKImages = 3
}
