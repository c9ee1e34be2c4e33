// Vocabulary of the audio side: the PCM layout wanted out of a decoder, raw PCM described by the
// caller, what probing a file tells, and the containers PrismMedia can write.
import CFFmpeg
import Foundation

/// Interleaved PCM: sample rate, channel count and sample type.
public struct PCMFormat: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Sample: String, Sendable, Codable {
        /// Signed 16-bit little-endian: what speech engines and WAV files take.
        case s16
        /// 32-bit float little-endian.
        case f32

        var bytes: Int { self == .s16 ? 2 : 4 }
        var av: AVSampleFormat { self == .s16 ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLT }
        var rawDemuxer: String { self == .s16 ? "s16le" : "f32le" }
    }

    public var sampleRate: Int
    public var channels: Int
    public var sample: Sample

    public init(sampleRate: Int, channels: Int, sample: Sample = .s16) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.sample = sample
    }

    /// 16 kHz mono s16: what pocketsphinx, Whisper and most speech APIs want.
    public static let speech = PCMFormat(sampleRate: 16_000, channels: 1)

    public var bytesPerFrame: Int { channels * sample.bytes }
    public var bytesPerSecond: Int { sampleRate * bytesPerFrame }
    public var description: String { "\(sampleRate) Hz, \(channels) ch, \(sample.rawValue)" }

    func validate() throws {
        guard (1_000 ... 384_000).contains(sampleRate), (1 ... 8).contains(channels) else {
            throw MediaError.invalidTarget("PCM format \(self) is out of range (1–384 kHz, 1–8 channels)")
        }
    }
}

/// Containers and codecs PrismMedia writes audio in.
public enum AudioContainer: String, Sendable, CaseIterable, Codable {
    /// RIFF WAVE, PCM as given.
    case wav
    /// Lossless FLAC (s16).
    case flac
    /// MP3 through libmp3lame.
    case mp3
    /// Opus in Ogg through libopus (sample rate must be 8, 12, 16, 24 or 48 kHz).
    case opus
    /// Headerless PCM, as described by the PCMFormat.
    case raw

    public var fileExtension: String { rawValue == "raw" ? "pcm" : rawValue }
    public var mimeType: String {
        switch self {
        case .wav: return "audio/wav"
        case .flac: return "audio/flac"
        case .mp3: return "audio/mpeg"
        case .opus: return "audio/ogg; codecs=opus"
        case .raw: return "audio/L16"
        }
    }
}

/// What a container says about its audio, learned without decoding it.
public struct AudioInfo: Sendable, Equatable, Codable {
    /// Sniffed container format.
    public var format: MediaFormat
    /// FFmpeg's demuxer and codec names ("mp3", "flac", "opus", "aac", "pcm_s16le").
    public var container: String
    public var codec: String
    public var sampleRate: Int
    public var channels: Int
    /// Seconds, from the container (nil when it does not say).
    public var duration: Double?
    /// True when the container gives no duration and FFmpeg estimated it from the bit rate.
    public var durationEstimated: Bool
    /// Bits per second, when known.
    public var bitRate: Int?
}

/// Decoded audio: interleaved PCM in a known format.
public struct DecodedAudio: Sendable {
    public var pcm: Data
    public var format: PCMFormat
    /// What the input was, from the container.
    public var source: AudioInfo
    /// Whether libsoxr did the resampling (else swresample's own engine).
    public var resampledWithSoxr: Bool

    public var frameCount: Int { pcm.count / format.bytesPerFrame }
    /// Seconds actually decoded (a lying header does not change this).
    public var duration: Double { Double(frameCount) / Double(format.sampleRate) }
}
