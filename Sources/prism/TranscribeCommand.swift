// `prism transcribe FILE`: streams an audio (or video) file to the Transcribe RPC and prints each
// segment as it is recognised, then the final transcript; a progress bar on stderr for long files.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct TranscribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transcribe", abstract: "Transcribe speech in an audio file through the gateway.")

    /// Bytes per TranscribeRequest.audio message: 64 KiB is 2 s of 16 kHz PCM.
    static let chunkBytes = 64 * 1024
    /// Files larger than this show a progress bar (when stderr is a terminal).
    static let progressBarBytes = 1024 * 1024

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The audio file (WAV, MP3, FLAC, Ogg, M4A, video...; raw PCM with --mime audio/L16;rate=16000).") var file: String
    @Option(help: "The file's type; empty = sniffed. audio/L16;rate=R for raw 16-bit PCM.") var mime = ""
    @Option(help: "Route to this model, provider/model.") var model: String?
    @Flag(help: "Print word timings under each segment.") var words = false
    @Flag(help: "Print only the final transcript.") var quiet = false
    @Option(help: "Seconds before the call is abandoned.") var timeout: Int64 = 3600

    func run() async throws {
        let audio = try MediaIO.read(file)
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        let call = client.makeCall("/prism.v1.Prism/Transcribe", metadata: connection.metadata, timeout: .seconds(timeout))
        let b = ProtoBuilder()
        let config = b.message(prism__v1__transcribe_config__init)
        config.pointee.mime_type = b.string(mime)
        config.pointee.word_timestamps = words ? 1 : 0
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model ?? "")
        config.pointee.route = route
        let first = b.message(prism__v1__transcribe_request__init)
        first.pointee.payload_case = PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_CONFIG
        first.pointee.config = config
        var body = ByteBuffer()
        b.pack(first, into: &body)

        let bar = audio.count > Self.progressBarBytes && isatty(2) != 0 ? ProgressBar(total: audio.count, label: "uploading") : nil
        let sender = Task {
            try await call.send(body)
            var offset = 0
            while offset < audio.count {
                let end = min(audio.count, offset + Self.chunkBytes)
                let pb = ProtoBuilder()
                let m = pb.message(prism__v1__transcribe_request__init)
                m.pointee.payload_case = PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_AUDIO
                m.pointee.audio = audio[offset..<end].withUnsafeBytes { pb.bytes($0) }
                var buffer = ByteBuffer()
                pb.pack(m, into: &buffer)
                try await call.send(buffer)
                offset = end
                bar?.update(offset)
            }
            bar?.done()
            call.end()
        }
        do {
            for try await reply in call.responses {
                let event = try ProtoMessage(prism__v1__transcribe_event__init, buffer: reply)
                withExtendedLifetime(event) { show(event.pointee) }
            }
            _ = try? await sender.value
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
        } catch let error as RPCError {
            sender.cancel()
            throw reportFailure(error)
        }
    }

    private func show(_ e: Prism__V1__TranscribeEvent) {
        let stderr = FileHandle.standardError
        switch e.event_case {
        case PRISM__V1__TRANSCRIBE_EVENT__EVENT_ROUTED:
            guard let r = e.routed?.pointee, !quiet else { return }
            let steps = UnsafeBufferPointer(start: r.adaptations, count: r.adaptations == nil ? 0 : r.n_adaptations).map { String(protoC: $0) }
            stderr.write(Data("routed: \(String(protoC: r.model))\(steps.isEmpty ? "" : "; " + steps.joined(separator: "; "))\n".utf8))
        case PRISM__V1__TRANSCRIBE_EVENT__EVENT_SEGMENT:
            guard let s = e.segment?.pointee, !quiet else { return }
            print(String(format: "[%7.2f → %7.2f] ", s.start_seconds, s.end_seconds) + String(protoC: s.text))
            if words {
                for w in UnsafeBufferPointer(start: s.words, count: s.words == nil ? 0 : s.n_words).compactMap({ $0 }) {
                    print(String(format: "    %7.2f %7.2f %.2f ", w.pointee.start_seconds, w.pointee.end_seconds, w.pointee.confidence) + String(protoC: w.pointee.text))
                }
            }
        case PRISM__V1__TRANSCRIBE_EVENT__EVENT_FINAL:
            guard let t = e.final?.pointee else { return }
            if !quiet { stderr.write(Data(String(format: "final (%.1f s of audio):\n", t.duration_seconds).utf8)) }
            print(String(protoC: t.text))
        default:
            break
        }
    }
}

/// A one-line progress bar on stderr, redrawn in place.
final class ProgressBar: @unchecked Sendable {
    private let total: Int
    private let label: String
    private var lastPercent = -1

    init(total: Int, label: String) {
        self.total = max(1, total)
        self.label = label
    }

    func update(_ done: Int) {
        let percent = done * 100 / total
        guard percent != lastPercent else { return }
        lastPercent = percent
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)%".utf8))
    }

    func done() {
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
