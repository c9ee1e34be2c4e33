// Speech from a Gemini TTS model: generateContent with responseModalities ["AUDIO"] and the
// prebuilt voice from the request's "voice" option (default Kore). The answer's inlineData is raw
// 16-bit 24 kHz mono PCM, passed on as audio/L16 chunks (SynthesizeService makes the client's
// format). generateContent, not the streamed method: it is the one Google documents for TTS.
// Gemini has no speaking rate, so the "speed" option is not sent.
import Foundation
import PrismPluginKit

struct GeminiSpeech {
    let settings: GeminiSettings
    let apiKey: String
    let http: BlockingHTTP

    /// The answer holds the whole speech as base64: ~4 MB a minute. 256 MB is an hour, beyond
    /// what a TTS model returns for one request.
    static let maxAnswerBytes = 256 * 1024 * 1024

    func synthesize(_ request: ProviderRequest, call: ProviderCall) throws {
        let text = request.messages.flatMap(\.parts).compactMap { part -> String? in
            if case .text(let t) = part { return t } else { return nil }
        }.joined(separator: "\n")
        guard text.contains(where: { !$0.isWhitespace }) else { throw CallFailure(.invalidArgument, "text: nothing to synthesize") }
        let voice = request.options["voice"].flatMap { $0.isEmpty ? nil : $0 } ?? GeminiDefaults.voice
        let body: [String: Any] = [
            "contents": [["role": "user", "parts": [["text": text]]]],
            "generationConfig": [
                "responseModalities": ["AUDIO"],
                "speechConfig": ["voiceConfig": ["prebuiltVoiceConfig": ["voiceName": voice]]],
            ],
        ]
        var http = HTTPRequest(url: settings.baseURL + GeminiSettings.modelPath(request.model, "generateContent"))
        http.headers = [("content-type", "application/json"), ("x-goog-api-key", apiKey)]
        http.body = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        http.deadline = request.deadline
        var answer = GeminiStream(call: call)
        do {
            let (head, data) = try self.http.fetch(http, maxBodyBytes: Self.maxAnswerBytes)
            try answer.answer(head, data)
        } catch let error as HTTPTransferError {
            throw answer.failure(for: error)
        }
    }
}
