// `prism media fit`: fits one image to a provider's declared limits (read from its plugin, as the
// gateway reads them) or to explicit limits, and prints what it did.
import ArgumentParser
import Foundation
import PrismMedia

/// Options that describe an image target: a provider's limits, explicit limits, or both (explicit wins).
struct ImageTargetOptions: ParsableArguments {
    @Option(help: "Fit to the limits this provider's plugin declares (e.g. anthropic, openai, gemini), loaded as prism-server loads it: PRISM_PLUGIN_PATH or this executable's folder, and the vendor's key in the environment.")
    var provider: String?
    @Option(help: "The provider's model whose limits apply: a known id or one its families match (default: its first model that takes images).")
    var model: String?
    @Option(help: "prism-server's config file, for its plugins.path and plugins.config.") var config: String?
    @Option(help: "Longest side in pixels.") var maxLongEdge: Int?
    @Option(help: "Shortest side in pixels.") var maxShortEdge: Int?
    @Option(help: "Width × height in pixels.") var maxPixels: Int?
    @Option(help: "Encoded bytes.") var maxBytes: Int?
    @Option(help: "Output format: jpeg, png, webp, gif, heic or avif (default: chosen per image).") var format: String?
    @Flag(help: "Keep EXIF/XMP/ICC metadata (GPS included).") var keepMetadata = false

    func target(default fallback: ImageTarget = ImageTarget()) throws -> ImageTarget {
        var target = fallback
        if let provider {
            target = try PluginImageTarget.target(provider: provider, model: model, configFile: config).0
        } else if model != nil {
            throw ValidationError("--model needs --provider")
        }
        if let maxLongEdge { target.maxLongEdge = maxLongEdge }
        if let maxShortEdge { target.maxShortEdge = maxShortEdge }
        if let maxPixels { target.maxPixels = maxPixels }
        if let maxBytes { target.maxBytes = maxBytes }
        if let format {
            guard let chosen = MediaFormat(rawValue: format == "jpg" ? "jpeg" : format.lowercased()) else {
                throw ValidationError("unknown format \(format)")
            }
            if !target.acceptedFormats.contains(chosen) && provider == nil { target.acceptedFormats = [chosen] }
            target.preferredFormat = chosen
        }
        target.keepMetadata = keepMetadata
        return target
    }
}

/// `prism media fit IMAGE|FOLDER... (--provider NAME | --max-…) (-o OUT | --out DIR)`: one image
/// to a file (or just the report), or many (folders walked for images) in parallel into a folder.
struct MediaFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit", abstract: "Fit images to a provider's limits: one, or many in parallel into a folder.")

    @Argument(help: "Images, and folders whose images (by file extension, subfolders included) are fitted.")
    var inputs: [String]
    @OptionGroup var targetOptions: ImageTargetOptions
    @Option(name: .shortAndLong, help: "Where to write the result of a single image.") var output: String?
    @Option(name: .customLong("out"), help: "Folder for the results: each image keeps its name (and its path under a folder given), with its new format's extension.")
    var outFolder: String?
    @Option(help: "Images fitted at once (default: the machine's cores).") var jobs: Int?
    @Flag(help: "Print JSON: the report of a single image as one document; with --out, one line per image.") var json = false

    func validate() throws {
        if output != nil && outFolder != nil { throw ValidationError("give -o FILE (one image) or --out DIR (many), not both") }
        if output != nil && inputs.count > 1 { throw ValidationError("-o writes one image; use --out DIR for \(inputs.count)") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        let target = try targetOptions.target()
        guard let outFolder else {
            guard inputs.count == 1, !MediaFitBatch.isFolder(inputs[0]) else {
                throw ValidationError("several images or a folder need --out DIR")
            }
            return try fitOne(inputs[0], target: target)
        }
        let items = try MediaFitBatch.collect(inputs, into: outFolder)
        let failed = MediaFitBatch(items: items, target: target, json: json).run(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        guard failed.isEmpty else {
            FileHandle.standardError.write(Data("prism media fit: \(failed.count) of \(items.count) images failed: \(failed.joined(separator: ", "))\n".utf8))
            throw ExitCode(1)
        }
    }

    private func fitOne(_ file: String, target: ImageTarget) throws {
        let bytes = try MediaIO.read(file)
        let fitted = try MediaIO.reporting {
            try ImageFitter.fit(bytes, declaredMime: MediaIO.mimeFromExtension(file), target: target)
        }
        if let output { try MediaIO.write(fitted.data, to: output) }
        if json { return try MediaIO.printJSON(fitted.report) }
        MediaIO.printReport(fitted.report)
    }
}
