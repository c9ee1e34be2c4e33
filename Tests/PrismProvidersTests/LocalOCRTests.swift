// local/tesseract end to end with the real engine: text rendered by libvips (several fonts, a
// rotated scan, two columns, a PDF with no text layer) read back through Generate, with the
// character accuracy printed; an image without text; and OCR as an adaptation for a text-only model.
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class LocalOCRTests: XCTestCase {
    private var gateway: TestGateway!

    override func setUp() async throws {
        let folder = try Plugins.folder()
        try Plugins.install("libprism-plugin-tesseract.so", into: folder, as: "libprism-plugin-tesseract.so")
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        // local first, so the testkit's fake OCR model is never chosen.
        gateway = try await TestGateway(folder: folder) { $0.providerPreference = ["local"] }
    }

    override func tearDown() async throws {
        await gateway.stop()
    }

    static let pageText = ["Prism reads text from images", "The quick brown fox jumps over the lazy dog", "Invoice number 4217 due 2026"]

    /// Text rendered to PNG by libvips' own command-line tool.
    func rendered(_ text: String, font: String = "DejaVu Sans 28", rotate: Double = 0) throws -> Data {
        let dir = NSTemporaryDirectory() + "ocr-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func vips(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/vips")
            p.arguments = args
            try p.run(); p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw MissingPlugin(description: "vips \(args) failed") }
        }
        try vips(["text", "\(dir)/t.v", text, "--font", font, "--dpi", "150"])
        try vips(["invert", "\(dir)/t.v", "\(dir)/i.v"])                      // black text on white
        try vips(["embed", "\(dir)/i.v", "\(dir)/e.v", "40", "40", "2000", "600", "--extend", "white"])
        if rotate != 0 {
            try vips(["rotate", "\(dir)/e.v", "\(dir)/r.png", String(rotate), "--background", "255"])
            return try Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.png"))
        }
        try vips(["copy", "\(dir)/e.v", "\(dir)/out.png"])
        return try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out.png"))
    }

    func testOCRThroughGenerateRoutedToTesseract() async throws {
        let text = Self.pageText.joined(separator: "\n")
        for font in ["DejaVu Sans 24", "DejaVu Serif 32", "DejaVu Sans Mono 18"] {
            let png = try rendered(text, font: font)
            let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("").with(png, name: "page.png").routed(to: "local/tesseract"))
            XCTAssertEqual(status.code, .ok, status.message)
            let got = events.compactMap(\.text).joined()
            let accuracy = CharacterAccuracy.of(got, reference: text)
            print(String(format: "OCR character accuracy, %@: %.2f%%", font, accuracy * 100))
            XCTAssertGreaterThan(accuracy, 0.95, "\(font): '\(got)'")
        }
    }

    func testOCRReadsASlightlyRotatedPage() async throws {
        let text = Self.pageText.joined(separator: "\n")
        let png = try rendered(text, font: "DejaVu Sans 28", rotate: 3)
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("").with(png, name: "scan.png").routed(to: "local/tesseract"))
        XCTAssertEqual(status.code, .ok, status.message)
        let accuracy = CharacterAccuracy.of(events.compactMap(\.text).joined(), reference: text)
        print(String(format: "OCR character accuracy, page rotated 3°: %.2f%%", accuracy * 100))
        XCTAssertGreaterThan(accuracy, 0.9)
    }

    /// Runs the vips command-line tool with `args`, in `dir`.
    func vips(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/vips")
        p.arguments = args
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw MissingPlugin(description: "vips \(args) failed") }
    }

    func testOCRReadsATwoColumnPageColumnByColumn() async throws {
        let dir = NSTemporaryDirectory() + "ocr-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let left = (0..<10).map { "Left paragraph words number \($0) here" }, right = (0..<10).map { "Right side sentence \($0) goes on" }
        try vips(["text", "\(dir)/l.v", left.joined(separator: "\n"), "--font", "DejaVu Sans 16", "--dpi", "150"])
        try vips(["text", "\(dir)/r.v", right.joined(separator: "\n"), "--font", "DejaVu Sans 16", "--dpi", "150"])
        try vips(["arrayjoin", "\(dir)/l.v \(dir)/r.v", "\(dir)/two.v", "--shim", "600"])
        try vips(["invert", "\(dir)/two.v", "\(dir)/i.v"])
        try vips(["embed", "\(dir)/i.v", "\(dir)/page.png", "60", "60", "2400", "900", "--extend", "white"])
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/page.png"))
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("").with(png, name: "columns.png").routed(to: "local/tesseract"))
        XCTAssertEqual(status.code, .ok, status.message)
        let got = events.compactMap(\.text).joined()
        let accuracy = CharacterAccuracy.of(got, reference: (left + right).joined(separator: "\n"))
        print(String(format: "OCR character accuracy, two columns in reading order: %.2f%%", accuracy * 100))
        XCTAssertGreaterThan(accuracy, 0.95, got)
    }

    func testPDFWithoutATextLayerIsOCRed() async throws {
        let dir = NSTemporaryDirectory() + "ocr-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = Self.pageText.joined(separator: "\n")
        try Data(try rendered(text, font: "DejaVu Serif 26")).write(to: URL(fileURLWithPath: "\(dir)/page.png"))
        try vips(["colourspace", "\(dir)/page.png", "\(dir)/page.jpg[Q=90]", "b-w"])
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/page.jpg"))
        let pdf = TestPDF.scanned(jpeg: jpeg, width: 2000, height: 600)
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("").with(pdf, name: "scan.pdf").routed(to: "local/tesseract"))
        XCTAssertEqual(status.code, .ok, status.message)
        guard case let .routed(_, adaptations, _)? = events.first else { return XCTFail("no routed event") }
        XCTAssertTrue(adaptations.contains { $0.hasPrefix("pdf 'scan.pdf'→1 page images") }, "\(adaptations)")
        let accuracy = CharacterAccuracy.of(events.compactMap(\.text).joined(), reference: text)
        print(String(format: "OCR character accuracy, PDF without a text layer: %.2f%%", accuracy * 100))
        XCTAssertGreaterThan(accuracy, 0.9)
    }

    func testImageWithNoTextIsAnEmptyAnswer() async throws {
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("").with(TestMedia.png(width: 300, height: 200), name: "blank.png").routed(to: "local/tesseract"))
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(events.compactMap(\.text).joined().trimmingCharacters(in: .whitespacesAndNewlines), "")
    }

    func testImageToATextOnlyModelIsOCRedFirst() async throws {
        let png = try rendered("Prism reads text from images")
        let (events, status) = try await gateway.generateAll(GenerateRequestBuilder("what does it say?").with(png, name: "note.png").routed(to: "testkit/slow"))
        XCTAssertEqual(status.code, .ok, status.message)
        guard case let .routed(_, adaptations, _)? = events.first else { return XCTFail("no routed event: \(events)") }
        XCTAssertEqual(adaptations, ["image 'note.png'→text via local/tesseract"])
    }
}

