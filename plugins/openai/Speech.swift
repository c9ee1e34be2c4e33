// The `synthesize` operation: POST {base}/audio/speech with response_format "pcm", whose chunked
// raw body (headerless 24 kHz s16le) is passed on piece by piece as audio/L16 MediaChunks while
// it streams, the last one empty with `last` set, as plugins/README.md describes.
import Foundation
import PrismPluginKit

enum Speech {
    /// What `pcm` is, per the vendor: 24 kHz, 16-bit signed little-endian, mono.
    static let sampleRate = 24_000
    static let mimeType = "audio/L16;rate=24000;channels=1"
    /// The vendor's limit on `input`, in characters.
    static let maxInputCharacters = 4096
    /// The vendor's range of `speed`.
    static let speeds = 0.25...4.0
    static let defaultVoice = "alloy"
    static let voices: Set<String> = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                                      "shimmer", "verse", "marin", "cedar"]

    /// The JSON body, from the request's text and its `voice` and `speed` options, and the
    /// number of characters spoken (reported as input, as local/espeak does).
    static func body(for request: ProviderRequest, call: ProviderCall) throws -> (Data, characters: Int) {
        let text = request.messages.flatMap(\.parts).compactMap { part -> String? in
            if case .text(let t) = part { return t }
            return nil
        }.joined(separator: "\n")
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw CallFailure(.invalidArgument, "openai speech needs text; the request has none")
        }
        guard text.count <= maxInputCharacters else {
            throw CallFailure(.resourceExhausted, "openai speech input is limited to \(maxInputCharacters) characters; this text has \(text.count)")
        }
        var speed = 1.0
        if let option = request.options["speed"], !option.isEmpty {
            guard let value = Double(option), value == 0 || speeds.contains(value) else {
                throw CallFailure(.invalidArgument, "speed \(option) is outside openai's range of 0.25 to 4")
            }
            speed = value == 0 ? 1 : value
        }
        let body: [String: Any] = ["model": request.model, "input": text, "voice": voice(request.options["voice"], call: call),
                                   "response_format": "pcm", "speed": speed]
        return (try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]), text.count)
    }

    /// An OpenAI voice name; anything else (empty, or an espeak-style "en-us") is the default voice.
    static func voice(_ option: String?, call: ProviderCall) -> String {
        let name = (option ?? "").lowercased()
        if voices.contains(name) { return name }
        if !name.isEmpty { call.log(.info, "voice '\(name)' is not an openai voice; using \(defaultVoice)") }
        return defaultVoice
    }

    /// Streams the speech of `request` to the call.
    static func serve(_ request: ProviderRequest, settings: OpenAISettings, client: BlockingHTTP, call: ProviderCall) throws {
        let (json, characters) = try body(for: request, call: call)
        var http = OpenAIHTTP.request(settings, "/audio/speech", contentType: "application/json", body: json, deadline: request.deadline)
        http.headers.append(("Accept", "application/octet-stream"))
        var status = 0, errorBody = Data(), pending = Data(), sent = 0
        let head: HTTPResponseHead
        do {
            head = try client.perform(http) { head, chunk in
                status = head.status
                guard head.status == 200 else {
                    errorBody += chunk.prefix(max(0, HTTPLimits.maxErrorBodyBytes - errorBody.count))
                    return true
                }
                // Whole samples only: a piece may end inside one, whose other byte comes next.
                pending += chunk
                let whole = pending.count & ~1
                guard whole > 0 else { return true }
                sent += whole
                defer { pending.removeFirst(whole) }
                return call.media(mimeType: mimeType, data: [UInt8](pending.prefix(whole)), last: false)
            }
        } catch let error as HTTPTransferError {
            throw VendorFailures.failure(for: error, vendor: "openai", status: status)
        }
        guard head.status == 200 else { throw OpenAIErrors.failure(status: head.status, headers: head.headers, body: errorBody) }
        if !pending.isEmpty { call.log(.warning, "openai sent an odd number of PCM bytes; the last one was dropped") }
        guard call.media(mimeType: mimeType, data: [], last: true) else { throw CallFailure(.cancelled, "cancelled") }
        call.usage(input: UInt64(characters), output: 0, audioSeconds: Double(sent / 2) / Double(sampleRate))
        call.finished(.endTurn)
        call.finishOK()
    }
}
