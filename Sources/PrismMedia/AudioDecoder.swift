// Decodes any audio FFmpeg reads (or raw PCM the caller describes) to interleaved PCM of one
// format, bounded in seconds and time; also probes duration from the container without decoding.
import CFFmpeg
import CPrismMedia
import Foundation

/// Audio in, PCM out. Stateless; safe from any thread.
public enum AudioDecoder {
    /// What the container says: codec, rate, channels and duration, without decoding the audio
    /// (FFmpeg reads headers and, for MP3 without a Xing header, estimates from the bit rate).
    public static func probe(_ bytes: Data, raw: PCMFormat? = nil, limits: MediaLimits = .standard) throws -> AudioInfo {
        let (input, format) = try open(bytes, raw: raw, limits: limits)
        try input.findStreamInfo(kind: format)
        guard let index = input.bestStream(AVMEDIA_TYPE_AUDIO) else { throw MediaError.corrupt(format, detail: "no audio stream") }
        return info(input, index, format)
    }

    /// Decodes all of `bytes` to `output`.
    /// - Parameter raw: set for headerless PCM (the bytes cannot say what they are).
    /// - Throws: `.limitExceeded(.audioInputBytes / .audioSeconds / .audioTime)`, `.corrupt`, `.unrecognizedFormat`.
    public static func decode(_ bytes: Data, to output: PCMFormat = .speech, raw: PCMFormat? = nil,
                              limits: MediaLimits = .standard) throws -> DecodedAudio {
        try output.validate()
        let (input, format) = try open(bytes, raw: raw, limits: limits)
        var pcm = Data()
        let (info, soxr) = try run(input, format: format, output: output, limits: limits) { pcm.append(contentsOf: $0) }
        return DecodedAudio(pcm: pcm, format: output, source: info, resampledWithSoxr: soxr)
    }

    static func open(_ bytes: Data, raw: PCMFormat?, limits: MediaLimits) throws -> (AVInput, MediaFormat) {
        guard bytes.count <= limits.maxAudioInputBytes else {
            throw MediaError.limitExceeded(.audioInputBytes, actual: Int64(bytes.count), allowed: Int64(limits.maxAudioInputBytes))
        }
        if let raw {
            try raw.validate()
            return (try AVInput(bytes: bytes, probeBytes: limits.probeBytes, formatName: raw.sample.rawDemuxer,
                                options: "sample_rate=\(raw.sampleRate):channels=\(raw.channels)", kind: .wav), .wav)
        }
        let format = MediaSniffer.sniff(bytes)
        switch format.kind {
        case .audio, .video: break
        case .unknown: throw MediaError.unrecognizedFormat
        default: throw MediaError.wrongKind(format, expected: .audio)
        }
        return (try AVInput(bytes: bytes, probeBytes: limits.probeBytes, kind: format), format)
    }

    static func info(_ input: AVInput, _ index: Int32, _ format: MediaFormat) -> AudioInfo {
        let parameters = input.stream(index).pointee.codecpar.pointee
        let duration = input.containerDuration
        return AudioInfo(format: format, container: input.formatName, codec: String(cString: avcodec_get_name(parameters.codec_id)),
                         sampleRate: Int(parameters.sample_rate), channels: Int(parameters.ch_layout.nb_channels),
                         duration: duration?.seconds, durationEstimated: duration?.estimated ?? false,
                         bitRate: parameters.bit_rate > 0 ? Int(parameters.bit_rate) : (input.context.pointee.bit_rate > 0 ? Int(input.context.pointee.bit_rate) : nil))
    }

    /// The decode loop shared by whole-file and streaming decoding: best audio stream → decoder →
    /// resampler → `sink`, counting seconds against the limit as it goes.
    /// `seekable` says whether FFmpeg could measure the input: only then is a container's duration
    /// checked before decoding (streamed WAVs carry placeholder sizes; counting catches those).
    static func run(_ input: AVInput, format: MediaFormat, output: PCMFormat, limits: MediaLimits, seekable: Bool = true,
                    sink: (UnsafeRawBufferPointer) throws -> Void) throws -> (AudioInfo, Bool) {
        let budget = TimeBudget(limit: .audioTime, seconds: limits.audioTimeBudget)
        try input.findStreamInfo(kind: format)
        guard let index = input.bestStream(AVMEDIA_TYPE_AUDIO) else { throw MediaError.corrupt(format, detail: "no audio stream") }
        let info = info(input, index, format)
        // A container that admits to being too long is refused up front; one that lies is caught below.
        if seekable, let claimed = info.duration, !info.durationEstimated, claimed > limits.maxAudioSeconds {
            throw MediaError.limitExceeded(.audioSeconds, actual: Int64(claimed), allowed: Int64(limits.maxAudioSeconds))
        }
        let decoder = try AVStreamDecoder(input: input, streamIndex: index, kind: format)
        let resampler = Resampler(output: output)
        let maxBytes = Int64(limits.maxAudioSeconds * Double(output.bytesPerSecond))
        var produced: Int64 = 0
        var frames = 0
        func counted(_ bytes: UnsafeRawBufferPointer) throws {
            produced += Int64(bytes.count)
            guard produced <= maxBytes else {
                throw MediaError.limitExceeded(.audioSeconds, actual: produced / Int64(output.bytesPerSecond), allowed: Int64(limits.maxAudioSeconds))
            }
            try sink(bytes)
        }
        try decoder.decodeAll(input: input, kind: format) { frame in
            frames += 1
            if frames % 64 == 0 { try budget.check() }
            try resampler.convert(frame, counted)
            return true
        }
        try resampler.flush(counted)
        guard produced > 0 else { throw MediaError.corrupt(format, detail: "no audio could be decoded") }
        return (info, resampler.usedSoxr)
    }
}
