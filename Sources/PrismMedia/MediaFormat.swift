// The formats PrismMedia can tell apart, with their MIME types and kinds; the vocabulary shared by
// the sniffer, the fitters, the targets and the reports.
import Foundation

/// What a format carries, which decides which part of PrismMedia handles it.
public enum MediaKind: String, Sendable, Equatable {
    case image, document, audio, video, unknown
}

/// A container or image format recognized from its bytes.
///
/// ISO-BMFF files (`.mp4`, `.m4a`, `.mov`) are told apart by brand, which is a claim, not proof:
/// an `.mp4` with only audio is still `mp4` here, and ``MediaInspector`` looks at the streams.
public enum MediaFormat: String, Sendable, Equatable, CaseIterable, Codable {
    case jpeg, png, gif, webp, heic, avif, tiff, bmp, svg
    case pdf
    case wav, mp3, flac, ogg, opus, m4a, aac, aiff
    case mp4, mov, webm, matroska, avi
    case unknown

    /// The MIME type providers expect for this format.
    public var mimeType: String {
        switch self {
        case .jpeg: return "image/jpeg"
        case .png: return "image/png"
        case .gif: return "image/gif"
        case .webp: return "image/webp"
        case .heic: return "image/heic"
        case .avif: return "image/avif"
        case .tiff: return "image/tiff"
        case .bmp: return "image/bmp"
        case .svg: return "image/svg+xml"
        case .pdf: return "application/pdf"
        case .wav: return "audio/wav"
        case .mp3: return "audio/mpeg"
        case .flac: return "audio/flac"
        case .ogg: return "audio/ogg"
        case .opus: return "audio/ogg; codecs=opus"
        case .m4a: return "audio/mp4"
        case .aac: return "audio/aac"
        case .aiff: return "audio/aiff"
        case .mp4: return "video/mp4"
        case .mov: return "video/quicktime"
        case .webm: return "video/webm"
        case .matroska: return "video/x-matroska"
        case .avi: return "video/x-msvideo"
        case .unknown: return "application/octet-stream"
        }
    }

    /// The usual file name extension (without the dot).
    public var fileExtension: String {
        switch self {
        case .jpeg: return "jpg"
        case .matroska: return "mkv"
        case .unknown: return "bin"
        default: return rawValue
        }
    }

    public var kind: MediaKind {
        switch self {
        case .jpeg, .png, .gif, .webp, .heic, .avif, .tiff, .bmp, .svg: return .image
        case .pdf: return .document
        case .wav, .mp3, .flac, .ogg, .opus, .m4a, .aac, .aiff: return .audio
        case .mp4, .mov, .webm, .matroska, .avi: return .video
        case .unknown: return .unknown
        }
    }

    /// The format a declared MIME type names (aliases included), or nil when it names none we know.
    public init?(mimeType: String) {
        // The part before any parameters, without the blanks around it, in lower case.
        let essence = mimeType.split(separator: ";", maxSplits: 1).first ?? ""
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let key = essence.firstIndex { !blank($0) }.map { essence[$0...essence.lastIndex { !blank($0) }!].lowercased() } ?? ""
        if let format = Self.aliases[key] {
            self = format
        } else if let format = MediaFormat.allCases.first(where: { $0 != .unknown && $0.mimeType == key }) {
            self = format
        } else {
            return nil
        }
    }

    /// Other names in use for the formats above.
    private static let aliases: [String: MediaFormat] = [
        "image/jpg": .jpeg, "image/pjpeg": .jpeg, "image/x-png": .png, "image/heif": .heic,
        "image/x-ms-bmp": .bmp, "image/x-bmp": .bmp, "image/tif": .tiff,
        "audio/x-wav": .wav, "audio/wave": .wav, "audio/vnd.wave": .wav, "audio/mp3": .mp3,
        "audio/x-flac": .flac, "audio/opus": .opus, "audio/x-m4a": .m4a, "audio/m4a": .m4a,
        "audio/aacp": .aac, "audio/x-aiff": .aiff, "audio/webm": .webm, "video/x-m4v": .mp4,
        "video/matroska": .matroska, "video/avi": .avi, "application/x-pdf": .pdf,
    ]
}
