// Carries out a candidate's adaptation steps with the media core (PrismMedia) and, for OCR and
// transcription, other loaded providers: images fitted to the model's limits, PDFs turned into
// page images and their text layer, videos into frames. Returns the rewritten request and one
// human-readable line per step for the `routed` event.
import Foundation
import PrismMedia
import Tracing

struct Adapter: Sendable {
    let host: PluginHost
    var mediaLimits = MediaLimits.standard

    /// The request as `candidate.model` will receive it, and what was done to get there.
    func adapt(_ request: GenerationRequest, for candidate: Candidate) async throws -> (GenerationRequest, [String]) {
        let model = candidate.model
        let target = model.limits.imageTarget
        let media = request.media
        var replacements: [Int: [ContentPart]] = [:]
        var report: [String] = []
        var fittedLines: [String] = []

        for (index, item) in media.enumerated() {
            let label = item.media.name.isEmpty ? "#\(index + 1)" : "'\(item.media.name)'"
            let step = candidate.steps.first { step in
                switch step {
                case .pdfToPages(let m, _), .pdfToText(let m), .videoToFrames(let m, _, _), .audioToTranscript(let m, _), .imageToText(let m, _):
                    return m == index
                case .fitImages, .synthesizeAudio:
                    return false
                }
            }
            // One span per medium: what was done to it, and how long it took.
            try await withSpan("prism.adapt \(Self.spanName(of: step))") { span in
                span.attributes["prism.media.index"] = index
                span.attributes["prism.media.mime_type"] = item.media.mimeType
                switch step {
                case .pdfToPages?:
                    let (parts, pages, edge) = try await offload { try self.pdfPages(item.media, label: label, target: target) }
                    replacements[index] = parts
                    report.append("pdf \(label)→\(pages) page images (\(edge)px) + text layer")
                case .pdfToText?:
                    let (text, pages) = try await offload { try self.pdfText(item.media, label: label) }
                    replacements[index] = [.text(text)]
                    report.append("pdf \(label)→text layer of \(pages) pages (\(model.name) takes no images)")
                case let .videoToFrames(_, frames, transcriber)?:
                    var parts = try await offload { try self.videoFrames(item.media, count: frames, label: label, target: target) }
                    var line = "video \(label)→\(parts.count) frames (\(target.maxLongEdge.map { "\($0)px" } ?? "full size"))"
                    if let transcriber {
                        let pcm = try await offload { try VideoSampler.extractAudio(item.media.data, limits: self.mediaLimits) }
                        let wav = AudioEncoder.wavHeader(format: pcm.format, dataBytes: pcm.pcm.count) + pcm.pcm
                        let text = try await helper(transcriber, .transcribe, MediaInput(mimeType: "audio/wav", data: wav, name: item.media.name), request)
                        parts.append(.text("[audio track of video \(label), transcribed]\n\(text)"))
                        line += " + audio transcript via \(transcriber)"
                    }
                    replacements[index] = parts
                    report.append(line)
                case let .audioToTranscript(_, via)?:
                    let text = try await helper(via, .transcribe, item.media, request)
                    replacements[index] = [.text("[transcript of audio \(label)]\n\(text)")]
                    report.append("audio \(label)→transcript via \(via)")
                case let .imageToText(_, via)?:
                    let text = try await helper(via, .ocr, item.media, request)
                    replacements[index] = [.text("[text of image \(label)]\n\(text)")]
                    report.append("image \(label)→text via \(via)")
                case .fitImages?, .synthesizeAudio?, nil:
                    // Sent as it is: the plugin gets the sniffed type, never the client's claim.
                    let format = MediaSniffer.sniff(item.media.data)
                    if model.accepts(.audio), let speech = try await offload({ try self.speechAudio(item.media, for: model, label: label) }) {
                        replacements[index] = [.media(speech)]
                        report.append("audio \(label) \(format.rawValue)→16 kHz mono WAV")
                        return
                    }
                    guard format.kind == .image, model.accepts(.image) else {
                        replacements[index] = [.media(MediaInput(mimeType: format.mimeType, data: item.media.data, name: item.media.name))]
                        return
                    }
                    let fitted = try await offload { try self.fit(item.media, label: label, target: target) }
                    replacements[index] = [.media(MediaInput(mimeType: fitted.format.mimeType, data: fitted.data, name: item.media.name))]
                    let r = fitted.report
                    if r.scale < 1 || r.format != r.sniffedFormat {
                        fittedLines.append("image \(label) \(r.originalWidth)×\(r.originalHeight) \(r.sniffedFormat.rawValue)→\(r.width)×\(r.height) \(r.format.rawValue)")
                    }
                }
            }
        }
        report.insert(contentsOf: fittedLines, at: 0)
        if let voice = SpeechOutput.voice(of: candidate) {
            report.append("text→audio via \(voice)") // spoken by the Generator once the answer is complete
        }

        var adapted = request
        for (m, message) in request.messages.enumerated() {
            // The parts standing for the medium at (message m, part p, tool-result content i).
            func replaced(_ part: ContentPart, _ p: Int, _ i: Int?) -> [ContentPart] {
                guard let index = media.firstIndex(where: { $0.message == m && $0.part == p && $0.inner == i }),
                      let replacement = replacements[index] else { return [part] }
                return replacement
            }
            var parts: [ContentPart] = []
            for (p, part) in message.parts.enumerated() {
                if case let .toolResult(id, content, isError) = part {
                    let inner = content.enumerated().flatMap { replaced($0.element, p, $0.offset) }
                    parts.append(.toolResult(toolCallID: id, content: inner, isError: isError))
                } else {
                    parts += replaced(part, p, nil)
                }
            }
            adapted.messages[m].parts = parts
        }
        return (adapted, report)
    }

