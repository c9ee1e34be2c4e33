// `prism speak "text" -o out.wav`: the Synthesize RPC. Audio chunks are written to the file as
// they arrive; a streamed WAV's header gets its real sizes once the speech is complete.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct SpeakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "speak", abstract: "Turn text into speech through the gateway.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The text to speak; '-' reads it from stdin.") var text: String
    @Option(name: .shortAndLong, help: "Where to write the audio.") var output: String
    @Option(help: "wav, pcm, flac, mp3 or opus; default from the file's extension, else wav.") var format: String?
    @Option(help: "A voice of the provider (local/espeak: en-us, en-gb, de, fr, ...).") var voice = ""
    @Option(help: "Speed, 1 = normal.") var speed: Float = 0
    @Option(help: "Output sample rate in Hz; 0 = the provider's.") var sampleRate: UInt32 = 0
    @Option(help: "Route to this model, provider/model.") var model: String?
    @OptionGroup var jsonOutput: JSONOption

    /// What --json prints once the audio is written.
    struct Report: Encodable {
        let output: String, format: String, bytes: Int, model: String
    }

    func run() async throws {
        let words = text == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : text
        let ext = (output as NSString).pathExtension.lowercased()
        let chosen = format ?? (["wav", "pcm", "flac", "mp3", "opus"].contains(ext) ? ext : ext == "raw" ? "pcm" : "wav")
        let b = ProtoBuilder()
        let r = b.message(prism__v1__synthesize_request__init)
        r.pointee.text = b.string(words)
        r.pointee.format = b.string(chosen)
        r.pointee.voice = b.string(voice)
        r.pointee.speed = speed
        r.pointee.sample_rate = sampleRate
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model ?? "")
        r.pointee.route = route
        var body = ByteBuffer()
        b.pack(r, into: &body)

        guard FileManager.default.createFile(atPath: output, contents: nil), let file = FileHandle(forWritingAtPath: output) else {
            throw ValidationError("cannot write \(output)")
        }
        defer { try? file.close() }
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        var written = 0, routedModel = ""
        do {
            let call = try await client.serverStreaming("/prism.v1.Prism/Synthesize", body, metadata: connection.metadata)
            for try await reply in call.responses {
                let e = try ProtoMessage(prism__v1__synthesize_event__init, buffer: reply)
                let chunk: Data? = withExtendedLifetime(e) {
                    if e.pointee.event_case == PRISM__V1__SYNTHESIZE_EVENT__EVENT_ROUTED, let info = e.pointee.routed?.pointee {
                        routedModel = String(protoC: info.model)
                        if !jsonOutput.json { FileHandle.standardError.write(Data("routed: \(routedModel)\n".utf8)) }
                        return nil
                    }
                    return e.pointee.audio.map { Data([UInt8](protoC: $0.pointee.data)) }
                }
                if let chunk, !chunk.isEmpty {
                    try file.write(contentsOf: chunk)
                    written += chunk.count
                }
            }
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
        if chosen == "wav" && written >= 44 { try Self.fixWAVSizes(file, total: written) }
        if jsonOutput.json { return try JSONOutput.value(Report(output: output, format: chosen, bytes: written, model: routedModel)) }
        FileHandle.standardError.write(Data("wrote \(written) bytes to \(output)\n".utf8))
    }

    /// A streamed WAV says "unknown length"; a file can say the truth.
    static func fixWAVSizes(_ file: FileHandle, total: Int) throws {
        func le32(_ v: Int) -> Data { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { Data($0) } }
        try file.seek(toOffset: 4)
        try file.write(contentsOf: le32(total - 8))
        try file.seek(toOffset: 40)
        try file.write(contentsOf: le32(total - 44))
    }
}
