// What a receiver of an image accepts (sizes, bytes, formats). Vendors' limits are not kept here:
// each provider plugin declares its own, and PrismProviders turns them into a target per model.
import Foundation

/// The limits and formats an image must be fitted to before it is sent somewhere.
///
/// Every size limit is optional; `nil` means "no limit of that kind". The fitter never upsizes.
public struct ImageTarget: Sendable, Equatable {
    /// Longest side in pixels.
    public var maxLongEdge: Int?
    /// Shortest side in pixels (OpenAI scales the short side down to 768 before tiling, so more is waste).
    public var maxShortEdge: Int?
    /// Width × height.
    public var maxPixels: Int?
    /// Encoded bytes of the result.
    public var maxBytes: Int?
    /// Formats the receiver takes, most preferred first. Only jpeg, png, webp, gif, heic and avif can be produced.
    public var acceptedFormats: [MediaFormat]
    /// Whether an animation may stay animated (otherwise its first frame is sent).
    public var allowsAnimation: Bool
    /// Keep EXIF/XMP/ICC metadata. Off by default: GPS coordinates must not leave the gateway unless asked.
    public var keepMetadata: Bool
    /// Forces one output format (must be in `acceptedFormats`); nil lets the fitter choose per image.
    public var preferredFormat: MediaFormat?

    public init(maxLongEdge: Int? = nil, maxShortEdge: Int? = nil, maxPixels: Int? = nil, maxBytes: Int? = nil,
                acceptedFormats: [MediaFormat] = [.jpeg, .png, .webp], allowsAnimation: Bool = false,
                keepMetadata: Bool = false, preferredFormat: MediaFormat? = nil) {
        self.maxLongEdge = maxLongEdge
        self.maxShortEdge = maxShortEdge
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
        self.acceptedFormats = acceptedFormats
        self.allowsAnimation = allowsAnimation
        self.keepMetadata = keepMetadata
        self.preferredFormat = preferredFormat
    }

    /// The formats the fitter can write, in the target's order.
    var encodableFormats: [MediaFormat] {
        acceptedFormats.filter { [.jpeg, .png, .webp, .gif, .heic, .avif].contains($0) }
    }

    /// The scale (≤ 1) that brings `width` × `height` within the size limits.
    func scale(width: Int, height: Int) -> Double {
        let long = Double(max(width, height)), short = Double(min(width, height))
        var scale = 1.0
        if let maxLongEdge { scale = min(scale, Double(maxLongEdge) / long) }
        if let maxShortEdge { scale = min(scale, Double(maxShortEdge) / short) }
        if let maxPixels { scale = min(scale, (Double(maxPixels) / (Double(width) * Double(height))).squareRoot()) }
        return scale
    }

    /// The scale (may be > 1) at which `width` × `height` just fills the size limits, or nil when
    /// the target has none; for vector sources such as PDF pages, which have no natural pixel size.
    func fillScale(width: Int, height: Int) -> Double? {
        guard maxLongEdge != nil || maxShortEdge != nil || maxPixels != nil else { return nil }
        let long = Double(max(width, height)), short = Double(min(width, height))
        var scale = Double.infinity
        if let maxLongEdge { scale = min(scale, Double(maxLongEdge) / long) }
        if let maxShortEdge { scale = min(scale, Double(maxShortEdge) / short) }
        if let maxPixels { scale = min(scale, (Double(maxPixels) / (Double(width) * Double(height))).squareRoot()) }
        return scale
    }

    /// Whether `width` × `height` is within every size limit.
    func admits(width: Int, height: Int) -> Bool {
        let long = max(width, height), short = min(width, height)
        return (maxLongEdge.map { long <= $0 } ?? true) && (maxShortEdge.map { short <= $0 } ?? true)
            && (maxPixels.map { width * height <= $0 } ?? true)
    }
}
