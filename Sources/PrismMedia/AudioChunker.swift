// Splits long audio into pieces under a duration or byte cap (OpenAI transcription takes 25 MiB a
// file), cutting at the quietest moment near each cap so words are not cut, with a small overlap.
import Foundation

/// One piece of a split recording.
public struct AudioChunk: Sendable {
    public var index: Int
    /// Seconds from the start of the whole recording.
    public var start: Double
    public var end: Double
    /// Loudness at the cut that ends this chunk, in dBFS (nil for the last chunk).
    public var cutLevelDB: Double?
    /// The chunk, encoded in the requested container.
    public var data: Data
}

/// Splits decoded audio at quiet points.
public enum AudioChunker {
    /// Length of the windows whose loudness is compared: 20 ms, one speech phoneme.
    static let windowSeconds = 0.02
    /// How far back from a cap a quiet point is looked for: the last half of a chunk, at most 30 s
    /// (a pause between sentences comes every few seconds in speech).
    static let searchFraction = 0.5
    static let maxSearchSeconds = 30.0

    /// Splits `audio` into chunks of at most `maxSeconds` and (encoded in `container`) at most `maxBytes`.
    ///
    /// Each chunk after the first starts `overlap` seconds before the previous one's cut, so a word
    /// at a cut is heard whole in one of them; the overlap counts toward the caps.
    public static func split(_ audio: DecodedAudio, maxSeconds: Double? = nil, maxBytes: Int? = nil, overlap: Double = 0.5,
                             as container: AudioContainer = .wav) throws -> [AudioChunk] {
        let format = audio.format
        guard maxSeconds != nil || maxBytes != nil else {
            return [AudioChunk(index: 0, start: 0, end: audio.duration, cutLevelDB: nil,
                               data: try AudioEncoder.encode(audio.pcm, format: format, as: container))]
        }
        var limit = maxSeconds ?? .infinity
        if let maxBytes, container == .wav || container == .raw {
            // Exact for PCM: header plus bytes per second.
            let header = container == .wav ? 44 : 0
            limit = min(limit, Double(maxBytes - header) / Double(format.bytesPerSecond))
        }
        if let maxBytes, !limit.isFinite {
            // Compressed containers: learn the bytes per second from a 10-second sample to guess.
            let sampleFrames = min(audio.frameCount, 10 * format.sampleRate)
            let sample = try AudioEncoder.encode(audio.pcm.prefix(sampleFrames * format.bytesPerFrame), format: format, as: container)
            let perSecond = Double(sample.count) / max(0.001, Double(sampleFrames) / Double(format.sampleRate))
            limit = Double(maxBytes) / perSecond * 0.9
        }
        // Compressed containers: guess, check the encoded sizes, and tighten until every chunk fits.
        for _ in 0 ..< 6 {
            guard limit > overlap * 2, limit * Double(format.sampleRate) >= 1 else {
                throw MediaError.invalidTarget("a chunk of \(limit) s cannot hold a \(overlap) s overlap")
            }
            let chunks = try cut(audio, limitSeconds: limit, overlap: overlap, container: container)
            guard let maxBytes, let largest = chunks.map(\.data.count).max(), largest > maxBytes else { return chunks }
            limit *= Double(maxBytes) / Double(largest) * 0.95
        }
        throw MediaError.limitExceeded(.targetBytes, actual: Int64(audio.pcm.count), allowed: Int64(maxBytes ?? 0))
    }

    private static func cut(_ audio: DecodedAudio, limitSeconds: Double, overlap: Double, container: AudioContainer) throws -> [AudioChunk] {
        let format = audio.format
        let total = audio.frameCount
        let limit = max(1, Int(limitSeconds * Double(format.sampleRate)))
        let overlapFrames = Int(overlap * Double(format.sampleRate))
        let window = max(1, Int(windowSeconds * Double(format.sampleRate)))
        var chunks: [AudioChunk] = []
        var start = 0
        while start < total {
            var end = min(total, start + limit)
            var level: Double?
            if end < total {
                let search = max(window, min(Int(Double(limit) * searchFraction), Int(maxSearchSeconds * Double(format.sampleRate))))
                let (quietest, db) = quietestWindow(audio, from: max(start + overlapFrames + 1, end - search), to: end, window: window)
                end = quietest
                level = db
            }
            let bytes = audio.pcm.subdata(in: start * format.bytesPerFrame ..< end * format.bytesPerFrame)
            chunks.append(AudioChunk(index: chunks.count, start: Double(start) / Double(format.sampleRate),
                                     end: Double(end) / Double(format.sampleRate), cutLevelDB: level,
                                     data: try AudioEncoder.encode(bytes, format: format, as: container)))
            if end >= total { break }
            start = max(start + 1, end - overlapFrames)
        }
        return chunks
    }

    /// The frame in the middle of the quietest `window` between `from` and `to`, and its level in dBFS.
    static func quietestWindow(_ audio: DecodedAudio, from: Int, to: Int, window: Int) -> (Int, Double) {
        let format = audio.format
        var best = (frame: to, energy: Double.infinity)
        audio.pcm.withUnsafeBytes { raw in
            var position = max(0, from)
            while position + window <= to {
                var energy = 0.0
                for frame in position ..< position + window {
                    for channel in 0 ..< format.channels {
                        let sample = Self.sample(raw, frame * format.channels + channel, format.sample)
                        energy += sample * sample
                    }
                }
                energy /= Double(window * format.channels)
                // Ties go to the later window: the longer chunk.
                if energy <= best.energy { best = (position + window / 2, energy) }
                position += window
            }
        }
        let db = best.energy.isFinite && best.energy > 0 ? 10 * log10(best.energy) : -120
        return (best.frame, db)
    }

    /// One sample as a value in -1...1.
    static func sample(_ raw: UnsafeRawBufferPointer, _ index: Int, _ type: PCMFormat.Sample) -> Double {
        switch type {
        case .s16: return Double(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self))) / 32768
        case .f32: return Double(raw.loadUnaligned(fromByteOffset: index * 4, as: Float.self))
        }
    }
}
