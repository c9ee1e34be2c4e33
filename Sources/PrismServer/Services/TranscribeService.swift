// prism.v1.Prism/Transcribe: a config message, then audio in chunks of any size. As soon as the
// config arrives the Generator plans a transcribe-capable provider (local/pocketsphinx by default)
// and starts it, while the audio is decoded to 16 kHz mono PCM as it arrives (the media core's
// streaming decoder) and handed to the engine through StreamedAudio: segments stream back as the
// engine finds utterance ends, before the upload is over, followed by the final transcript.
import Foundation
import NIOCore
import PrismMedia
import PrismProto
import PrismProviders
import PrismRPC

enum TranscribeService {
    /// 2 hours of audio per stream: longer recordings should be split by the client. At
    /// 16 kHz mono s16 that is 230 MB of PCM held while the stream lasts (kept so that a retry,
    /// or a model that takes its input whole, gets all of it).
    static let maxAudioSeconds: Double = 7200
    /// The MediaChunk type a speech plugin uses for one segment's detail (JSON); see plugins/README.md.
    static let segmentMimeType = "application/vnd.prism.segment+json"

    typealias Config = (mime: String, language: String, words: Bool, route: RouteRequest)

    /// The handler; `maxSeconds` is a parameter so tests can reach the limit without 2 hours of audio.
    static func handler(_ generator: Generator, maxSeconds: Double = maxAudioSeconds) -> RPCHandler {
        .bidirectional { requests, writer, context in
            var incoming = requests.makeAsyncIterator()
            guard let body = try await incoming.next() else { throw RPCError(.invalidArgument, "config: the stream ended without a config") }
            let message = try decodeRequest(prism__v1__transcribe_request__init, body)
            guard message.pointee.payload_case == PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_CONFIG, let c = message.pointee.config?.pointee else {
                throw RPCError(.invalidArgument, "config: the first TranscribeRequest must be the config, not audio")
            }
            let config: Config = (String(protoC: c.mime_type), String(protoC: c.language), c.word_timestamps != 0, route(c.route))
            let raw = try rawFormat(config.mime)

            // The rest of the stream is read by its own task, so that the engine runs meanwhile.
            // A failure there (bad audio, over the limit) is kept and cancels the audio, which
            // stops the engine; the handler then reports that failure rather than the engine's.
            let audio = StreamedAudio()
            let inputFailure = LockedBox<Error?>(nil)
            let input = Task {
                do {
                    try await receive(requests, into: audio, raw: raw, maxSeconds: maxSeconds)
                } catch {
                    inputFailure.withLockedValue { $0 = error }
                    audio.cancel()
                    throw error
                }
            }
            defer {
                input.cancel()
                audio.cancel()
            }

            var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [])])
            request.streamedAudio = audio
            request.operation = .transcribe
            request.route = config.route
            if config.words { request.labels["word_timestamps"] = "true" }
            if !config.language.isEmpty { request.labels["language"] = config.language }
            if let deadline = context.deadline {
                request.deadline = Date().addingTimeInterval(Double((deadline - NIODeadline.now()).nanoseconds) / 1e9)
            }
            let transcript = LockedBox("")
            do {
                try await generator.generate(request) { output in
                    switch output {
                    case .routed(let info):
                        transcript.withLockedValue { $0 = "" } // a retry starts over
                        try await writer.write(encodeRouted(info))
                    case .event(.media(let mime, let data, _)) where mime == segmentMimeType:
                        try await writer.write(encodeSegment(data))
                    case .event(.text(let text)):
                        transcript.withLockedValue { $0 += text }
                    case .event:
                        break
                    }
                }
            } catch {
                if let cause = inputFailure.withLockedValue({ $0 }) { throw cause }
                if let failure = error as? ProviderFailure { throw GenerateService.rpcError(failure, context) }
                throw error
            }
            // The engine may finish before the client does (e.g. on a model that stops early):
            // the input's own checks still decide the outcome.
            try await input.value
            let duration = Double(audio.count) / Double(PCMFormat.speech.bytesPerSecond)
            let b = ProtoBuilder()
            let t = b.message(prism__v1__transcript__init)
            t.pointee.text = b.string(transcript.withLockedValue { $0 }.trimmingCharacters(in: .whitespacesAndNewlines))
            t.pointee.language = b.string(config.language.isEmpty ? "en-US" : config.language)
            t.pointee.duration_seconds = duration
            let e = b.message(prism__v1__transcribe_event__init)
            e.pointee.event_case = PRISM__V1__TRANSCRIBE_EVENT__EVENT_FINAL
            e.pointee.final = t
            try await writer.write(encodeResponse(b, e))
        }
    }

    /// Reads the audio messages after the config, decodes them as they come and appends the PCM
    /// to `audio` (blocking the decoder's thread while the engine is behind; this task then waits
    /// for room in the decoder's hand-off, which stops reading the client); finishes `audio`
    /// when the client half-closes. Throws the RPC error for audio that cannot be decoded, a
    /// second config, no samples at all, or over `maxSeconds`.
    private static func receive(_ requests: RequestStream, into audio: StreamedAudio, raw: PCMFormat?, maxSeconds: Double) async throws {
        let tooLong = LockedBox(false)
        let maxBytes = Int(maxSeconds * Double(PCMFormat.speech.bytesPerSecond))
        let decoder = StreamingAudioDecoder(output: .speech, raw: raw) { data in
            // Runs on the decoder's thread, in order. Over the limit, the rest is dropped and
            // the reading loop fails the call.
            if tooLong.withLockedValue({ $0 }) || audio.count + data.count > maxBytes {
                tooLong.withLockedValue { $0 = true }
            } else {
                audio.append(data)
            }
        }
        defer { decoder.cancel() }
        for try await body in requests {
            let message = try decodeRequest(prism__v1__transcribe_request__init, body)
            let m = message.pointee
            switch m.payload_case {
            case PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_CONFIG:
                throw RPCError(.invalidArgument, "config: sent twice; send it once, as the first message")
            case PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_AUDIO:
                let chunk = Data([UInt8](protoC: m.audio))
                do {
                    try await decoder.feed(chunk)
                } catch let error as MediaError {
                    if tooLong.withLockedValue({ $0 }) { throw overLimit(maxSeconds) }
                    throw mediaError(error)
                }
                if tooLong.withLockedValue({ $0 }) { throw overLimit(maxSeconds) }
            default:
                throw RPCError(.invalidArgument, "payload: a TranscribeRequest with neither config nor audio")
            }
        }
        do {
            _ = try await decoder.finish()
        } catch let error as MediaError {
            if tooLong.withLockedValue({ $0 }) { throw overLimit(maxSeconds) }
            throw mediaError(error)
        }
        if tooLong.withLockedValue({ $0 }) { throw overLimit(maxSeconds) }
        guard audio.count > 0 else { throw RPCError(.invalidArgument, "audio: the stream held no audio samples") }
        audio.finish()
    }

    /// `audio/L16;rate=R[;channels=C]` describes raw PCM; anything else is sniffed.
    static func rawFormat(_ mime: String) throws -> PCMFormat? {
        let fields = mime.lowercased().split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let type = fields.first, type == "audio/l16" else { return nil }
        var rate = 16_000, channels = 1
        for field in fields.dropFirst() {
            let kv = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let value = Int(kv[1]) else { continue }
            if kv[0] == "rate" { rate = value } else if kv[0] == "channels" { channels = value }
        }
        guard (8_000...192_000).contains(rate), (1...8).contains(channels) else {
            throw RPCError(.invalidArgument, "config.mime_type: '\(mime)' has a rate or channel count out of range")
        }
        return PCMFormat(sampleRate: rate, channels: channels)
    }

    static func route(_ r: UnsafeMutablePointer<Prism__V1__Route>?) -> RouteRequest {
        guard let route = r?.pointee else { return RouteRequest() }
        return RouteRequest(provider: String(protoC: route.provider), model: String(protoC: route.model),
                            fallbacks: UnsafeBufferPointer(start: route.fallbacks, count: route.fallbacks == nil ? 0 : route.n_fallbacks).map { String(protoC: $0) },
                            nativeOnly: route.adaptation == PRISM__V1__ADAPTATION__ADAPTATION_NATIVE_ONLY)
    }

    private static func overLimit(_ seconds: Double) -> RPCError {
        RPCError(.resourceExhausted, "audio: the stream is longer than the limit of \(Int(seconds)) seconds")
    }

    static func mediaError(_ error: MediaError) -> RPCError {
        switch error {
        case .limitExceeded: return RPCError(.resourceExhausted, "audio: \(error)")
        case .libraryFailure: return RPCError(.internal, "audio: \(error)")
        default: return RPCError(.invalidArgument, "audio: not audio that can be decoded: \(error)")
        }
    }

    // MARK: - Events

    static func encodeRouted(_ info: RouteInfo) -> ByteBuffer {
        let b = ProtoBuilder()
        let r = b.routeInfo(info)
        let e = b.message(prism__v1__transcribe_event__init)
        e.pointee.event_case = PRISM__V1__TRANSCRIBE_EVENT__EVENT_ROUTED
        e.pointee.routed = r
        return encodeResponse(b, e)
    }

    /// The plugin's segment JSON as a Segment event.
    private struct SegmentJSON: Decodable {
        struct Word: Decodable { var word: String; var start: Double; var end: Double; var confidence: Double }
        var start: Double
        var end: Double
        var confidence: Double
        var text: String
        var words: [Word]?
    }

    static func encodeSegment(_ json: Data) throws -> ByteBuffer {
        guard let s = try? JSONDecoder().decode(SegmentJSON.self, from: json) else {
            throw RPCError(.internal, "the speech plugin sent a segment that is not valid JSON")
        }
        let b = ProtoBuilder()
        let segment = b.message(prism__v1__segment__init)
        segment.pointee.start_seconds = s.start
        segment.pointee.end_seconds = s.end
        segment.pointee.text = b.string(s.text)
        segment.pointee.confidence = Float(s.confidence)
        let words = (s.words ?? []).map { w -> UnsafeMutablePointer<Prism__V1__Word> in
            let word = b.message(prism__v1__word__init)
            word.pointee.text = b.string(w.word)
            word.pointee.start_seconds = w.start
            word.pointee.end_seconds = w.end
            word.pointee.confidence = Float(w.confidence)
            return word
        }
        segment.pointee.n_words = words.count
        segment.pointee.words = b.array(words)
        let e = b.message(prism__v1__transcribe_event__init)
        e.pointee.event_case = PRISM__V1__TRANSCRIBE_EVENT__EVENT_SEGMENT
        e.pointee.segment = segment
        return encodeResponse(b, e)
    }
}

/// A value shared between a handler and callbacks on other threads (the decoder's, the generator's).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLockedValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Runs blocking work (decoding, encoding) off Swift's cooperative threads.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async { continuation.resume(with: Result { try work() }) }
    }
}
