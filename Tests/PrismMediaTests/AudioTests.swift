// Behaviour of the audio side on tones and speech made by FFmpeg's lavfi sources and espeak-ng,
// on pocketsphinx's recorded speech, and on WAV files whose headers lie.
import PrismMedia
import XCTest

/// Zero crossings per second of the first channel over its loud part: 2 × the frequency of a pure
/// tone. Crossings count only between swings past ±500, so codec padding and dither do not count.
func crossingsPerSecond(_ audio: DecodedAudio) -> Double {
    var crossings = 0, first = -1, last = 0
    audio.pcm.withUnsafeBytes { raw in
        var positive: Bool?
        for frame in 0 ..< audio.frameCount {
            let value = Int16(littleEndian: raw.loadUnaligned(fromByteOffset: frame * audio.format.bytesPerFrame, as: Int16.self))
            guard abs(Int(value)) > 500 else { continue }
            if first < 0 { first = frame }
            last = frame
            if let positive, positive != (value > 0) { crossings += 1 }
            positive = value > 0
        }
    }
    return Double(crossings) / (Double(last - first) / Double(audio.format.sampleRate))
}

func peakLevel(_ audio: DecodedAudio) -> Int {
    audio.pcm.withUnsafeBytes { raw in
        (0 ..< raw.count / 2).reduce(0) { max($0, abs(Int(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: $1 * 2, as: Int16.self))))) }
    }
}

final class AudioTests: XCTestCase {
    /// A 3 s, 440 Hz stereo tone at 44.1 kHz in each container FFmpeg can write here.
    func makeTones(_ f: Fixtures) throws -> [(String, MediaFormat)] {
        let tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=44100", "-ac", "2"]
        let outputs: [(String, [String], MediaFormat)] = [
            ("tone.wav", [], .wav), ("tone.mp3", ["-c:a", "libmp3lame"], .mp3), ("tone.flac", [], .flac),
            ("tone.opus", ["-c:a", "libopus"], .opus), ("tone.ogg", ["-c:a", "libvorbis"], .ogg),
            ("tone.m4a", ["-c:a", "aac"], .m4a), ("tone.webm", ["-c:a", "libopus"], .webm), ("tone.aac", ["-c:a", "aac"], .aac),
        ]
        for (name, codec, _) in outputs { try Fixtures.run("ffmpeg", ["-y", "-nostdin", "-loglevel", "error"] + tone + codec + [f.path(name)]) }
        return outputs.map { ($0.0, $0.2) }
    }

    func testDecodesEveryContainerTo16kMonoWithTheRightPitch() throws {
        let f = try Fixtures()
        for (name, format) in try makeTones(f) {
            let bytes = try f.data(name)
            XCTAssertEqual(MediaSniffer.sniff(bytes), format, name)
            let audio = try AudioDecoder.decode(bytes, to: .speech)
            XCTAssertEqual(audio.format, .speech)
            XCTAssertEqual(audio.duration, 3, accuracy: 0.1, name)
            XCTAssertEqual(crossingsPerSecond(audio), 880, accuracy: 15, "\(name): a 440 Hz tone must stay 440 Hz after resampling")
            XCTAssertEqual(audio.source.sampleRate, name.hasSuffix(".opus") || name.hasSuffix(".webm") ? 48_000 : 44_100, name)
            XCTAssertEqual(audio.source.channels, 2, name)
            XCTAssertTrue(audio.resampledWithSoxr, "Debian's swresample has libsoxr")
        }
    }

