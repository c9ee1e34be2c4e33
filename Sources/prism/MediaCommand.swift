// `prism media`: the offline face of the media core, so a user can see what the gateway would
// send a provider (no server involved). The root command registers MediaCommand.
import ArgumentParser
import Foundation
import PrismMedia

/// `prism media …` — inspect and convert media exactly as the gateway would, without a server.
struct MediaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media",
        abstract: "Inspect and fit images, PDFs, audio and video offline, as the gateway would.",
        subcommands: [MediaInspectCommand.self, MediaFitCommand.self, MediaPagesCommand.self,
                      MediaAudioCommand.self, MediaFramesCommand.self])
}

/// `prism media inspect FILE` — format (sniffed vs declared by extension), size, pages or duration.
struct MediaInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Describe a media file from its headers.")

    @Argument(help: "The file to describe.") var file: String
    @Option(help: "MIME type to compare with the bytes (default: guessed from the file extension).") var declaredMime: String?
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let bytes = try MediaIO.read(file)
        let description = MediaInspector.inspect(bytes, declaredMime: declaredMime ?? MediaIO.mimeFromExtension(file))
        if json { return try MediaIO.printJSON(description) }
        let v = description.verdict
        print("format:   \(v.format.rawValue) (\(v.mimeType)), \(description.bytes) bytes")
        if let declared = v.declaredMime { print("declared: \(declared)\(v.mismatch ? "  ← does not match the bytes" : "")") }
        if let image = description.image {
            print("image:    \(image.width)×\(image.height)\(image.frames > 1 ? ", \(image.frames) frames" : "")"
                + "\(image.orientation != 1 ? ", EXIF orientation \(image.orientation)" : "")\(image.hasAlpha ? ", alpha" : "")")
            print("tokens:   \(MediaIO.tokens(image.tokens))")
        }
        if let document = description.document {
            print("pdf:      \(document.pages) pages, first page \(Int(document.firstPageWidth))×\(Int(document.firstPageHeight)) pt")
        }
        if let video = description.video {
            print("video:    \(video.codec) \(video.displayWidth)×\(video.displayHeight)"
                + "\(video.frameRate.map { String(format: " @ %.2f fps", $0) } ?? "")\(video.duration.map { String(format: ", %.2f s", $0) } ?? "")")
        }
        if let audio = description.audio {
            print("audio:    \(audio.codec) \(audio.sampleRate) Hz, \(audio.channels) ch"
                + "\(audio.duration.map { String(format: ", %.2f s%@", $0, audio.durationEstimated ? " (estimated)" : "") } ?? "")")
        }
        if let problem = description.problem { print("problem:  \(problem)") }
    }
}
