// The `transcribe` operation: POST {base}/audio/transcriptions as multipart/form-data with
// response_format=verbose_json, and its segments (and words, when asked) turned into the segment
// MediaChunks and text deltas of plugins/README.md, then the audio seconds as usage.
import Foundation
import PrismPluginKit

enum Transcription {
    /// The segment detail type the host's Transcribe service reads (TranscribeService.segmentMimeType).
    static let segmentMimeType = "application/vnd.prism.segment+json"
    /// A verbose_json answer holds the text several times over (segments, words); 16 MB is hours.
    static let maxAnswerBytes = 16 * 1024 * 1024

    /// Transcribes the request's one audio medium and emits the answer.
    static func serve(_ request: ProviderRequest, settings: OpenAISettings, client: BlockingHTTP, call: ProviderCall) throws {
        let form = try form(for: request).encoded()
        let http = OpenAIHTTP.request(settings, "/audio/transcriptions", contentType: form.contentType, body: form.body, deadline: request.deadline)
        let answer = try OpenAIHTTP.json(client, http, call: call, maxBytes: maxAnswerBytes, what: "transcription")
        try emit(answer, call: call, words: request.options["word_timestamps"] == "true")
    }

    /// The multipart form for the request's one audio medium.
    static func form(for request: ProviderRequest) throws -> MultipartForm {
        let audio = request.messages.flatMap(\.parts).compactMap { part -> (String, Data, String)? in
            if case let .media(mime, data, name) = part, mime.hasPrefix("audio/") || mime.hasPrefix("video/") { return (mime, data, name) }
            return nil
        }
        guard let (mime, data, name) = audio.first else {
            throw CallFailure(.invalidArgument, "openai transcription needs one audio medium; the request has none")
        }
        guard audio.count == 1 else {
            throw CallFailure(.invalidArgument, "openai transcription takes one audio medium; the request has \(audio.count)")
        }
        var form = MultipartForm()
        form.addFile("file", filename: try filename(name, mime: mime), contentType: mime, data: data)
        form.add("model", request.model)
        form.add("response_format", "verbose_json")
        form.add("timestamp_granularities[]", "segment")
        if request.options["word_timestamps"] == "true" { form.add("timestamp_granularities[]", "word") }
        if let language = try language(request.options["language"]) { form.add("language", language) }
        return form
    }

    /// A file name whose extension says the format, as the vendor requires (flac, mp3, mp4, mpeg,
    /// mpga, m4a, ogg, wav, webm): the medium's name (or "audio") with the extension of its type.
    static func filename(_ name: String, mime: String) throws -> String {
        let base = mime.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let extensions = ["audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3",
                          "audio/flac": "flac", "audio/ogg": "ogg", "audio/mp4": "m4a", "audio/m4a": "m4a",
                          "video/mp4": "mp4", "audio/webm": "webm", "video/webm": "webm"]
        guard let ext = extensions[base] else {
            throw CallFailure(.invalidArgument, "openai cannot transcribe \(mime) audio (it takes flac, mp3, mp4, m4a, ogg, wav, webm)")
        }
        let stem = name.isEmpty ? "audio" : (name as NSString).deletingPathExtension
        return "\(stem.isEmpty ? "audio" : stem).\(ext)"
    }

    /// The ISO-639-1 code of a language option ("en", "en-US" → "en"); nil when none was given.
    static func language(_ option: String?) throws -> String? {
        guard let option, !option.isEmpty else { return nil }
        let code = option.split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map { $0.lowercased() } ?? ""
        guard code.count == 2, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw CallFailure(.invalidArgument, "language '\(option)' is not an ISO-639-1 code (such as 'en' or 'en-US'), which openai needs")
        }
        return code
    }

    /// Emits a verbose_json answer: per segment its detail then its text, then the usage.
    static func emit(_ answer: [String: Any], call: ProviderCall, words wanted: Bool) throws {
        let segments = answer["segments"] as? [[String: Any]] ?? []
        // avg_logprob is the mean log-probability of a segment's tokens: its exp is a 0…1 confidence.
        let confidences = segments.map { s in s["avg_logprob"].map { min(1, max(0, exp(double($0)))) } ?? 0 }
        // Words come for the whole file: each goes to the first segment that ends after its middle.
        var words = Array(repeating: [[String: Any]](), count: segments.count)
        for w in wanted ? (answer["words"] as? [[String: Any]] ?? []) : [] where !segments.isEmpty {
            let start = double(w["start"]), end = double(w["end"])
            let i = segments.firstIndex { double($0["end"]) > (start + end) / 2 } ?? segments.count - 1
            words[i].append(["word": (w["word"] as? String ?? "").trimmingCharacters(in: .whitespaces),
                             "start": start, "end": end, "confidence": confidences[i]])
        }
        var spoken = false
        for (i, segment) in segments.enumerated() {
            let text = (segment["text"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            var detail: [String: Any] = ["start": double(segment["start"]), "end": double(segment["end"]),
                                         "confidence": confidences[i], "text": text]
            if wanted { detail["words"] = words[i] }
            let json = try JSONSerialization.data(withJSONObject: detail, options: [.sortedKeys])
            guard call.media(mimeType: segmentMimeType, data: [UInt8](json), last: true) else { throw CallFailure(.cancelled, "cancelled") }
            guard !text.isEmpty else { continue }
            guard call.text((spoken ? " " : "") + text) else { throw CallFailure(.cancelled, "cancelled") }
            spoken = true
        }
        // An answer without segments still has its text.
        if !spoken, let text = (answer["text"] as? String)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            guard call.text(text) else { throw CallFailure(.cancelled, "cancelled") }
        }
        let usage = answer["usage"] as? [String: Any]
        let seconds = usage?["type"] as? String == "duration" ? double(usage?["seconds"]) : double(answer["duration"])
        call.usage(input: 0, output: 0, audioSeconds: seconds)
        call.finished(.endTurn)
        call.finishOK()
    }

    private static func double(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? 0 }
}
