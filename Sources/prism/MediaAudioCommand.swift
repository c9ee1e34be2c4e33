// `prism media audio`: converts audio (or a video's sound) to what a speech engine or provider takes,
// optionally split into chunks at quiet points under a duration or size cap.
import ArgumentParser
import Foundation
import PrismMedia

/// `prism media audio FILE --rate 16000 --channels 1 --format wav -o OUT [--chunk-seconds S | --chunk-bytes N]`
struct MediaAudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audio", abstract: "Convert, resample and split audio.")

    @Argument(help: "Audio or video file (raw PCM with --raw-rate).") var file: String
    @Option(help: "Output sample rate.") var rate = 16_000
    @Option(help: "Output channels.") var channels = 1
    @Option(help: "Output container: wav, flac, mp3, opus or raw.") var format = "wav"
    @Option(help: "Input is raw s16le PCM at this rate.") var rawRate: Int?
    @Option(help: "Channels of raw input.") var rawChannels = 1
    @Option(help: "Split into chunks of at most this long (e.g. 10m), cut at quiet points.") var chunkSeconds: String?
    @Option(help: "Split into chunks of at most this many bytes (OpenAI transcription: 26214400).") var chunkBytes: Int?
    @Option(help: "Overlap between chunks.") var overlap = "0.5s"
    @Option(name: .shortAndLong, help: "Output file (with chunking: prefix, written as PREFIX-001.EXT, …).") var output: String
    @Flag(help: "Print JSON: the report as one document; with chunking, one line per chunk.") var json = false

    /// One chunk's --json line.
    struct ChunkLine: Encodable {
        let file: String, start: Double, end: Double, bytes: Int
        let cutLevelDB: Double?
    }

    func run() throws {
        guard let container = AudioContainer(rawValue: format) else { throw ValidationError("unknown format \(format)") }
        let bytes = try MediaIO.read(file)
        let pcm = PCMFormat(sampleRate: rate, channels: channels)
        let raw = rawRate.map { PCMFormat(sampleRate: $0, channels: rawChannels) }
        if chunkSeconds == nil && chunkBytes == nil {
            let converted = try MediaIO.reporting { try AudioConverter.convert(bytes, raw: raw, to: pcm, as: container) }
            try MediaIO.write(converted.data, to: output)
            if json { return try MediaIO.printJSON(converted.report) }
            let r = converted.report
            print("\(r.source.codec) \(r.source.sampleRate) Hz \(r.source.channels) ch → \(container.rawValue) \(pcm): "
                + String(format: "%.2f s, %d bytes, %.0f ms", r.duration, r.bytes, r.milliseconds)
                + (r.resampledWithSoxr ? " (soxr)" : ""))
            return
        }
        let maxSeconds = try chunkSeconds.map(MediaIO.seconds)
        let overlapSeconds = try MediaIO.seconds(overlap)
        let chunks = try MediaIO.reporting { () -> [AudioChunk] in
            let audio = try AudioDecoder.decode(bytes, to: pcm, raw: raw)
            return try AudioChunker.split(audio, maxSeconds: maxSeconds, maxBytes: chunkBytes, overlap: overlapSeconds, as: container)
        }
        for chunk in chunks {
            let path = String(format: "%@-%03d.%@", output, chunk.index + 1, container.fileExtension)
            try MediaIO.write(chunk.data, to: path)
            if json {
                try JSONOutput.value(ChunkLine(file: path, start: chunk.start, end: chunk.end, bytes: chunk.data.count, cutLevelDB: chunk.cutLevelDB))
                continue
            }
            print(String(format: "%@: %.2f–%.2f s, %d bytes%@", path, chunk.start, chunk.end, chunk.data.count,
                         chunk.cutLevelDB.map { String(format: ", cut at %.0f dBFS", $0) } ?? ""))
        }
    }
}
