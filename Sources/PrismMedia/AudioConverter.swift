// One call from "any audio" to "what this engine takes": decode, resample/downmix, encode, and a
// report of what the input was and what came out (for the planner, the CLI and the client).
import Foundation

/// The result of ``AudioConverter/convert(_:raw:to:as:limits:)``.
public struct ConvertedAudio: Sendable {
    public var data: Data
    public var report: AudioReport
}

/// What an audio conversion found and produced.
public struct AudioReport: Sendable, Equatable, Codable {
    /// The input, from its container.
    public var source: AudioInfo
    /// PCM format the audio was converted to, and the container it was written in.
    public var output: PCMFormat
    public var container: AudioContainer
    /// Seconds decoded (the truth, whatever the container claimed).
    public var duration: Double
    public var bytes: Int
    public var resampledWithSoxr: Bool
    public var milliseconds: Double
}

/// Decode + convert + encode in one step.
public enum AudioConverter {
    /// Converts `bytes` to `format` in `container` (e.g. 16 kHz mono WAV for a speech engine).
    public static func convert(_ bytes: Data, raw: PCMFormat? = nil, to format: PCMFormat = .speech,
                               as container: AudioContainer = .wav, limits: MediaLimits = .standard) throws -> ConvertedAudio {
        let start = DispatchTime.now().uptimeNanoseconds
        let decoded = try AudioDecoder.decode(bytes, to: format, raw: raw, limits: limits)
        let data = try AudioEncoder.encode(decoded.pcm, format: format, as: container)
        let report = AudioReport(source: decoded.source, output: format, container: container, duration: decoded.duration,
                                 bytes: data.count, resampledWithSoxr: decoded.resampledWithSoxr,
                                 milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        return ConvertedAudio(data: data, report: report)
    }
}
