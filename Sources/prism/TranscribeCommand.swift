// `prism transcribe FILE`: streams an audio (or video) file to the Transcribe RPC and prints each
// segment on stdout as it is recognised, while the upload goes on (as fast as flow control allows,
// or at the audio's own pace with --realtime), then the final transcript; a progress bar on stderr.
import ArgumentParser
import Foundation
import NIOCore
import PrismMedia
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
    @Flag(help: "Send the audio at its own pace, as a live source would (default: as fast as the server takes it).") var realtime = false
    @OptionGroup var output: JSONOption

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
        let bytesPerSecond = realtime ? try Self.bytesPerSecond(audio, mime: mime) : nil
        let sender = Task {
            try await call.send(body)
            let started = Date()
            // Live pacing sends a tenth of a second at a time, as a microphone would.
            let chunkBytes = bytesPerSecond.map { max(1024, min(Self.chunkBytes, Int($0 / 10))) } ?? Self.chunkBytes
            // Not before the audio sent so far would have been spoken.
            let pace = bytesPerSecond.map { rate in { (offset: Int) async throws in
                let due = Double(offset) / rate - Date().timeIntervalSince(started)
                if due > 0 { try await Task.sleep(nanoseconds: UInt64(due * 1e9)) }
            } }
            try await call.sendSlices(of: audio, sliceBytes: chunkBytes, bar: bar, pace: pace, prism__v1__transcribe_request__init) { m, audio in
                m.pointee.payload_case = PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_AUDIO
                m.pointee.audio = audio
            }
            bar?.done()
            call.end()
        }
        do {
            for try await reply in call.responses {
                if output.json {
                    try JSONOutput.message(prism__v1__transcribe_event__init, reply)
                    continue
                }
                let event = try ProtoMessage(prism__v1__transcribe_event__init, buffer: reply)
                withExtendedLifetime(event) { show(event.pointee, bar: bar) }
            }
            _ = try? await sender.value
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
        } catch let error as RPCError {
            sender.cancel()
            throw reportFailure(error)
        }
    }

    /// The file's bytes per second of audio, for --realtime: from the L16 type, else its duration.
    static func bytesPerSecond(_ audio: Data, mime: String) throws -> Double {
        let fields = mime.lowercased().split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        if fields.first == "audio/l16" {
            var rate = 16_000, channels = 1
            for field in fields.dropFirst() {
                let kv = field.split(separator: "=", maxSplits: 1)
                if kv.count == 2, let value = Int(kv[1]) { if kv[0] == "rate" { rate = value } else if kv[0] == "channels" { channels = value } }
            }
            return Double(rate * channels * 2)
        }
        let description = MediaInspector.inspect(audio, declaredMime: mime.isEmpty ? nil : mime)
        guard let seconds = description.audio?.duration ?? description.video?.duration, seconds > 0 else {
            throw ValidationError("--realtime: the file does not say how long it is")
        }
        return Double(audio.count) / seconds
    }

    /// Prints one event; `bar` (the upload's progress) is cleared first and redrawn after.
    private func show(_ e: Prism__V1__TranscribeEvent, bar: ProgressBar?) {
        bar?.clear()
        defer {
            fflush(stdout)
            bar?.redraw()
        }
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

/// A one-line progress bar on stderr, redrawn in place; other output clears it first and redraws
/// it after (the upload and the printing of segments run at once).
final class ProgressBar: @unchecked Sendable {
    private let total: Int
    private let label: String
    private let lock = NSLock()
    // Guarded by `lock`.
    private var lastPercent = -1
    private var finished = false

    init(total: Int, label: String) {
        self.total = max(1, total)
        self.label = label
    }

    func update(_ done: Int) {
        lock.withLock {
            let percent = done * 100 / total
            guard percent != lastPercent, !finished else { return }
            lastPercent = percent
            draw()
        }
    }

    /// Erases the bar's line so that the next line printed starts clean.
    func clear() {
        lock.withLock { if !finished && lastPercent >= 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
    }

    func redraw() {
        lock.withLock { if !finished && lastPercent >= 0 { draw() } }
    }

    func done() {
        lock.withLock {
            finished = true
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }

    /// Caller holds the lock.
    private func draw() {
        let filled = lastPercent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(lastPercent)%".utf8))
    }
}
