// `prism media pages`: a PDF as a provider without PDF input gets it, page images plus page text.
import ArgumentParser
import Foundation
import PrismMedia

/// `prism media pages FILE.pdf [--dpi N | --provider NAME | --max-…] [--pages 1-3] -o DIR`
struct MediaPagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pages", abstract: "Render PDF pages to images and extract their text (page-001.png, page-001.txt, …).")

    @Argument(help: "The PDF.") var file: String
    @Option(help: "Render at this DPI (default: fill the target's limits, or 150 DPI without limits).") var dpi: Double?
    @Option(help: "Pages to render, 1-based: 3, 2-5 or 1,4,7 (default: all).") var pages: String?
    @OptionGroup var targetOptions: ImageTargetOptions
    @Option(name: .shortAndLong, help: "Folder for the page images and texts.") var output: String
    @OptionGroup var jsonOutput: JSONOption

    /// One --json line per page: its number, files, words of text and the image's fit report.
    struct PageLine: Encodable {
        let page: Int, image: String, text: String, words: Int
        let report: ImageFitReport
    }

    func run() throws {
        let pdf = try MediaIO.reporting { try PDFDocument(try MediaIO.read(file)) }
        let selected = try selection(pageCount: pdf.pageCount)
        let folder = try MediaIO.folder(output)
        let target = try targetOptions.target(default: ImageTarget(acceptedFormats: [.png, .jpeg]))
        if !jsonOutput.json { print("\(file): \(pdf.pageCount) pages") }
        for index in selected {
            let name = String(format: "page-%03d", index + 1)
            let text = try MediaIO.reporting { try pdf.text(page: index) }
            try MediaIO.write(Data(text.utf8), to: folder.appendingPathComponent(name + ".txt").path)
            let image = try MediaIO.reporting { try pdf.render(page: index, dpi: dpi, target: target) }
            let imagePath = folder.appendingPathComponent(name + "." + image.format.fileExtension).path
            try MediaIO.write(image.data, to: imagePath)
            if jsonOutput.json {
                try JSONOutput.value(PageLine(page: index + 1, image: imagePath, text: folder.appendingPathComponent(name + ".txt").path,
                                              words: text.split(whereSeparator: \.isWhitespace).count, report: image.report))
                continue
            }
            print("\(name): \(text.split(whereSeparator: \.isWhitespace).count) words of text")
            MediaIO.printReport(image.report, indent: "  ")
        }
    }

    private func selection(pageCount: Int) throws -> [Int] {
        guard let pages else { return Array(0 ..< pageCount) }
        var result: [Int] = []
        for part in pages.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = bounds.first ?? nil, let last = bounds.last ?? nil, bounds.count <= 2,
                  first >= 1, last >= first, last <= pageCount else {
                throw ValidationError("bad page selection \(part) for a \(pageCount)-page PDF")
            }
            result += (first - 1) ... (last - 1)
        }
        return result
    }
}