    func testProbeReadsDurationFromTheContainer() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=7", "-c:a", "flac", f.path("t.flac"))
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=7", "-c:a", "libmp3lame", f.path("t.mp3"))
        let flac = try AudioDecoder.probe(try f.data("t.flac"))
        XCTAssertEqual(flac.duration!, 7, accuracy: 0.01)
        XCTAssertEqual(flac.codec, "flac")
        XCTAssertFalse(flac.durationEstimated)
        let mp3 = try AudioDecoder.probe(try f.data("t.mp3"))
        XCTAssertEqual(mp3.duration!, 7, accuracy: 0.1)
        XCTAssertEqual(mp3.codec, "mp3")
    }

    func testRawPCMDecodesWhenDescribed() throws {
        // pocketsphinx's "go forward ten meters": raw 16 kHz mono s16.
        let raw = try Data(contentsOf: URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data/goforward.raw"))
        let audio = try AudioDecoder.decode(raw, to: PCMFormat(sampleRate: 8_000, channels: 1), raw: .speech)
        XCTAssertEqual(audio.duration, Double(raw.count) / 32_000, accuracy: 0.01)
        XCTAssertGreaterThan(peakLevel(audio), 3_000, "speech, not silence")
        let wav = try AudioConverter.convert(raw, raw: .speech, to: .speech, as: .wav)
        XCTAssertEqual(wav.data.count, raw.count + 44, "same rate and layout: the samples pass through unchanged")
        XCTAssertEqual(wav.data.suffix(raw.count), raw)
    }

    func testEncodersRoundTrip() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:duration=2:sample_rate=16000", f.path("t.wav"))
        let source = try AudioDecoder.decode(try f.data("t.wav"), to: .speech)
        for container in AudioContainer.allCases where container != .raw {
            let encoded = try AudioEncoder.encode(source.pcm, format: .speech, as: container)
            let back = try AudioDecoder.decode(encoded, to: .speech)
            XCTAssertEqual(back.duration, 2, accuracy: 0.1, container.rawValue)
            XCTAssertEqual(crossingsPerSecond(back), 1_000, accuracy: 20, container.rawValue)
        }
        let flac = try AudioEncoder.encode(source.pcm, format: .speech, as: .flac)
        XCTAssertEqual(try AudioDecoder.decode(flac, to: .speech).pcm, source.pcm, "FLAC is lossless")
        XCTAssertThrowsError(try AudioEncoder.encode(source.pcm, format: PCMFormat(sampleRate: 44_100, channels: 1), as: .opus))
    }

    /// An MP3 whose frames change from stereo to mono mid-stream (two files joined; the media
    /// fuzz target found one): the resampler is made again for the new layout, not left reading
    /// a second plane the mono frames do not have (a crash before).
    func testAChannelCountChangeMidStreamIsResampledAgain() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:duration=1:sample_rate=16000", "-ac", "2", "-c:a", "libmp3lame", f.path("stereo.mp3"))
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:duration=1:sample_rate=16000", "-ac", "1", "-c:a", "libmp3lame", f.path("mono.mp3"))
        let joined = try f.data("stereo.mp3") + f.data("mono.mp3")
        let back = try AudioDecoder.decode(joined, to: .speech)
        XCTAssertEqual(back.duration, 2, accuracy: 0.2)
        // The join adds the second file's encoder delay (silence), hence the wider margin.
        XCTAssertEqual(crossingsPerSecond(back), 1_000, accuracy: 80)
    }

    func testSpeechFromEspeakConvertsForSpeechEngines() throws {
        let f = try Fixtures()
        try Fixtures.run("espeak-ng", ["-w", f.path("s.wav"), "The quick brown fox jumps over the lazy dog."])
        let converted = try AudioConverter.convert(try f.data("s.wav"), to: .speech, as: .wav)
        XCTAssertEqual(converted.report.source.sampleRate, 22_050)
        XCTAssertGreaterThan(converted.report.duration, 1.5)
        XCTAssertEqual(converted.data.count, 44 + Int((converted.report.duration * 32_000).rounded()), accuracy: 2)
        let audio = try AudioDecoder.decode(converted.data)
        XCTAssertGreaterThan(peakLevel(audio), 3_000)
    }

    func testChunksEndAtQuietPointsWithOverlap() throws {
        let f = try Fixtures()
        // 2 s of tone, 0.5 s of silence, repeated for 12.5 s.
        try f.ffmpeg("-f", "lavfi", "-i", "aevalsrc=exprs='if(lt(mod(t\\,2.5)\\,2)\\,0.5*sin(2*PI*440*t)\\,0)':s=16000:d=12.5", f.path("gaps.wav"))
        let audio = try AudioDecoder.decode(try f.data("gaps.wav"), to: .speech)
        let chunks = try AudioChunker.split(audio, maxSeconds: 4, overlap: 0.2)
        XCTAssertGreaterThanOrEqual(chunks.count, 4)
        for chunk in chunks {
            XCTAssertLessThanOrEqual(chunk.end - chunk.start, 4.0001)
            if let level = chunk.cutLevelDB {
                XCTAssertLessThan(level, -60, "cut at \(chunk.end) s is not in a silent gap")
                XCTAssertGreaterThanOrEqual(chunk.end.truncatingRemainder(dividingBy: 2.5), 2.0, "cut at \(chunk.end) s")
            }
        }
        for (a, b) in zip(chunks, chunks.dropFirst()) { XCTAssertEqual(a.end - b.start, 0.2, accuracy: 0.001, "overlap") }
        XCTAssertEqual(chunks.last!.end, 12.5, accuracy: 0.01)
        // A byte cap works the same way: every WAV chunk is under it.
        let byBytes = try AudioChunker.split(audio, maxBytes: 100_000, overlap: 0.2)
        XCTAssertTrue(byBytes.allSatisfy { $0.data.count <= 100_000 })
        XCTAssertEqual(byBytes.last!.end, 12.5, accuracy: 0.01)
        let mp3 = try AudioChunker.split(audio, maxBytes: 30_000, overlap: 0.2, as: .mp3)
        XCTAssertTrue(mp3.allSatisfy { $0.data.count <= 30_000 })
    }

    func testStreamingDecodeKeepsMemoryBounded() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=20", "-c:a", "libmp3lame", f.path("long.mp3"))
        let bytes = try f.data("long.mp3")
        var limits = MediaLimits.standard
        limits.streamingBufferBytes = 16 * 1024
        let lock = NSLock()
        var pcm = Data()
        let decoder = StreamingAudioDecoder(output: .speech, limits: limits) { chunk in lock.withLock { pcm.append(chunk) } }
        var offset = 0
        while offset < bytes.count {
            let size = min(bytes.count - offset, 1000 + offset % 777)
            try decoder.feed(bytes.subdata(in: offset ..< offset + size))
            offset += size
        }
        let summary = try decoder.finish()
        XCTAssertEqual(summary.duration, 20, accuracy: 0.1)
        XCTAssertEqual(summary.source.format, .mp3)
        XCTAssertLessThanOrEqual(summary.peakBufferedBytes, 16 * 1024)
        let whole = try AudioDecoder.decode(bytes, to: .speech)
        // Without seeking FFmpeg cannot read the encoder's end padding from the Xing header, so a
        // stream may carry a few ms more at the end; the samples before that are the same.
        XCTAssertEqual(Double(pcm.count), Double(whole.pcm.count), accuracy: 0.05 * 32_000)
        let common = min(pcm.count, whole.pcm.count) - 3_200
        XCTAssertEqual(pcm.prefix(common), whole.pcm.prefix(common), "streaming and whole-file decoding give the same samples")
    }

    // MARK: Hostile input

    /// Many channels (more than the SoX engine takes): decoded by swresample's own engine or refused
    /// with a MediaError, never a crash. A 64-channel WAV once crashed the process in swr_init (a
    /// second init on a context whose first init failed); found by the media fuzz target.
    func testManyChannelWAVIsDecodedOrRefused() throws {
        for channels in [2, 64, 65] {
            let format = PCMFormat(sampleRate: 8_000, channels: channels)
            let bytes = format.bytesPerSecond / 10
            let wav = AudioEncoder.wavHeader(format: format, dataBytes: bytes) + Data(count: bytes)
            do {
                let audio = try AudioDecoder.decode(wav, to: .speech)
                XCTAssertEqual(audio.duration, 0.1, accuracy: 0.01, "\(channels) channels")
            } catch let error as MediaError {
                XCTAssertGreaterThan(channels, 2, "a stereo WAV was refused: \(error)")
            }
        }
    }

    func testWAVHeaderLyingAboutItsLength() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=16000", f.path("one.wav"))
        let honest = try f.data("one.wav")
        let samples = honest.suffix(32_000)
        // Header claims an hour of audio; the file holds one second.
        let liar = AudioEncoder.wavHeader(format: .speech, dataBytes: 3600 * 32_000) + samples
        var limits = MediaLimits.standard
        limits.maxAudioSeconds = 60
        // In memory FFmpeg measures the data against the file and believes the file.
        let decoded = try AudioDecoder.decode(liar, to: .speech, limits: limits)
        XCTAssertEqual(decoded.duration, 1, accuracy: 0.01, "what is decoded is what is there")
        XCTAssertEqual(try AudioDecoder.probe(liar).duration ?? 0, 1, accuracy: 0.01)
        // Streamed, the size cannot be measured: the claim is not trusted either way, samples are counted.
        var streamed = 0
        let stream = StreamingAudioDecoder(limits: limits) { streamed += $0.count }
        try stream.feed(liar)
        XCTAssertEqual(try stream.finish().duration, 1, accuracy: 0.01)
        XCTAssertEqual(streamed, 32_000)
        // A container that honestly says it is too long is refused before decoding, naming the limit.
        try f.ffmpeg("-f", "lavfi", "-i", "sine=duration=3", "-c:a", "flac", f.path("three.flac"))
        limits.maxAudioSeconds = 2
        XCTAssertThrowsError(try AudioDecoder.decode(try f.data("three.flac"), limits: limits)) { error in
            guard case MediaError.limitExceeded(.audioSeconds, 3, 2) = error else { return XCTFail("\(error)") }
        }
        // A header claiming less than the file holds: only the claimed part is audio.
        let short = AudioEncoder.wavHeader(format: .speech, dataBytes: 16_000) + samples
        XCTAssertEqual(try AudioDecoder.decode(short).duration, 0.5, accuracy: 0.01)
    }

    func testAudioLimitsAndGarbage() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "libmp3lame", f.path("t.mp3"))
        let mp3 = try f.data("t.mp3")
        var limits = MediaLimits.standard
        limits.maxAudioInputBytes = 1000
        XCTAssertThrowsError(try AudioDecoder.decode(mp3, limits: limits)) { error in
            guard case MediaError.limitExceeded(.audioInputBytes, _, 1000) = error else { return XCTFail("\(error)") }
        }
        // Raw PCM has no duration of its own: the decode loop counts seconds and stops at the limit.
        limits = .standard
        limits.maxAudioSeconds = 1
        let raw = Data(count: 32_000 * 3)
        XCTAssertThrowsError(try AudioDecoder.decode(raw, raw: .speech, limits: limits)) { error in
            guard case MediaError.limitExceeded(.audioSeconds, _, 1) = error else { return XCTFail("\(error)") }
        }
        // A truncated MP3 decodes what is there, like a player would.
        let truncated = try AudioDecoder.decode(mp3.prefix(mp3.count / 2))
        XCTAssertEqual(truncated.duration, 1.5, accuracy: 0.2)
        XCTAssertThrowsError(try AudioDecoder.decode(Data("no audio here".utf8))) { error in
            XCTAssertEqual(error as? MediaError, .unrecognizedFormat)
        }
        XCTAssertThrowsError(try AudioDecoder.decode(Data("ID3".utf8) + Data(repeating: 0x55, count: 5000))) { error in
            guard case MediaError.corrupt = error else { return XCTFail("\(error)") }
        }
    }
}
