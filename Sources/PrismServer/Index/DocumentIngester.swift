// Turns an uploaded document into what the index stores: PDF pages (text layer, OCR through an
// ocr-capable provider where a page has none, a fitted page image), images (OCR text + the image),
// plain text and Markdown (chunks with headings), audio and video (transcript segments with
// times, through a transcribe-capable provider); page descriptions by a vision model when
// `index.describe_model` is set, chunk embeddings when `index.embed_model` is. Blocking media
// work runs off the cooperative threads.
import Foundation
import Logging
import PrismMedia
import PrismProviders
import PrismRPC
import PrismStore

struct DocumentIngester: Sendable {
    let generator: Generator
    /// provider/model describing each page image (`index.describe_model`); nil: no descriptions.
    let describeModel: String?
    /// provider/model embedding chunks and questions (`index.embed_model`); nil: keyword search alone.
    let embedModel: String?
    let logger: Logger

    /// The MediaChunk type of one embedding in a plugin's answer (plugins/README.md).
    static let embeddingMimeType = "application/vnd.prism.embedding+f32le"

    /// The header of an upload and its bytes.
    struct Upload: Sendable {
        var index: String
        var documentID: String
        var declaredMime: String
        var title: String
        var data: Data
    }

    /// What was made, and the notes for the response (what was skipped or done differently).
    struct Result: Sendable {
        var content: IndexedContent
        var notes: [String]
    }

    /// The stored page images: JPEG at the long edge every vision model takes.
    static let pageTarget = ImageTarget(maxLongEdge: IndexLimits.pageImageLongEdge, acceptedFormats: [.jpeg], preferredFormat: .jpeg)

    /// Reads `upload` by what its bytes are (the declared type is a hint, checked, never trusted).
    func ingest(_ upload: Upload) async throws -> Result {
        let verdict = MediaSniffer.verdict(upload.data, declaredMime: upload.declaredMime.isEmpty ? nil : upload.declaredMime)
        var notes: [String] = []
        if verdict.mismatch, verdict.format != .unknown {
            notes.append("declared \(upload.declaredMime) but the bytes are \(verdict.format.rawValue); indexed as \(verdict.format.rawValue)")
        }
        var content = IndexedContent(index: upload.index, documentID: upload.documentID,
                                     title: upload.title.isEmpty ? upload.documentID : upload.title,
                                     mimeType: verdict.format.mimeType, pages: [], chunks: [])
        switch verdict.format.kind {
        case .document:
            try await pdf(upload.data, into: &content, notes: &notes)
        case .image:
            try await image(upload.data, declared: upload.declaredMime, into: &content, notes: &notes)
        case .audio, .video:
            try await recording(upload.data, format: verdict.format, into: &content, notes: &notes)
        case .unknown:
            guard let text = Self.text(upload.data) else {
                throw RPCError(.invalidArgument, "data: not a document Prism can index (PDF, image, UTF-8 text or Markdown)\(upload.declaredMime.isEmpty ? "" : "; declared \(upload.declaredMime)")")
            }
            let markdown = upload.declaredMime.lowercased().contains("markdown") || Self.looksLikeMarkdown(text)
            content.mimeType = markdown ? "text/markdown" : "text/plain"
            content.chunks = TextChunker().chunks([(0, text)], style: markdown ? .markdown : .plain)
        }
        if let embedModel, !content.chunks.isEmpty {
            let vectors = try await embed(content.chunks.map { [content.title, $0.heading, $0.text].filter { !$0.isEmpty }.joined(separator: "\n") })
            for index in content.chunks.indices { content.chunks[index].embedding = vectors[index] }
            content.embeddingModel = embedModel
            notes.append("\(content.chunks.count) chunk(s) embedded by \(embedModel)")
        }
        return Result(content: content, notes: notes)
    }

