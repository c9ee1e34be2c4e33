// A PDF as the gateway needs it: page count and page sizes, the text layer per page (poppler-glib),
// and each page rendered to an image fitted to a target (libvips pdfload), all under PDF limits.
import CPoppler
import CPrismMedia
import CVips
import Foundation

/// An opened PDF. Open once, then ask for text and pages; each call is bounded by ``MediaLimits``.
///
/// Thread-safe: poppler documents are not, so calls are serialized on an internal lock.
/// Encrypted PDFs are refused with ``MediaError/encrypted``; damaged cross-reference tables are
/// repaired by poppler when it can, and refused as `.corrupt` when it cannot.
public final class PDFDocument: @unchecked Sendable {
    /// Number of pages.
    public let pageCount: Int
    /// The bytes, kept for libvips, which renders pages from them.
    public let data: Data

    private let document: OpaquePointer
    private let limits: MediaLimits
    private let lock = NSLock()

    /// Opens a PDF from memory.
    /// - Throws: `.limitExceeded(.pdfBytes / .pdfPages)`, `.encrypted`, `.corrupt(.pdf, …)`, `.wrongKind`.
    public init(_ bytes: Data, limits: MediaLimits = .standard) throws {
        guard bytes.count <= limits.maxPDFBytes else {
            throw MediaError.limitExceeded(.pdfBytes, actual: Int64(bytes.count), allowed: Int64(limits.maxPDFBytes))
        }
        let format = MediaSniffer.sniff(bytes)
        guard format == .pdf else {
            throw format == .unknown ? MediaError.unrecognizedFormat : MediaError.wrongKind(format, expected: .document)
        }
        let gbytes = bytes.withUnsafeBytes { g_bytes_new($0.baseAddress, gsize($0.count)) }
        defer { g_bytes_unref(gbytes) }
        var error: UnsafeMutablePointer<GError>?
        guard let document = poppler_document_new_from_bytes(gbytes, nil, &error) else {
            let code = error?.pointee.code ?? 0
            let message = error.map { String(cString: $0.pointee.message) } ?? "unreadable PDF"
            if error != nil { g_error_free(error) }
            if code == Int32(POPPLER_ERROR_ENCRYPTED.rawValue) { throw MediaError.encrypted }
            throw MediaError.corrupt(.pdf, detail: message)
        }
        let pages = Int(poppler_document_get_n_pages(document))
        guard pages <= limits.maxPDFPages else {
            g_object_unref(UnsafeMutableRawPointer(document))
            throw MediaError.limitExceeded(.pdfPages, actual: Int64(pages), allowed: Int64(limits.maxPDFPages))
        }
        guard pages > 0 else {
            g_object_unref(UnsafeMutableRawPointer(document))
            throw MediaError.corrupt(.pdf, detail: "no pages")
        }
        self.document = document
        self.pageCount = pages
        self.data = bytes
        self.limits = limits
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(document)) }

    /// Size of page `index` (0-based) in points (1/72 inch).
    public func pageSize(_ index: Int) throws -> (width: Double, height: Double) {
        try withPage(index) { page in
            var width = 0.0, height = 0.0
            poppler_page_get_size(page, &width, &height)
            return (width, height)
        }
    }

    /// The text layer of page `index` (0-based), in poppler's reading order; empty for scanned pages.
    public func text(page index: Int) throws -> String {
        try withPage(index) { page in
            guard let text = poppler_page_get_text(page) else { return "" }
            defer { g_free(text) }
            return String(cString: text)
        }
    }

    /// The text of each page in `pages` (0-based, default all), under the PDF time budget.
    public func texts(pages: Range<Int>? = nil) throws -> [String] {
        let range = try checked(pages)
        let budget = TimeBudget(limit: .pdfTime, seconds: limits.pdfTimeBudget)
        return try range.map { index in
            try budget.check()
            return try text(page: index)
        }
    }

    /// Renders page `index` (0-based) and fits it to `target`.
    ///
    /// With `dpi` nil the page is rendered at the resolution that fills the target's size limits
    /// (a vector page has no "original" size, so it may be rendered larger than 72 DPI); with no
    /// size limits, at ``defaultDPI``. The result's report says which DPI was used in `steps`.
    public func render(page index: Int, dpi: Double? = nil, target: ImageTarget) throws -> FittedImage {
        let budget = TimeBudget(limit: .pdfTime, seconds: limits.pdfTimeBudget)
        let points = try pageSize(index)
        let fill = target.fillScale(width: max(1, Int(points.width.rounded())), height: max(1, Int(points.height.rounded())))
        // Round the automatic DPI down a little so rounding up the pixel size stays within limits.
        let chosenDPI = dpi ?? fill.map { min(Self.maxAutoDPI, (72 * $0 * 0.999 * 10).rounded(.down) / 10) } ?? Self.defaultDPI
        let width = Int((points.width * chosenDPI / 72).rounded(.up)), height = Int((points.height * chosenDPI / 72).rounded(.up))
        let pixels = Int64(width) * Int64(height)
        guard pixels <= Int64(limits.maxPDFPagePixels) else {
            throw MediaError.limitExceeded(.pdfPagePixels, actual: pixels, allowed: Int64(limits.maxPDFPagePixels))
        }
        try Vips.start()
        // libvips renders with its own poppler document, so pages may render in parallel: no lock.
        let result: ImageEncoder.Result = try data.withUnsafeBytes { raw in
            var image = try ImageFitter.decode(.pdf, budget: budget) {
                try Vips.make("rendering page \(index + 1)") {
                    prism_vips_pdfload_page(raw.baseAddress!, raw.count, $0, Int32(index), chosenDPI)
                }
            }
            // pdfload gives RGBA on a white background: drop the (opaque) alpha.
            if image.hasAlpha { image = try Vips.make("flattening page") { prism_vips_flatten_white(image.pointer, $0) }.materialized() }
            image = try ImageFitter.srgb8(image)
            if !target.admits(width: image.width, height: image.height) {
                let scale = target.scale(width: image.width, height: image.height)
                let source = image
                image = try Vips.make("fitting page") {
                    prism_vips_thumbnail_image(source.pointer, $0, Int32(max(1, Double(source.width) * scale)), Int32(max(1, Double(source.height) * scale)))
                }.materialized()
            }
            let encoder = ImageEncoder(target: target, budget: budget)
            return try encoder.encode(image, animated: false)
        }
        let steps = ["page \(index + 1) of \(pageCount) rendered at \(String(format: "%.1f", chosenDPI)) DPI (\(width)×\(height))"] + result.steps
        let report = ImageFitReport(
            sniffedFormat: .pdf, declaredMime: nil, declaredMismatch: false,
            originalWidth: width, originalHeight: height, originalBytes: data.count, frames: 1, keptAnimation: false,
            orientation: 1, flattenedAlpha: false, strippedMetadata: true, format: result.format, quality: result.quality,
            width: result.width, height: result.height, bytes: result.data.count, encodeAttempts: result.attempts,
            steps: steps, tokens: ImageTokenEstimate(width: result.width, height: result.height),
            milliseconds: budget.elapsedSeconds * 1000)
        return FittedImage(data: result.data, report: report)
    }

    /// Resolution used when neither a DPI nor a size limit is given: legible text, ~1275×1650 for US Letter.
    public static let defaultDPI = 150.0
    /// Highest DPI chosen automatically to fill a target (a tiny page must not become a poster).
    static let maxAutoDPI = 600.0

    private func checked(_ pages: Range<Int>?) throws -> Range<Int> {
        let range = pages ?? 0 ..< pageCount
        guard range.lowerBound >= 0, range.upperBound <= pageCount else {
            throw MediaError.invalidTarget("pages \(range.lowerBound + 1)...\(range.upperBound) of a \(pageCount)-page PDF")
        }
        return range
    }

    private func withPage<T>(_ index: Int, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard (0 ..< pageCount).contains(index) else {
            throw MediaError.invalidTarget("page \(index + 1) of a \(pageCount)-page PDF")
        }
        return try lock.withLock {
            guard let page = poppler_document_get_page(document, Int32(index)) else {
                throw MediaError.corrupt(.pdf, detail: "page \(index + 1) cannot be read")
            }
            defer { g_object_unref(UnsafeMutableRawPointer(page)) }
            return try body(page)
        }
    }
}
