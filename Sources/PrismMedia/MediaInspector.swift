// Says what a file is without converting it: the sniffed format against the declared one, and
// dimensions, pages or duration from headers. Used by `prism media inspect` and by the planner.
import CVips
import Foundation

/// A description of an input, from headers only.
public struct MediaDescription: Sendable, Codable {
    public struct Image: Sendable, Codable {
        /// Size as displayed (EXIF orientation applied), frames, orientation and alpha.
        public var width: Int
        public var height: Int
        public var frames: Int
        public var orientation: Int
        public var hasAlpha: Bool
        public var tokens: ImageTokenEstimate
    }

    public struct Document: Sendable, Codable {
        public var pages: Int
        /// Size of the first page in points (1/72 inch).
        public var firstPageWidth: Double
        public var firstPageHeight: Double
    }

    public var verdict: Verdict
    public var bytes: Int
    public var image: Image?
    public var document: Document?
    public var audio: AudioInfo?
    public var video: VideoInfo?
    /// Why a detail is missing (a refusal by a limit, an encrypted PDF, a blocked decoder).
    public var problem: String?

    /// The sniffing verdict in a Codable form.
    public struct Verdict: Sendable, Codable {
        public var format: MediaFormat
        public var mimeType: String
        public var declaredMime: String?
        public var mismatch: Bool
    }
}

/// Header-level inspection of any supported input.
public enum MediaInspector {
    /// Describes `bytes`. Never throws for a bad input: what could not be read is in `problem`.
    public static func inspect(_ bytes: Data, declaredMime: String? = nil, limits: MediaLimits = .standard) -> MediaDescription {
        let verdict = MediaSniffer.verdict(bytes, declaredMime: declaredMime)
        var description = MediaDescription(
            verdict: .init(format: verdict.format, mimeType: verdict.format.mimeType, declaredMime: declaredMime, mismatch: verdict.mismatch),
            bytes: bytes.count)
        do {
            switch verdict.format.kind {
            case .image:
                let image = try image(bytes, verdict.format, limits)
                description.image = image
                // Described, but say that fitting would refuse it.
                try ImageFitter.checkSize(width: image.width, height: image.height, frames: 1, limits: limits)
            case .document:
                let pdf = try PDFDocument(bytes, limits: limits)
                let size = try pdf.pageSize(0)
                description.document = .init(pages: pdf.pageCount, firstPageWidth: size.width, firstPageHeight: size.height)
            case .audio:
                description.audio = try AudioDecoder.probe(bytes, limits: limits)
            case .video:
                // An .mp4 may hold only audio: describe whatever streams there are.
                description.audio = try? AudioDecoder.probe(bytes, limits: limits)
                do { description.video = try VideoSampler.probe(bytes, limits: limits) } catch MediaError.wrongKind {}
            case .unknown:
                throw MediaError.unrecognizedFormat
            }
        } catch {
            description.problem = "\(error)"
        }
        return description
    }

    static func image(_ bytes: Data, _ format: MediaFormat, _ limits: MediaLimits) throws -> MediaDescription.Image {
        try ImageFitter.requireDecodableImage(format)
        try Vips.start()
        return try bytes.withUnsafeBytes { raw in
            let header = try ImageFitter.header(raw.baseAddress!, raw.count, format: format)
            let frames = max(1, header.pageCount)
            let height = frames > 1 && header.pageHeight > 0 ? header.pageHeight : header.height
            let (w, h) = header.orientationSwaps ? (height, header.width) : (header.width, height)
            return .init(width: w, height: h, frames: frames, orientation: header.orientation, hasAlpha: header.hasAlpha,
                         tokens: ImageTokenEstimate(width: w, height: h))
        }
    }
}
