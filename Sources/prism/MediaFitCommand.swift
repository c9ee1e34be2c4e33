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

/// `prism media fit FILE (--provider NAME | --max-… ) -o OUT`
struct MediaFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fit", abstract: "Fit an image to a provider's limits.")

    @Argument(help: "The image to fit.") var file: String
    @OptionGroup var targetOptions: ImageTargetOptions
    @Option(name: .shortAndLong, help: "Where to write the result.") var output: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let bytes = try MediaIO.read(file)
        let fitted = try MediaIO.reporting {
            try ImageFitter.fit(bytes, declaredMime: MediaIO.mimeFromExtension(file), target: try targetOptions.target())
        }
        if let output { try MediaIO.write(fitted.data, to: output) }
        if json { return try MediaIO.printJSON(fitted.report) }
        MediaIO.printReport(fitted.report)
    }
}
