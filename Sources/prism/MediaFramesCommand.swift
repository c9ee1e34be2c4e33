// `prism media frames`: a video as a provider without video input gets it, sampled frames as JPEG
// (and, on request, the audio track as 16 kHz mono WAV for transcription).
import ArgumentParser
import Foundation
import PrismMedia

/// `prism media frames FILE (--every 2s | --count N | --scene 0.15) -o DIR [--audio OUT.wav]`
struct MediaFramesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "frames", abstract: "Sample frames from a video as JPEG images.")

    @Argument(help: "The video.") var file: String
    @Option(help: "One frame every this long (e.g. 2s).") var every: String?
    @Option(help: "This many frames, evenly spread.") var count: Int?
    @Option(help: "Frames at scene changes above this difference (0–1, e.g. 0.15).") var scene: Double?
    @OptionGroup var targetOptions: ImageTargetOptions
    @Option(help: "Also write the audio track as 16 kHz mono WAV here.") var audio: String?
    @Option(name: .shortAndLong, help: "Folder for frame-001.jpg, …") var output: String
    @OptionGroup var jsonOutput: JSONOption

    /// One --json line: a frame (file, time, size, scene score) or the audio track (file, duration).
    struct Line: Encodable {
        let file: String
        var time: Double?, width: Int?, height: Int?, bytes: Int?, sceneScore: Double?, duration: Double?
    }

    func validate() throws {
        guard [every != nil, count != nil, scene != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --every, --count or --scene")
        }
    }

    func run() throws {
        let bytes = try MediaIO.read(file)
        let sampling: FrameSampling
        if let every { sampling = .every(seconds: try MediaIO.seconds(every)) } else if let count { sampling = .uniform(count: count) } else {
            sampling = .sceneChange(threshold: scene!)
        }
        var target = try targetOptions.target(default: VideoSampler.defaultFrameTarget)
        if targetOptions.format == nil, target.acceptedFormats.contains(.jpeg) { target.preferredFormat = .jpeg }
        let frames = try MediaIO.reporting { try VideoSampler.sample(bytes, sampling, target: target) }
        let folder = try MediaIO.folder(output)
        for (index, frame) in frames.enumerated() {
            let name = String(format: "frame-%03d.%@", index + 1, frame.image.format.fileExtension)
            try MediaIO.write(frame.image.data, to: folder.appendingPathComponent(name).path)
            if jsonOutput.json {
                try JSONOutput.value(Line(file: folder.appendingPathComponent(name).path, time: frame.time, width: frame.image.width,
                                          height: frame.image.height, bytes: frame.image.data.count, sceneScore: frame.sceneScore))
                continue
            }
            print(String(format: "%@: %.3f s, %d×%d, %d bytes%@", name, frame.time, frame.image.width, frame.image.height,
                         frame.image.data.count, frame.sceneScore.map { String(format: ", scene %.2f", $0) } ?? ""))
        }
        if let audio {
            let track = try MediaIO.reporting { try VideoSampler.extractAudio(bytes) }
            try MediaIO.write(try AudioEncoder.encode(track.pcm, format: track.format, as: .wav), to: audio)
            if jsonOutput.json { return try JSONOutput.value(Line(file: audio, duration: track.duration)) }
            print(String(format: "%@: %.2f s of 16 kHz mono audio", audio, track.duration))
        }
    }
}
