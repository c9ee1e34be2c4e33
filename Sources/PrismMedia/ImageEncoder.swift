// The encode half of fitting: picks an output format the target accepts, then walks quality down
// and dimensions down until the byte budget is met. Works on a decoded, already size-fitted image.
import CPrismMedia
import CVips
import Foundation

/// Encodes a decoded image under a target's formats and byte budget.
struct ImageEncoder {
    struct Result {
        var data: Data
        var format: MediaFormat
        var quality: Int?
        var width: Int
        var height: Int
        var attempts: Int
        var flattenedAlpha: Bool
        var keptAnimation: Bool
        var steps: [String]
    }

    let target: ImageTarget
    let budget: TimeBudget

    private var strip: Bool { !target.keepMetadata }

    /// Output formats to try, best first, and why that order.
    ///
    /// Lossless comes first for transparency and for graphics (few colours: text, diagrams, UI),
    /// where PNG is sharper and usually smaller; photographs and renders go lossy first, whatever
    /// format they arrived in (a photo saved as PNG is still a photo).
    func candidateFormats(for image: VipsImageRef, animated: Bool) throws -> (formats: [MediaFormat], reason: String?) {
        let accepted = target.encodableFormats
        guard !accepted.isEmpty else {
            throw MediaError.invalidTarget("none of the accepted formats (\(target.acceptedFormats.map(\.rawValue))) can be written")
        }
        if let forced = target.preferredFormat {
            guard accepted.contains(forced) else {
                throw MediaError.invalidTarget("preferred format \(forced.rawValue) is not an accepted, writable format")
            }
            return ([forced], nil)
        }
        let order: [MediaFormat], reason: String
        if animated {
            (order, reason) = ([.webp, .gif, .png, .jpeg], "animation")
        } else if image.hasAlpha {
            (order, reason) = ([.png, .webp, .jpeg, .heic, .avif, .gif], "transparency: lossless first")
        } else if ImageContent.isGraphics(image) {
            (order, reason) = ([.png, .webp, .jpeg, .heic, .avif, .gif], "few colours (graphics): lossless first")
        } else {
            (order, reason) = ([.jpeg, .webp, .heic, .avif, .png, .gif], "photographic: lossy first")
        }
        return (order.filter(accepted.contains), reason)
    }

    static func isLossy(_ format: MediaFormat) -> Bool { [.jpeg, .webp, .heic, .avif].contains(format) }

    /// Encodes `image` (frames stacked vertically when `pageHeight` < height) to fit the budget.
    func encode(_ image: VipsImageRef, animated: Bool) throws -> Result {
        var steps: [String] = []
        var attempts = 0
        let (formats, reason) = try candidateFormats(for: image, animated: animated)
        if let reason { steps.append(reason) }
        let ladder = target.maxBytes == nil ? [EncodingPolicy.startQuality] : EncodingPolicy.qualityLadder
        var smallest: (bytes: Int, format: MediaFormat)?

        func attempt(_ source: VipsImageRef, _ format: MediaFormat, _ quality: Int?) throws -> Result? {
            try budget.check()
            attempts += 1
            let (data, flattened) = try write(source, format: format, quality: quality)
            let label = quality.map { "\(format.rawValue) q\($0)" } ?? format.rawValue
            steps.append("\(label) \(source.width)×\(source.height): \(data.count) bytes")
            if smallest == nil || data.count < smallest!.bytes { smallest = (data.count, format) }
            guard target.maxBytes.map({ data.count <= $0 }) ?? true else { return nil }
            return Result(data: data, format: format, quality: quality, width: source.width, height: source.height,
                          attempts: attempts, flattenedAlpha: flattened, keptAnimation: animated, steps: steps)
        }

        // 1. Each accepted format at the given size, lossy ones down the quality ladder.
        for format in formats {
            for quality in Self.isLossy(format) ? ladder.map(Optional.some) : [nil] {
                if let result = try attempt(image, format, quality) { return result }
            }
        }
        guard let maxBytes = target.maxBytes, let best = smallest else {
            throw MediaError.libraryFailure("no encoding attempted")
        }
        // 2. Smaller dimensions, in the format that came out smallest, until the budget is met.
        if animated {
            throw MediaError.limitExceeded(.targetBytes, actual: Int64(best.bytes), allowed: Int64(maxBytes))
        }
        var current = image
        var lastBytes = best.bytes
        let format = best.format
        for _ in 0 ..< EncodingPolicy.maxShrinkSteps {
            // Bytes grow roughly with pixel count: aim a little under what the ratio predicts.
            let factor = min(0.9, max(0.3, (Double(maxBytes) / Double(lastBytes)).squareRoot() * 0.9))
            let width = max(1, Int(Double(current.width) * factor)), height = max(1, Int(Double(current.height) * factor))
            current = try Vips.make("resizing to meet the byte budget") {
                prism_vips_thumbnail_image(current.pointer, $0, Int32(width), Int32(height))
            }.materialized()
            steps.append("shrink to \(current.width)×\(current.height) for the \(maxBytes)-byte budget")
            let quality = Self.isLossy(format) ? EncodingPolicy.shrinkQuality : nil
            if let result = try attempt(current, format, quality) { return result }
            lastBytes = smallest!.bytes
        }
        throw MediaError.limitExceeded(.targetBytes, actual: Int64(smallest!.bytes), allowed: Int64(maxBytes))
    }

    /// One encode; flattens alpha for formats that have none.
    private func write(_ image: VipsImageRef, format: MediaFormat, quality: Int?) throws -> (Data, Bool) {
        var source = image
        var flattened = false
        if format == .jpeg && image.hasAlpha {
            source = try Vips.make("flattening alpha") { prism_vips_flatten_white(image.pointer, $0) }
            flattened = true
        }
        let strip: Int32 = self.strip ? 1 : 0
        let q = Int32(quality ?? EncodingPolicy.startQuality)
        let data: Data
        switch format {
        case .jpeg: data = try Vips.save("jpeg encode") { prism_vips_jpegsave(source.pointer, $0, $1, q, strip) }
        case .png: data = try Vips.save("png encode") { prism_vips_pngsave(source.pointer, $0, $1, Int32(EncodingPolicy.pngCompression), 0, strip) }
        case .webp: data = try Vips.save("webp encode") { prism_vips_webpsave(source.pointer, $0, $1, q, 0, strip) }
        case .gif: data = try Vips.save("gif encode") { prism_vips_gifsave(source.pointer, $0, $1, strip) }
        case .heic: data = try Vips.save("heic encode") { prism_vips_heifsave(source.pointer, $0, $1, q, 0, strip) }
        case .avif: data = try Vips.save("avif encode") { prism_vips_heifsave(source.pointer, $0, $1, q, 1, strip) }
        default: throw MediaError.invalidTarget("\(format.rawValue) cannot be written")
        }
        return (data, flattened)
    }
}
