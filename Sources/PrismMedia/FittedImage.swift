// The result of fitting an image: the bytes to send and a report of every decision, which the
// gateway passes on to the client (in `routed`) and the CLI prints.
import Foundation

/// An image made to fit an ``ImageTarget``.
public struct FittedImage: Sendable {
    /// The encoded image to send.
    public var data: Data
    /// What the fitter did, and what the result costs per vendor.
    public var report: ImageFitReport

    public var format: MediaFormat { report.format }
    public var width: Int { report.width }
    public var height: Int { report.height }
}

/// What the fitter found and did, in numbers a client can check.
public struct ImageFitReport: Sendable, Equatable, Codable {
    /// Format detected from the bytes.
    public var sniffedFormat: MediaFormat
    /// MIME type the client declared, if any.
    public var declaredMime: String?
    /// True when the declared type disagrees with the bytes (the bytes won).
    public var declaredMismatch: Bool
    /// Size of the input as displayed (after EXIF orientation), and its encoded size.
    public var originalWidth: Int
    public var originalHeight: Int
    public var originalBytes: Int
    /// Frames in the input (1 for still images) and whether the output kept the animation.
    public var frames: Int
    public var keptAnimation: Bool
    /// EXIF orientation that was applied (1 = none needed).
    public var orientation: Int
    /// Whether an alpha channel was flattened onto white for a format without one.
    public var flattenedAlpha: Bool
    /// Whether EXIF/XMP/IPTC/ICC metadata was removed (always, unless the target keeps it).
    public var strippedMetadata: Bool
    /// Output format, lossy quality (nil for lossless), size and bytes.
    public var format: MediaFormat
    public var quality: Int?
    public var width: Int
    public var height: Int
    public var bytes: Int
    /// How many encodes it took to meet the byte budget.
    public var encodeAttempts: Int
    /// Human-readable steps, in order ("shrink-on-load 5120×2880 → 1429×804", "jpeg q85: 180211 bytes").
    public var steps: [String]
    /// Input-token estimates of the result per vendor formula.
    public var tokens: ImageTokenEstimate
    /// Wall-clock milliseconds the fit took.
    public var milliseconds: Double

    /// Linear scale from the oriented input to the output.
    public var scale: Double { originalWidth > 0 ? Double(width) / Double(originalWidth) : 1 }
}