    /// The normalised embeddings of `texts` by `embedModel`, in order, a batch of texts per call.
    func embed(_ texts: [String]) async throws -> [[Float]] {
        guard let embedModel else { return [] }
        var vectors: [[Float]] = []
        for start in stride(from: 0, to: texts.count, by: IndexLimits.embedBatch) {
            let batch = texts[start..<min(texts.count, start + IndexLimits.embedBatch)]
            var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: batch.map { .text($0) })])
            request.operation = .embed
            request.route.model = embedModel
            let answer = try await run(request)
            guard answer.media.count == batch.count else {
                throw ProviderFailure(.internalError, "\(embedModel) answered \(answer.media.count) embeddings for \(batch.count) texts")
            }
            vectors += answer.media.map { VectorMath.normalized(VectorMath.floats($0)) }
        }
        return vectors
    }

    // MARK: - kinds

    private func pdf(_ data: Data, into content: inout IndexedContent, notes: inout [String]) async throws {
        let (document, texts) = try await media("pdf") {
            let document = try PDFDocument(data)
            return (document, try document.texts())
        }
        var ocrPages: [Int] = [], unreadPages: [Int] = [], ocrModels = Set<String>()
        var descriptions: [IndexChunk] = []
        for index in 0..<document.pageCount {
            try Task.checkCancellation()
            let image = try await media("pdf page \(index + 1)") { try document.render(page: index, target: Self.pageTarget) }
            var text = texts[index]
            if text.filter(\.isLetter).count < IndexLimits.minTextLayerLetters {
                // A scan: the page image is all there is.
                if let read = try await recognise(image.data, mime: image.format.mimeType) {
                    text = read.text
                    ocrPages.append(index + 1)
                    ocrModels.insert(read.model)
                } else {
                    unreadPages.append(index + 1)
                }
            }
            if let description = try await describe(image.data, mime: image.format.mimeType, notes: &notes) {
                descriptions.append(IndexChunk(page: index + 1, heading: "page description", text: description))
            }
            content.pages.append(IndexPage(number: index + 1, text: text, image: image.data, imageMimeType: image.format.mimeType))
        }
        if !ocrPages.isEmpty {
            notes.append("\(ocrPages.count) page(s) without a text layer read by OCR (\(ocrModels.sorted().joined(separator: ", "))): \(Self.list(ocrPages))")
        }
        if !unreadPages.isEmpty {
            notes.append("\(unreadPages.count) page(s) without a text layer and no OCR provider loaded: indexed by their image only: \(Self.list(unreadPages))")
        }
        noteDescriptions(&notes)
        content.chunks = TextChunker().chunks(content.pages.map { ($0.number, $0.text) }, style: .plain) + descriptions
    }

    private func image(_ data: Data, declared: String, into content: inout IndexedContent, notes: inout [String]) async throws {
        let fitted = try await media("image") { try ImageFitter.fit(data, declaredMime: declared.isEmpty ? nil : declared, target: Self.pageTarget) }
        var text = ""
        // The original goes to OCR: the generator fits it to the engine's own limits.
        if let read = try await recognise(data, mime: MediaSniffer.sniff(data).mimeType) {
            text = read.text
            notes.append("image text read by OCR (\(read.model))")
        } else {
            notes.append("no OCR provider loaded: the image is indexed without its text")
        }
        var chunks = TextChunker().chunks([(1, text)], style: .plain)
        if let description = try await describe(fitted.data, mime: fitted.format.mimeType, notes: &notes) {
            chunks.append(IndexChunk(page: 1, heading: "page description", text: description))
        }
        noteDescriptions(&notes)
        content.pages = [IndexPage(number: 1, text: text, image: fitted.data, imageMimeType: fitted.format.mimeType)]
        content.chunks = chunks
    }

    /// Audio, and video's sound track: transcript segments with their times, grouped into chunks.
    /// Video frames are not indexed (yet): the note says so.
    private func recording(_ data: Data, format: MediaFormat, into content: inout IndexedContent, notes: inout [String]) async throws {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.media(MediaInput(mimeType: format.mimeType, data: data))])])
        request.operation = .transcribe
        let transcript: (text: String, model: String, media: [Data])
        do {
            transcript = try await run(request)
        } catch let failure as ProviderFailure where failure.code == .failedPrecondition {
            throw RPCError(.failedPrecondition, "data: indexing \(format.kind.rawValue) needs a transcribe-capable provider (local/pocketsphinx, or a vendor with a key): \(failure.message)")
        }
        let segments: [(start: Double, end: Double, text: String)] = transcript.media.compactMap { json in
            guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let text = object["text"] as? String else { return nil }
            return ((object["start"] as? Double) ?? 0, (object["end"] as? Double) ?? 0, text)
        }
        content.chunks = segments.isEmpty ? TextChunker().chunks([(0, transcript.text)], style: .plain) : TextChunker().chunks(segments: segments)
        notes.append("transcribed by \(transcript.model): \(segments.count) segment(s) with times")
        if format.kind == .video { notes.append("video frames are not indexed: the sound track's transcript only") }
    }

    // MARK: - helpers

    /// Runs blocking media work off the cooperative threads; refusals become the client's status.
    private func media<T: Sendable>(_ what: String, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await offload(work)
        } catch let error as MediaError {
            throw ProviderFailure.media(error, what)
        }
    }

    /// The text of an image through an ocr-capable provider (local/tesseract when loaded), and
    /// the model that read it; nil when no provider can OCR.
    private func recognise(_ image: Data, mime: String) async throws -> (text: String, model: String)? {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.media(MediaInput(mimeType: mime, data: image))])])
        request.operation = .ocr
        do {
            let (text, model, _) = try await run(request)
            return (text, model)
        } catch let failure as ProviderFailure where failure.code == .failedPrecondition {
            return nil
        }
    }

    /// A description of a page image by `describeModel`, or nil when none is configured. A failing
    /// model does not fail the upload: the page is still indexed by its text, and a note says so.
    private func describe(_ image: Data, mime: String, notes: inout [String]) async throws -> String? {
        guard let describeModel else { return nil }
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [
            .media(MediaInput(mimeType: mime, data: image)),
            .text("Describe this document page for a search index: its headings, figures, tables, charts and key facts, in plain text."),
        ])])
        request.route.model = describeModel
        do {
            return try await run(request).text
        } catch let failure as ProviderFailure where failure.code != .cancelled && failure.code != .deadlineExceeded {
            let note = "page descriptions by \(describeModel) failed: \(failure.message)"
            if !notes.contains(note) { notes.append(note) }
            logger.warning("\(note)")
            return nil
        }
    }

    private func noteDescriptions(_ notes: inout [String]) {
        guard describeModel == nil else { return }
        notes.append("page descriptions skipped: index.describe_model is not set")
    }

    /// Runs a request: its joined text, the model last routed to, and the media items a helper
    /// answers with (a speech engine's transcript segments, an embedding model's vectors).
    private func run(_ request: GenerationRequest) async throws -> (text: String, model: String, media: [Data]) {
        let collected = LockedBox((text: "", model: "", media: [Data]()))
        try await generator.generate(request) { output in
            switch output {
            case .routed(let info): collected.withLockedValue { $0 = ("", info.model, []) }  // a retry starts over
            case .event(.text(let text)): collected.withLockedValue { $0.text += text }
            case .event(.media(let mime, let data, _)) where mime == TranscribeService.segmentMimeType || mime == Self.embeddingMimeType:
                collected.withLockedValue { $0.media.append(data) }
            case .event: break
            }
        }
        return collected.withLockedValue { $0 }
    }

    /// The bytes as text when they are UTF-8 without NULs (not a binary format we do not know).
    static func text(_ data: Data) -> String? {
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else { return nil }
        return text
    }

    /// Whether a text without a declared type uses Markdown headings.
    static func looksLikeMarkdown(_ text: String) -> Bool {
        text.split(whereSeparator: \.isNewline).contains { TextChunker.heading(String($0), style: .markdown) != nil }
    }

    /// "1, 2, 5" (at most ten, then "...").
    static func list(_ pages: [Int]) -> String {
        pages.prefix(10).map(String.init).joined(separator: ", ") + (pages.count > 10 ? ", ..." : "")
    }
}
