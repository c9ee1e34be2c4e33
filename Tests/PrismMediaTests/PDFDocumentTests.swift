// Behaviour of PDFDocument on PDFs written by the test (text pages with a correct or broken xref,
// an encrypted one, an oversized page box): text per page, rasters within targets, clear refusals.
import PrismMedia
import XCTest

/// Writes a minimal, valid PDF: one Helvetica text line per page, correct xref offsets unless `breakXref`.
func makePDF(pages: [String], mediaBox: (Int, Int) = (612, 792), breakXref: Bool = false, encrypt: Bool = false) -> Data {
    var objects: [String] = []
    let pageCount = pages.count
    // 1 catalog, 2 pages, 3 font, then (page, content) pairs.
    objects.append("<< /Type /Catalog /Pages 2 0 R >>")
    let kids = (0 ..< pageCount).map { "\(4 + 2 * $0) 0 R" }.joined(separator: " ")
    objects.append("<< /Type /Pages /Kids [\(kids)] /Count \(pageCount) >>")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for (i, text) in pages.enumerated() {
        let content = "BT /F1 24 Tf 72 700 Td (\(text)) Tj ET"
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 \(mediaBox.0) \(mediaBox.1)] /Resources << /Font << /F1 3 0 R >> >> /Contents \(5 + 2 * i) 0 R >>")
        objects.append("<< /Length \(content.utf8.count) >>\nstream\n\(content)\nendstream")
    }
    if encrypt {
        let filler = String(repeating: "A", count: 64)
        objects.append("<< /Filter /Standard /V 1 /R 2 /O <\(filler)> /U <\(filler)> /P -4 >>")
    }
    var pdf = "%PDF-1.4\n"
    var offsets: [Int] = []
    for (i, body) in objects.enumerated() {
        offsets.append(pdf.utf8.count)
        pdf += "\(i + 1) 0 obj\n\(body)\nendobj\n"
    }
    let xrefOffset = pdf.utf8.count
    pdf += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
    for offset in offsets {
        pdf += String(format: "%010d 00000 n \n", breakXref ? offset + 7 : offset)
    }
    let encryptEntry = encrypt ? " /Encrypt \(objects.count) 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]" : ""
    pdf += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R\(encryptEntry) >>\nstartxref\n\(breakXref ? xrefOffset + 13 : xrefOffset)\n%%EOF\n"
    return Data(pdf.utf8)
}

final class PDFDocumentTests: XCTestCase {
    func testPageCountTextAndRasterPerPage() throws {
        let pdf = try PDFDocument(makePDF(pages: ["Invoice number 4711", "Total due 99 EUR", "Thank you"]))
        XCTAssertEqual(pdf.pageCount, 3)
        let texts = try pdf.texts()
        XCTAssertEqual(texts.count, 3)
        XCTAssertTrue(texts[0].contains("Invoice number 4711"), texts[0])
        XCTAssertTrue(texts[1].contains("Total due 99 EUR"), texts[1])
        XCTAssertEqual(try pdf.texts(pages: 2 ..< 3).first?.contains("Thank you"), true)
        let size = try pdf.pageSize(0)
        XCTAssertEqual(size.width, 612, accuracy: 0.01)

        let page = try pdf.render(page: 1, target: .pixelBudget)
        // US Letter at Anthropic's 1.15 MP: rendered at ~110 DPI, not shrunk from 72 or cut from 600.
        XCTAssertLessThanOrEqual(page.width * page.height, 1_150_000)
        XCTAssertGreaterThan(page.width * page.height, 1_100_000)
        XCTAssertEqual(Double(page.width) / Double(page.height), 612.0 / 792.0, accuracy: 0.01)
        XCTAssertLessThanOrEqual(max(page.width, page.height), 1568)
        XCTAssertEqual(page.format, .png, "text pages are kept lossless when they fit")

        let fixed = try pdf.render(page: 0, dpi: 72, target: ImageTarget(acceptedFormats: [.jpeg]))
        XCTAssertEqual(fixed.width, 612)
        XCTAssertEqual(fixed.height, 792)
        XCTAssertEqual(fixed.format, .jpeg)

        // The raster is the page: mostly white, with dark glyphs where the text is.
        let f = try Fixtures()
        let file = try f.write(fixed.data, "page.jpg")
        XCTAssertGreaterThan(try f.pixel(file, 5, 5)[0], 240)
        let stats = try f.vips("min", file)
        XCTAssertLessThan(Double(stats.trimmingCharacters(in: .whitespacesAndNewlines))!, 60, "text must be drawn")

        XCTAssertThrowsError(try pdf.text(page: 3)) { error in
            guard case MediaError.invalidTarget = error else { return XCTFail("\(error)") }
        }
    }

    func testBrokenXrefIsRepairedOrRefusedButNeverCrashes() throws {
        // Offsets shifted and startxref wrong: poppler reconstructs the table by scanning objects.
        let pdf = try PDFDocument(makePDF(pages: ["Repaired page"], breakXref: true))
        XCTAssertEqual(pdf.pageCount, 1)
        XCTAssertTrue(try pdf.text(page: 0).contains("Repaired page"))

        // A header and nothing usable after it cannot be repaired.
        XCTAssertThrowsError(try PDFDocument(Data("%PDF-1.7\n1 0 obj << /Type /Catalog >>\n%%EOF".utf8))) { error in
            guard case MediaError.corrupt(.pdf, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testEncryptedPDFIsRefusedClearly() {
        XCTAssertThrowsError(try PDFDocument(makePDF(pages: ["secret"], encrypt: true))) { error in
            XCTAssertEqual(error as? MediaError, .encrypted)
        }
    }

    func testPDFLimitsAreNamed() throws {
        var limits = MediaLimits.standard
        limits.maxPDFPages = 2
        XCTAssertThrowsError(try PDFDocument(makePDF(pages: ["a", "b", "c"]), limits: limits)) { error in
            guard case MediaError.limitExceeded(.pdfPages, 3, 2) = error else { return XCTFail("\(error)") }
        }
        limits = .standard
        limits.maxPDFBytes = 100
        XCTAssertThrowsError(try PDFDocument(makePDF(pages: ["a"]), limits: limits)) { error in
            guard case MediaError.limitExceeded(.pdfBytes, _, 100) = error else { return XCTFail("\(error)") }
        }
        // A 200-inch square page at 300 DPI is 3.6 GP: refused before anything is rendered.
        let poster = try PDFDocument(makePDF(pages: ["big"], mediaBox: (14400, 14400)))
        XCTAssertThrowsError(try poster.render(page: 0, dpi: 300, target: .pixelBudget)) { error in
            guard case MediaError.limitExceeded(.pdfPagePixels, 3_600_000_000, _) = error else { return XCTFail("\(error)") }
        }
        // Fitting to a target picks a DPI that keeps the same page small.
        XCTAssertLessThanOrEqual(try poster.render(page: 0, target: .pixelBudget).width, 1568)
        XCTAssertThrowsError(try PDFDocument(Data("not a pdf at all".utf8)))
    }
}
