// Writes PCM as WAV or raw (by hand: a header is 44 bytes) or as FLAC, MP3 and Opus through
// FFmpeg's encoders and muxers, all in memory.
import CFFmpeg
import CPrismMedia
import Foundation

/// PCM in, an encoded file out.
public enum AudioEncoder {
    /// Encodes interleaved `pcm` of `format` into `container`.
    /// - Throws: `.notSupported` when this FFmpeg lacks the encoder, `.invalidTarget` for a rate Opus refuses.
    public static func encode(_ pcm: Data, format: PCMFormat, as container: AudioContainer) throws -> Data {
        try format.validate()
        switch container {
        case .raw: return pcm
        case .wav: return wavHeader(format: format, dataBytes: pcm.count) + pcm
        case .flac: return try encodeWithFFmpeg(pcm, format: format, muxer: "flac", codec: "flac", bitRate: 0)
        case .mp3: return try encodeWithFFmpeg(pcm, format: format, muxer: "mp3", codec: "libmp3lame", bitRate: format.channels * 64_000)
        case .opus:
            guard [8_000, 12_000, 16_000, 24_000, 48_000].contains(format.sampleRate) else {
                throw MediaError.invalidTarget("Opus takes 8, 12, 16, 24 or 48 kHz, not \(format.sampleRate) Hz")
            }
            return try encodeWithFFmpeg(pcm, format: format, muxer: "ogg", codec: "libopus", bitRate: format.channels * 32_000)
        }
    }

    /// A canonical 44-byte RIFF/WAVE header (PCM for s16, IEEE float for f32).
    public static func wavHeader(format: PCMFormat, dataBytes: Int) -> Data {
        var header = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { header.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { header.append(contentsOf: $0) } }
        header.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes)
        header.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16)
        u16(format.sample == .s16 ? 1 : 3); u16(format.channels); u32(format.sampleRate)
        u32(format.bytesPerSecond); u16(format.bytesPerFrame); u16(format.sample.bytes * 8)
        header.append(contentsOf: Array("data".utf8)); u32(dataBytes)
        return header
    }

    private static func encodeWithFFmpeg(_ pcm: Data, format: PCMFormat, muxer: String, codec: String, bitRate: Int) throws -> Data {
        var error = [CChar](repeating: 0, count: 256)
        guard let output = prism_av_output_open(muxer, codec, Int32(format.sampleRate), Int32(format.channels), Int64(bitRate), &error, error.count) else {
            let message = String(cString: error)
            if message.contains("not available") { throw MediaError.notSupported("\(codec) encoder: \(message)") }
            throw MediaError.libraryFailure("\(codec): \(message)")
        }
        var finished = false
        defer { if !finished { prism_av_output_free(output) } }
        let encoder = prism_av_output_codec(output)!
        var inputLayout = AVChannelLayout()
        av_channel_layout_default(&inputLayout, Int32(format.channels))
        var swr: OpaquePointer? = prism_swr_create(&inputLayout, format.sample.av.rawValue, Int32(format.sampleRate), Int32(format.channels),
                                                   encoder.pointee.sample_fmt.rawValue, Int32(format.sampleRate), 0, nil)
        guard swr != nil else { throw MediaError.libraryFailure("converting PCM for \(codec)") }
        defer { swr_free(&swr) }
        // Fixed-frame codecs need whole frames; the last is padded with silence unless the codec takes a short one.
        let frameSize = encoder.pointee.frame_size > 0 ? Int(encoder.pointee.frame_size) : 4096
        let capabilities = encoder.pointee.codec.pointee.capabilities
        let shortLastFrame = capabilities & (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0
        let totalFrames = pcm.count / format.bytesPerFrame
        var frame: UnsafeMutablePointer<AVFrame>? = av_frame_alloc()
        defer { av_frame_free(&frame) }
        var position = 0
        try pcm.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            while position < totalFrames {
                let count = min(frameSize, totalFrames - position)
                let f = frame!
                av_frame_unref(f)
                let samples = shortLastFrame ? count : frameSize
                f.pointee.nb_samples = Int32(samples)
                f.pointee.format = encoder.pointee.sample_fmt.rawValue
                f.pointee.sample_rate = Int32(format.sampleRate)
                av_channel_layout_copy(&f.pointee.ch_layout, &encoder.pointee.ch_layout)
                guard av_frame_get_buffer(f, 0) >= 0 else { throw MediaError.libraryFailure("allocating an audio frame") }
                var planes: [UnsafePointer<UInt8>?] = [base + position * format.bytesPerFrame]
                let converted = swr_convert(swr, f.pointee.extended_data, Int32(samples), &planes, Int32(count))
                guard converted >= 0 else { throw MediaError.libraryFailure("converting PCM: \(avErrorText(converted))") }
                if Int(converted) < samples {
                    av_samples_set_silence(f.pointee.extended_data, converted, Int32(samples) - converted,
                                           Int32(format.channels), encoder.pointee.sample_fmt)
                }
                f.pointee.pts = Int64(position)
                let rc = prism_av_output_write(output, f)
                guard rc >= 0 else { throw MediaError.libraryFailure("\(codec) encode: \(avErrorText(rc))") }
                position += count
            }
        }
        var buffer: UnsafeMutablePointer<UInt8>?
        var length: Int32 = 0
        finished = true
        let rc = prism_av_output_finish(output, &buffer, &length)
        guard rc >= 0, let buffer else { throw MediaError.libraryFailure("\(codec) finish: \(avErrorText(rc))") }
        defer { av_free(buffer) }
        return Data(bytes: buffer, count: Int(length))
    }
}