/// 1 − (edit distance / reference length), on text with runs of whitespace made single spaces
/// (characters), or on word sequences (1 − word error rate).
enum CharacterAccuracy {
    static func of(_ text: String, reference: String) -> Double {
        func norm(_ s: String) -> [Character] { Array(s.split(whereSeparator: \.isWhitespace).joined(separator: " ")) }
        return of(words: norm(text), reference: norm(reference))
    }

    static func of<T: Equatable>(words a: [T], reference b: [T]) -> Double {
        guard !b.isEmpty else { return a.isEmpty ? 1 : 0 }
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...b.count {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return max(0, 1 - Double(a.isEmpty ? b.count : row[b.count]) / Double(b.count))
    }
}

/// A one-page PDF whose page is only a grayscale JPEG (a scan): no text layer at all.
enum TestPDF {
    static func scanned(jpeg: Data, width: Int, height: Int) -> Data {
        var pdf = Data("%PDF-1.4\n".utf8)
        var offsets: [Int] = []
        func object(_ body: Data) {
            offsets.append(pdf.count)
            pdf.append(Data("\(offsets.count) 0 obj\n".utf8)); pdf.append(body); pdf.append(Data("\nendobj\n".utf8))
        }
        let draw = Data("q \(width) 0 0 \(height) 0 0 cm /Im0 Do Q".utf8)
        object(Data("<< /Type /Catalog /Pages 2 0 R >>".utf8))
        object(Data("<< /Type /Pages /Kids [3 0 R] /Count 1 >>".utf8))
        object(Data("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 \(width) \(height)] /Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".utf8))
        object(Data("<< /Type /XObject /Subtype /Image /Width \(width) /Height \(height) /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode /Length \(jpeg.count) >>\nstream\n".utf8) + jpeg + Data("\nendstream".utf8))
        object(Data("<< /Length \(draw.count) >>\nstream\n".utf8) + draw + Data("\nendstream".utf8))
        let xref = pdf.count
        pdf.append(Data("xref\n0 \(offsets.count + 1)\n0000000000 65535 f \n".utf8))
        for offset in offsets { pdf.append(Data(String(format: "%010d 00000 n \n", offset).utf8)) }
        pdf.append(Data("trailer\n<< /Size \(offsets.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n".utf8))
        return pdf
    }
}
