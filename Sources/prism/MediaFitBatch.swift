// `prism media fit … --out DIR`: the images of many files and folders fitted in parallel (as many
// at once as cores, or --jobs), each written into the output folder, with one result line per image
// as it finishes (text or JSON) and the failed ones named at the end.
import ArgumentParser
import Foundation
import PrismMedia

/// One run over many images; `run` blocks until every image is done.
struct MediaFitBatch {
    /// An image to fit and where its result goes (the extension is the chosen format's).
    struct Item {
        let input: String
        /// The output path without extension: the folder, then the image's name (with its path
        /// under a folder argument).
        let outputStem: String
    }

    let items: [Item]
    let target: ImageTarget
    let json: Bool

    static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }

    /// The images named or found (recursively, by an image extension, hidden files skipped) in
    /// folders, in a stable order. Two that would write the same output are refused before any
    /// work, naming both; so is a folder with no image, or a path that does not exist.
    static func collect(_ inputs: [String], into folder: String) throws -> [Item] {
        _ = try MediaIO.folder(folder)
        var items: [Item] = []
        var taken: [String: String] = [:]
        func add(_ input: String, relative: String) throws {
            let stem = (folder as NSString).appendingPathComponent((relative as NSString).deletingPathExtension)
            if let first = taken[stem] {
                throw ValidationError("\(first) and \(input) would both be written as \(stem).*; fit them into different folders")
            }
            taken[stem] = input
            items.append(Item(input: input, outputStem: stem))
        }
        for input in inputs {
            guard FileManager.default.fileExists(atPath: input) else { throw ValidationError("no such file or folder: \(input)") }
            guard isFolder(input) else {
                try add(input, relative: (input as NSString).lastPathComponent)
                continue
            }
            let root = URL(fileURLWithPath: input, isDirectory: true).standardizedFileURL
            let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
            var found: [String] = []
            while let url = walker?.nextObject() as? URL {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,
                      MediaIO.mimeFromExtension(url.path)?.hasPrefix("image/") == true else { continue }
                found.append(String(url.standardizedFileURL.path.dropFirst(root.path.count + 1)))
            }
            guard !found.isEmpty else { throw ValidationError("folder \(input) holds no images (by file extension)") }
            for relative in found.sorted() {
                try add((input as NSString).appendingPathComponent(relative), relative: relative)
            }
        }
        return items
    }

    /// Fits every item with `jobs` worker threads; returns the inputs that failed, in input order.
    func run(jobs: Int) -> [String] {
        let progress = Progress(count: items.count)
        DispatchQueue.concurrentPerform(iterations: min(jobs, items.count)) { _ in
            while let index = progress.claim() {
                let line = fit(items[index])
                progress.finish(index, line: line.text, failed: line.failed)
            }
        }
        return progress.failures.map { items[$0].input }
    }

    /// One image: read, fit, write; the line that reports it.
    private func fit(_ item: Item) -> (text: String, failed: Bool) {
        let started = Date()
        do {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: item.input))
            let fitted = try ImageFitter.fit(bytes, declaredMime: MediaIO.mimeFromExtension(item.input), target: target)
            let r = fitted.report
            let output = item.outputStem + "." + (r.format == .jpeg ? "jpg" : r.format.rawValue)
            try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try MediaIO.write(fitted.data, to: output)
            if json { return (try JSONLine(input: item.input, output: output, report: r).text, false) }
            return ("ok \(item.input) → \(output): \(r.sniffedFormat.rawValue) \(r.originalWidth)×\(r.originalHeight) (\(r.originalBytes) bytes) → "
                + "\(r.format.rawValue)\(r.quality.map { " q\($0)" } ?? "") \(r.width)×\(r.height) (\(r.bytes) bytes), "
                + String(format: "%.0f ms", Date().timeIntervalSince(started) * 1000), false)
        } catch {
            let reason = (error as? MediaError).map { "\($0)" } ?? error.localizedDescription
            if json, let line = try? JSONLine(input: item.input, error: reason).text { return (line, true) }
            return ("FAILED \(item.input): \(reason)", true)
        }
    }

    /// One image's JSON line: input and output with the fit report, or input and error.
    private struct JSONLine: Encodable {
        let input: String
        var output: String?
        var report: ImageFitReport?
        var error: String?

        var text: String {
            get throws {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                return String(decoding: try encoder.encode(self), as: UTF8.self)
            }
        }
    }
}

/// The work queue and results of a run, shared by its worker threads: `lock` guards every
/// property, and each result line is printed under it so lines never interleave.
private final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let count: Int
    private var next = 0
    private var failed: [Int] = []

    init(count: Int) { self.count = count }

    /// The items that failed, in input order.
    var failures: [Int] { lock.withLock { failed.sorted() } }

    /// The next item to fit, or nil when all are taken.
    func claim() -> Int? {
        lock.withLock {
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }

    func finish(_ index: Int, line: String, failed: Bool) {
        lock.withLock {
            if failed { self.failed.append(index) }
            print(line)
            fflush(stdout)
        }
    }
}
