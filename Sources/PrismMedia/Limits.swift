// Every bound PrismMedia puts on hostile or merely huge input, in one place, each with the reason
// for its number. A refusal names the limit it hit (MediaError.limitExceeded), never a bare failure.
import Foundation

/// The limits that decide what PrismMedia will decode, rasterize or resample at all.
///
/// Provider limits (what a vendor accepts) are declared by the plugins and become ``ImageTarget``s; these are the
/// gateway's own limits, there to keep one request from taking the machine's memory or time.
/// Use ``standard`` unless a deployment has a reason to differ; tests lower them to provoke refusals.
public struct MediaLimits: Sendable, Equatable {
    // MARK: Images

    /// Encoded image bytes accepted at all. 50 MiB: a camera RAW-sized JPEG is ~30 MiB; larger is an abuse.
    public var maxImageInputBytes: Int = 50 * 1024 * 1024
    /// Decoded pixels (width × height × frames kept). 100 MP covers the largest consumer cameras;
    /// a 50,000 × 50,000 "decompression bomb" (2.5 GP, ~7.5 GB decoded) is refused from its header.
    public var maxImagePixels: Int = 100_000_000
    /// Longest side in pixels. 32,768: libvips and browsers handle it, panoramas stay under it.
    public var maxImageSide: Int = 32_768
    /// Frames of an animation kept when a target accepts animation; more are refused, not truncated.
    public var maxAnimationFrames: Int = 300
    /// Wall-clock seconds to fit one image. A 15 MP photo takes ~0.3 s here, so 20 s means "stuck".
    public var imageTimeBudget: Double = 20

    // MARK: PDFs

    /// PDF bytes. 100 MiB: twice Gemini's 50 MB document cap, so a fitted PDF always got a chance.
    public var maxPDFBytes: Int = 100 * 1024 * 1024
    /// Pages in one PDF. 1,000 is Gemini's limit and above Anthropic's 600.
    public var maxPDFPages: Int = 1_000
    /// Pixels of one rendered page. 40 MP = an A4 page at 600 DPI (~35 MP); a page box of
    /// 200 × 200 inches asked for at 300 DPI is refused before poppler allocates it.
    public var maxPDFPagePixels: Int = 40_000_000
    /// Wall-clock seconds for one PDF operation (text of all pages, or one page's raster).
    public var pdfTimeBudget: Double = 60

    // MARK: Audio

    /// Encoded audio bytes held in memory. 512 MiB is ~9 hours of 128 kbit/s MP3.
    public var maxAudioInputBytes: Int = 512 * 1024 * 1024
    /// Seconds of audio decoded. 9.5 h is Gemini's per-prompt maximum; more is not useful to anyone.
    public var maxAudioSeconds: Double = 9.5 * 3600
    /// Bytes buffered by a streaming decoder before the feeder must wait: bounded memory for
    /// audio arriving in chunks. 1 MiB is ~1 minute of 128 kbit/s MP3.
    public var streamingBufferBytes: Int = 1 * 1024 * 1024
    /// Bytes FFmpeg may read while guessing a container's layout. 5 MB is FFmpeg's own default.
    public var probeBytes: Int = 5_000_000
    /// Wall-clock seconds for one audio conversion (decoding runs at ~100× real time here).
    public var audioTimeBudget: Double = 600

    // MARK: Video

    /// Video bytes held in memory. 2 GiB: Gemini's Files API cap per file.
    public var maxVideoInputBytes: Int = 2 * 1024 * 1024 * 1024
    /// Seconds of video sampled. 3 h: longer videos should be cut by the client.
    public var maxVideoSeconds: Double = 3 * 3600
    /// Frames returned by one sampling. 256 × ~258 tokens is already ~66k tokens.
    public var maxVideoFrames: Int = 256
    /// Pixels of one decoded video frame. 8K UHD (33 MP) is the largest video anyone sends.
    public var maxVideoFramePixels: Int = 7680 * 4320
    /// Wall-clock seconds for one sampling pass.
    public var videoTimeBudget: Double = 600

    /// The limits PrismMedia uses unless told otherwise.
    public static let standard = MediaLimits()

    public init() {}
}

/// Names of the limits, so an error can say which one a request ran into.
public enum MediaLimit: String, Sendable, Equatable, CaseIterable {
    case imageInputBytes, imagePixels, imageSide, animationFrames, imageTime
    case pdfBytes, pdfPages, pdfPagePixels, pdfTime
    case audioInputBytes, audioSeconds, streamingBuffer, audioTime
    case videoInputBytes, videoSeconds, videoFrames, videoFramePixels, videoTime
    /// A target's own byte budget that no quality or size step could meet.
    case targetBytes

    /// The unit the numbers of a refusal are in.
    public var unit: String {
        switch self {
        case .imageInputBytes, .pdfBytes, .audioInputBytes, .streamingBuffer, .videoInputBytes, .targetBytes: return "bytes"
        case .imagePixels, .pdfPagePixels, .videoFramePixels, .imageSide: return "pixels"
        case .animationFrames, .videoFrames: return "frames"
        case .pdfPages: return "pages"
        case .audioSeconds, .videoSeconds: return "seconds"
        case .imageTime, .pdfTime, .audioTime, .videoTime: return "milliseconds"
        }
    }
}

/// Encoder settings that are policy, not limits against abuse: the ladders the fitter walks down
/// when a byte budget is missed.
enum EncodingPolicy {
    /// JPEG/WebP quality tried first: visually lossless for photos and models alike.
    static let startQuality = 85
    /// Quality steps tried before dimensions shrink; below 45 JPEG artefacts start to hurt OCR.
    static let qualityLadder = [85, 75, 65, 55, 45]
    /// Quality used once dimensions must shrink: the middle of the ladder.
    static let shrinkQuality = 65
    /// Shrink steps (each to ~90% of the size the byte ratio predicts) before giving up.
    static let maxShrinkSteps = 8
    /// Alpha at or above this everywhere (at most 2% see-through) counts as opaque: compositing onto
    /// white then moves no colour by more than 2%, and the image takes the fast, unpremultiplied path.
    static let nearlyOpaqueAlpha = 250
    /// PNG zlib level: 3 gives files ~20% larger than libpng's default 6 at under half its CPU
    /// (measured on a 1.15 MP photo: 0.08 s vs 0.18 s); a byte budget still steps formats and sizes.
    static let pngCompression = 3
}
