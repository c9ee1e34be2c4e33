// prism.v1.Prism/Synthesize: text to speech through a synthesize-capable provider (local/espeak
// by default), planned, retried and fallen back like Generate. The plugin streams raw PCM
// (audio/L16); `pcm` and `wav` at the engine's rate are streamed on as chunks arrive (the WAV
// header first, with the streaming "unknown length" sizes), while `flac`, `mp3`, `opus` and any
// other sample rate are encoded by the media core once the speech is complete.
import Foundation
import NIOCore
import PrismMedia
import PrismProto
import PrismProviders
import PrismRPC

enum SynthesizeService {
    /// The text one request may carry: 100,000 UTF-8 bytes (~2 hours of speech). Providers
    /// have their own, usually lower, limits (local/espeak: 20,000 characters).
    static let maxTextBytes = 100_000
    /// WAV size fields while the length is unknown (what FFmpeg writes to a pipe).
    static let unknownLength = 0xFFFF_FFFF

    static func handler(_ generator: Generator) -> RPCHandler {
        .serverStreaming { body, context, writer in
            let message = try decodeRequest(prism__v1__synthesize_request__init, body)
            let r = message.pointee
            let text = String(protoC: r.text)
            let formatName = String(protoC: r.format).lowercased()
            guard text.contains(where: { !$0.isWhitespace }) else { throw RPCError(.invalidArgument, "text: nothing to synthesize") }
            guard text.utf8.count <= maxTextBytes else {
                throw RPCError(.resourceExhausted, "text: \(text.utf8.count) bytes, over the limit of \(maxTextBytes)")
            }
            let container: AudioContainer
            switch formatName {
            case "", "wav": container = .wav
            case "pcm", "raw": container = .raw
            case "flac": container = .flac
            case "mp3": container = .mp3
            case "opus": container = .opus
            default: throw RPCError(.invalidArgument, "format: '\(formatName)' is not one of wav, pcm, flac, mp3, opus")
            }
            guard r.speed >= 0, r.speed <= 4 else { throw RPCError(.invalidArgument, "speed: \(r.speed) is outside 0 to 4") }
            let rate = Int(r.sample_rate)
            guard rate == 0 || (8_000...48_000).contains(rate) else { throw RPCError(.invalidArgument, "sample_rate: \(rate) is outside 8000 to 48000") }

            var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(text)])])
            request.operation = .synthesize
            request.outputs = [.audio]
            request.route = TranscribeService.route(r.route)
            let voice = String(protoC: r.voice)
            if !voice.isEmpty { request.labels["voice"] = voice }
            if r.speed > 0 { request.labels["speed"] = String(r.speed) }
            if let deadline = context.deadline {
                request.deadline = Date().addingTimeInterval(Double((deadline - NIODeadline.now()).nanoseconds) / 1e9)
            }

            // Chunks are passed on at once when no re-encoding is needed; else kept until the end.
            let state = LockedBox((pcm: Data(), engine: PCMFormat?.none, headerSent: false))
            do {
                try await generator.generate(request) { output in
                    switch output {
                    case .routed(let info):
                        state.withLockedValue { $0 = (Data(), nil, false) }
                        try await writer.write(encodeRouted(info))
                    case .event(.media(let mime, let data, _)):
                        guard let engine = pcmFormat(mime) else {
                            throw RPCError(.internal, "the speech provider sent '\(mime)', not audio/L16")
                        }
                        let streaming = (container == .raw || container == .wav) && (rate == 0 || rate == engine.sampleRate)
                        guard streaming else {
                            state.withLockedValue { $0.pcm.append(data); $0.engine = engine }
                            return
                        }
                        let header = state.withLockedValue { s -> Bool in
                            defer { s.headerSent = true; s.engine = engine }
                            return !s.headerSent && container == .wav
                        }
                        if header { try await writer.write(encodeAudio(streamingWAVHeader(engine), outputMime(container, engine.sampleRate), last: false)) }
                        if !data.isEmpty { try await writer.write(encodeAudio(data, outputMime(container, engine.sampleRate), last: false)) }
                    case .event:
                        break
                    }
                }
            } catch let failure as ProviderFailure {
                throw GenerateService.rpcError(failure, context)
            }
            let (pcm, engine, _) = state.withLockedValue { $0 }
            guard let engine else { throw RPCError(.internal, "the speech provider produced no audio") }
            if pcm.isEmpty {
                try await writer.write(encodeAudio(Data(), outputMime(container, engine.sampleRate), last: true))
                return
            }
            // Opus takes 8, 12, 16, 24 or 48 kHz only.
            let target = PCMFormat(sampleRate: rate != 0 ? rate : container == .opus ? 24_000 : engine.sampleRate, channels: 1)
            let encoded: Data
            do {
                encoded = try await offload { try AudioConverter.convert(pcm, raw: engine, to: target, as: container).data }
            } catch let error as MediaError {
                throw RPCError(.invalidArgument, "format: cannot encode \(container.rawValue) at \(target.sampleRate) Hz: \(error)")
            }
            try await writer.write(encodeAudio(encoded, outputMime(container, target.sampleRate), last: true))
        }
    }

    /// `audio/L16;rate=R;channels=C` → its PCM format.
    static func pcmFormat(_ mime: String) -> PCMFormat? {
        (try? TranscribeService.rawFormat(mime)) ?? nil
    }

    static func streamingWAVHeader(_ format: PCMFormat) -> Data {
        var header = AudioEncoder.wavHeader(format: format, dataBytes: 0)
        header.replaceSubrange(4..<8, with: [0xFF, 0xFF, 0xFF, 0xFF])
        header.replaceSubrange(40..<44, with: [0xFF, 0xFF, 0xFF, 0xFF])
        return header
    }

    private static func encodeRouted(_ info: RouteInfo) -> ByteBuffer {
        let b = ProtoBuilder()
        let r = b.routeInfo(info)
        let e = b.message(prism__v1__synthesize_event__init)
        e.pointee.event_case = PRISM__V1__SYNTHESIZE_EVENT__EVENT_ROUTED
        e.pointee.routed = r
        return encodeResponse(b, e)
    }

    private static func outputMime(_ container: AudioContainer, _ rate: Int) -> String {
        container == .raw ? "audio/L16;rate=\(rate);channels=1" : container.mimeType
    }

    private static func encodeAudio(_ data: Data, _ mime: String, last: Bool) -> ByteBuffer {
        let b = ProtoBuilder()
        let m = b.message(prism__v1__media_chunk__init)
        m.pointee.mime_type = b.string(mime)
        m.pointee.data = data.withUnsafeBytes { b.bytes($0) }
        m.pointee.last = last ? 1 : 0
        let e = b.message(prism__v1__synthesize_event__init)
        e.pointee.event_case = PRISM__V1__SYNTHESIZE_EVENT__EVENT_AUDIO
        e.pointee.audio = m
        return encodeResponse(b, e)
    }
}
