// Shared plumbing of the `prism media` subcommands: reading and writing files, printing reports,
// parsing durations, and turning MediaError into a clear message and a failing exit code.
import ArgumentParser
import Foundation
import PrismMedia

enum MediaIO {
    static func read(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func write(_ data: Data, to path: String) throws {
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// A folder for several outputs, created if needed.
    static func folder(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The MIME type a file's extension claims, to compare with its bytes.
    static func mimeFromExtension(_ path: String) -> String? {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        let aliases = ["jpg": MediaFormat.jpeg, "jpeg": .jpeg, "tif": .tiff, "heif": .heic, "mkv": .matroska, "m4v": .mp4, "oga": .ogg]
        return (aliases[ext] ?? MediaFormat(rawValue: ext)).map(\.mimeType)
    }

    /// Runs a media operation; a MediaError becomes a one-line message and exit code 2.
    static func reporting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as MediaError {
            FileHandle.standardError.write(Data("prism media: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func tokens(_ t: ImageTokenEstimate) -> String {
        "anthropic \(t.anthropic), openai \(t.openaiHigh) (high) / \(t.openaiLow) (low), gemini \(t.gemini)"
    }

    static func printReport(_ r: ImageFitReport, indent: String = "") {
        let scale = String(format: "%.3f", r.scale)
        print("\(indent)\(r.sniffedFormat.rawValue) \(r.originalWidth)×\(r.originalHeight) (\(r.originalBytes) bytes) → "
            + "\(r.format.rawValue)\(r.quality.map { " q\($0)" } ?? "") \(r.width)×\(r.height) (\(r.bytes) bytes), scale \(scale), "
            + String(format: "%.0f ms", r.milliseconds))
        for step in r.steps { print("\(indent)  · \(step)") }
        print("\(indent)  tokens: \(tokens(r.tokens))")
    }

    /// "2s", "500ms", "1.5", "1m" → seconds.
    static func seconds(_ text: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return value * factor }
        }
        guard let value = Double(text) else { throw ValidationError("not a duration: \(text) (try 2s, 500ms, 1m)") }
        return value
    }
}