    /// The span name of a medium's step (`prism.adapt fit` for a medium sent as it is or fitted).
    private static func spanName(of step: AdaptationStep?) -> String {
        switch step {
        case .pdfToPages?: return "pdf_to_pages"
        case .pdfToText?: return "pdf_to_text"
        case .videoToFrames?: return "video_to_frames"
        case .audioToTranscript?: return "audio_to_transcript"
        case .imageToText?: return "image_to_text"
        case .fitImages?, .synthesizeAudio?, nil: return "fit"
        }
    }

    private func fit(_ media: MediaInput, label: String, target: ImageTarget) throws -> FittedImage {
        do {
            return try ImageFitter.fit(media.data, declaredMime: media.mimeType.isEmpty ? nil : media.mimeType, target: target, limits: mediaLimits)
        } catch let error as MediaError {
            throw Self.failure(error, "image \(label)")
        }
    }

    private func pdfPages(_ media: MediaInput, label: String, target: ImageTarget) throws -> ([ContentPart], Int, Int) {
        do {
            let pdf = try PDFDocument(media.data, limits: mediaLimits)
            let texts = try pdf.texts()
            var parts: [ContentPart] = [.text("[PDF \(label): \(pdf.pageCount) pages, each as an image followed by its text layer]")]
            var edge = 0
            for page in 0..<pdf.pageCount {
                let image = try pdf.render(page: page, target: target)
                edge = max(edge, image.width, image.height)
                parts.append(.media(MediaInput(mimeType: image.format.mimeType, data: image.data, name: "page-\(page + 1).\(image.format.fileExtension)")))
                let text = texts[page].trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { parts.append(.text("[page \(page + 1) text]\n\(text)")) }
            }
            return (parts, pdf.pageCount, edge)
        } catch let error as MediaError {
            throw Self.failure(error, "pdf \(label)")
        }
    }

    private func pdfText(_ media: MediaInput, label: String) throws -> (String, Int) {
        do {
            let pdf = try PDFDocument(media.data, limits: mediaLimits)
            let texts = try pdf.texts()
            let body = texts.enumerated().map { "[page \($0.offset + 1)]\n\($0.element.trimmingCharacters(in: .whitespacesAndNewlines))" }
            return ("[PDF \(label), text layer]\n" + body.joined(separator: "\n"), pdf.pageCount)
        } catch let error as MediaError {
            throw Self.failure(error, "pdf \(label)")
        }
    }

    private func videoFrames(_ media: MediaInput, count: Int, label: String, target: ImageTarget) throws -> [ContentPart] {
        do {
            let frames = try VideoSampler.sample(media.data, .uniform(count: count), target: target, limits: mediaLimits)
            return frames.enumerated().map { i, frame in
                .media(MediaInput(mimeType: frame.image.format.mimeType, data: frame.image.data,
                                  name: String(format: "frame-%d-%.1fs.%@", i + 1, frame.time, frame.image.format.fileExtension)))
            }
        } catch let error as MediaError {
            throw Self.failure(error, "video \(label)")
        }
    }

    /// Audio decoded to 16 kHz mono s16 WAV when `model` lists audio types and this one is not
    /// among them (speech engines such as local/pocketsphinx take only that); nil when it fits.
    private func speechAudio(_ media: MediaInput, for model: ModelCapability, label: String) throws -> MediaInput? {
        let format = MediaSniffer.sniff(media.data)
        let accepted = model.limits.audioMimeTypes
        guard format.kind == .audio || format.kind == .video, !accepted.isEmpty else { return nil }
        if format == .wav, accepted.contains("audio/wav"), Self.isSpeechWAV(media.data) { return nil }
        // A listed format other than WAV is sent as it is (an MP3 to openai's input_audio); a WAV
        // is made speech WAV, which speech engines such as local/pocketsphinx require.
        if format != .wav, accepted.contains(format.mimeType) { return nil }
        guard accepted.contains("audio/wav") else { return nil }
        do {
            let decoded = try AudioDecoder.decode(media.data, to: .speech, limits: mediaLimits)
            let wav = AudioEncoder.wavHeader(format: decoded.format, dataBytes: decoded.pcm.count) + decoded.pcm
            return MediaInput(mimeType: "audio/wav", data: wav, name: media.name)
        } catch let error as MediaError {
            throw Self.failure(error, "audio \(label)")
        }
    }

    /// Whether a WAV is already 16 kHz mono 16-bit PCM (its fmt chunk, read by hand).
    static func isSpeechWAV(_ data: Data) -> Bool {
        let b = [UInt8](data.prefix(64))
        guard b.count >= 36, b[0..<4] == [0x52, 0x49, 0x46, 0x46], b[12..<16] == [0x66, 0x6D, 0x74, 0x20] else { return false }
        let tag = Int(b[20]) | Int(b[21]) << 8, channels = Int(b[22]) | Int(b[23]) << 8
        let rate = Int(b[24]) | Int(b[25]) << 8 | Int(b[26]) << 16 | Int(b[27]) << 24, bits = Int(b[34]) | Int(b[35]) << 8
        return tag == 1 && channels == 1 && rate == 16_000 && bits == 16
    }

    /// Runs one medium through another provider (transcribe, ocr) and joins its text.
    private func helper(_ name: String, _ operation: Operation, _ media: MediaInput, _ original: GenerationRequest) async throws -> String {
        guard let model = host.capabilityMatrix().first(where: { $0.name == name }) else {
            throw ProviderFailure(.unavailable, "\(name), needed to \(operation) an input, is no longer loaded")
        }
        var media = media
        let format = MediaSniffer.sniff(media.data)
        if format != .unknown { media.mimeType = format.mimeType }
        let sniffed = media
        if operation == .transcribe, let speech = try await offload({ try self.speechAudio(sniffed, for: model, label: sniffed.name) }) {
            media = speech
        }
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.media(media)])])
        request.deadline = original.deadline
        request.requestID = original.requestID + "/\(operation)"
        let call = try host.startCall(model: model, operation: operation, request: request)
        var text = ""
        let end = await call.read { event in
            if case .text(let delta) = event { text += delta }
        }
        guard end.isOK else {
            throw ProviderFailure(end.retryable ? .unavailable : .internalError, "\(name) failed to \(operation) an input: \(end.message)")
        }
        return text
    }

    static func failure(_ error: MediaError, _ what: String) -> ProviderFailure { .media(error, what) }
}

extension ProviderFailure {
    /// A media refusal as the client should see it: limits are RESOURCE_EXHAUSTED, the rest the input's fault.
    public static func media(_ error: MediaError, _ what: String) -> ProviderFailure {
        switch error {
        case .limitExceeded, .invalidTarget: return ProviderFailure(.resourceExhausted, "\(what) cannot be fitted: \(error)")
        case .libraryFailure: return ProviderFailure(.internalError, "\(what): \(error)")
        default: return ProviderFailure(.invalidArgument, "\(what): \(error)")
        }
    }
}

extension ModelLimits {
    /// What an image is fitted to before it is sent to this model: the plugin's declared long
    /// edge, short edge, pixel count and bytes at once, and its formats (jpeg, png, webp if it
    /// lists none). The one place a vendor's image limits become a target: the gateway and
    /// `prism media fit --provider` both use it, so the CLI shows what the vendor is sent.
    public var imageTarget: ImageTarget {
        let formats = imageMimeTypes.compactMap { MediaFormat(mimeType: $0) }
        return ImageTarget(maxLongEdge: maxImageLongEdge, maxShortEdge: maxImageShortEdge, maxPixels: maxImagePixels, maxBytes: maxImageBytes,
                           acceptedFormats: formats.isEmpty ? [.jpeg, .png, .webp] : formats)
    }
}

/// Runs blocking media work off Swift's cooperative threads.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try work() })
        }
    }
}
