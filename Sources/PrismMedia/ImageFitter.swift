// Fits an image to a target: sniff, check limits from the header, shrink-on-load with EXIF
// auto-orientation, convert to 8-bit sRGB, then encode under the byte budget (ImageEncoder).
import CPrismMedia
import CVips
import Foundation

/// Makes any accepted image fit what a provider takes, and says what it did.
///
/// Safe to call from any thread; each call is independent. Nothing is decoded before the header
/// has been checked against ``MediaLimits``, and large JPEG/WebP/HEIF inputs are decoded at a
/// reduced size directly (shrink-on-load), never at full size.
public enum ImageFitter {
    /// Fits `bytes` to `target`.
    ///
    /// - Parameters:
    ///   - declaredMime: the type the client claimed; compared with the bytes and reported, never trusted.
    /// - Throws: ``MediaError`` naming the limit or the reason (a `.limitExceeded(.imagePixels, …)` for a bomb).
    public static func fit(_ bytes: Data, declaredMime: String? = nil, target: ImageTarget,
                           limits: MediaLimits = .standard) throws -> FittedImage {
        let budget = TimeBudget(limit: .imageTime, seconds: limits.imageTimeBudget)
        guard bytes.count <= limits.maxImageInputBytes else {
            throw MediaError.limitExceeded(.imageInputBytes, actual: Int64(bytes.count), allowed: Int64(limits.maxImageInputBytes))
        }
        let verdict = MediaSniffer.verdict(bytes, declaredMime: declaredMime)
        try requireDecodableImage(verdict.format)
        try Vips.start()
        var steps: [String] = []
        if verdict.mismatch { steps.append("declared \(declaredMime ?? "") but the bytes are \(verdict.format.rawValue)") }

        return try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> FittedImage in
            // libvips reads the buffer lazily: it must stay alive until the last encode, so all
            // the work happens inside this closure.
            let base = raw.baseAddress!, length = raw.count
            // BMP has no trusted libvips loader: FFmpeg decodes it (uncompressed, so no shrink-on-load to miss).
            let bmp = verdict.format == .bmp ? try StillImageDecoder.decode(bytes, format: .bmp, limits: limits) : nil
            let header = try bmp ?? self.header(base, length, format: verdict.format)
            let frames = max(1, header.pageCount)
            let frameHeight = frames > 1 && header.pageHeight > 0 ? header.pageHeight : header.height
            try checkSize(width: header.width, height: frameHeight, frames: 1, limits: limits)

            let encoder = ImageEncoder(target: target, budget: budget)
            let canAnimate = !Set(target.encodableFormats).isDisjoint(with: [.gif, .webp]) && target.preferredFormat.map { [.gif, .webp].contains($0) } ?? true
            let keepAnimation = frames > 1 && [.gif, .webp].contains(verdict.format) && target.allowsAnimation && canAnimate
            if keepAnimation {
                guard frames <= limits.maxAnimationFrames else {
                    throw MediaError.limitExceeded(.animationFrames, actual: Int64(frames), allowed: Int64(limits.maxAnimationFrames))
                }
                try checkSize(width: header.width, height: frameHeight, frames: frames, limits: limits)
            } else if frames > 1 && [.gif, .webp].contains(verdict.format) {
                steps.append("first frame of \(frames)")
            }

            let (shownWidth, shownHeight) = header.orientationSwaps ? (frameHeight, header.width) : (header.width, frameHeight)
            let scale = min(1, target.scale(width: shownWidth, height: shownHeight))
            let boxWidth = max(1, Int((Double(shownWidth) * scale).rounded(.down)))
            let boxHeight = max(1, Int((Double(shownHeight) * scale).rounded(.down)))
            // fail_on=truncated: a cut-off JPEG is refused instead of sent half grey.
            let options = keepAnimation ? "fail_on=truncated,n=-1" : "fail_on=truncated"
            var image: VipsImageRef
            if let bmp {
                image = try Vips.make("resizing") { prism_vips_thumbnail_image(bmp.pointer, $0, Int32(boxWidth), Int32(boxHeight)) }.materialized()
            } else if !keepAnimation, header.hasAlpha, let opaque = try opaqueShrink(base, length, format: verdict.format, scale: scale,
                                                                               box: (boxWidth, boxHeight), budget: budget) {
                image = opaque
                steps.append("alpha channel is opaque (≥ \(EncodingPolicy.nearlyOpaqueAlpha)/255 everywhere): removed")
            } else {
                image = try decode(verdict.format, budget: budget) {
                    try Vips.make("decoding") { prism_vips_thumbnail_buffer(base, length, $0, Int32(boxWidth), Int32(boxHeight), options, 0) }
                }
            }
            if header.orientation != 1 { steps.append("auto-oriented (EXIF orientation \(header.orientation))") }
            steps.append(scale < 1 ? "shrink-on-load \(shownWidth)×\(shownHeight) → \(image.width)×\(image.height / (keepAnimation ? frames : 1))"
                                   : "kept size \(shownWidth)×\(shownHeight)")
            // libvips rounds to the nearest pixel; one more pass if that lands just over a limit.
            if !keepAnimation && !target.admits(width: image.width, height: image.height) {
                let source = image
                image = try Vips.make("resizing") {
                    prism_vips_thumbnail_image(source.pointer, $0, Int32(max(1, boxWidth - 1)), Int32(max(1, boxHeight - 1)))
                }.materialized()
            }
            image = try srgb8(image)

            let result = try encoder.encode(image, animated: keepAnimation)
            if result.flattenedAlpha { steps.append("flattened alpha onto white") }
            if !target.keepMetadata { steps.append("stripped metadata (EXIF, GPS, XMP, ICC)") }
            steps += result.steps
            let outHeight = keepAnimation ? result.height / frames : result.height
            let report = ImageFitReport(
                sniffedFormat: verdict.format, declaredMime: declaredMime, declaredMismatch: verdict.mismatch,
                originalWidth: shownWidth, originalHeight: shownHeight, originalBytes: bytes.count,
                frames: frames, keptAnimation: keepAnimation, orientation: header.orientation,
                flattenedAlpha: result.flattenedAlpha, strippedMetadata: !target.keepMetadata,
                format: result.format, quality: result.quality, width: result.width, height: outHeight,
                bytes: result.data.count, encodeAttempts: result.attempts, steps: steps,
                tokens: ImageTokenEstimate(width: result.width, height: outHeight),
                milliseconds: budget.elapsedSeconds * 1000)
            return FittedImage(data: result.data, report: report)
        }
    }

    /// Fast path for large images with an alpha channel and no shrink-on-load (PNG, TIFF, GIF).
    ///
    /// libvips' thumbnail premultiplies alpha in float at full size, which costs more than the
    /// decode itself; most such images (wallpapers, exports) have an alpha channel that is opaque
    /// everywhere. So: box-shrink by the integer part of the scale while decoding (uchar, streaming),
    /// look at the alpha of that small image, and if it is (nearly) opaque everywhere drop it (or
    /// composite onto white) and finish from there; averaging without premultiplying is then exact
    /// (or off by at most the few percent of transparency).
    /// Otherwise return nil and the caller takes the exact, premultiplied path.
    static func opaqueShrink(_ base: UnsafeRawPointer, _ length: Int, format: MediaFormat, scale: Double,
                             box: (Int, Int), budget: TimeBudget) throws -> VipsImageRef? {
        let factor = (1 / scale).rounded(.down)
        guard [.png, .tiff, .gif].contains(format), factor >= 2 else { return nil }
        let shrunk = try decode(format, budget: budget) {
            guard let lazy = prism_vips_header_from_buffer(base, length, "fail_on=truncated") else {
                throw MediaError.corrupt(format, detail: Vips.takeError())
            }
            let source = VipsImageRef(lazy)
            return try Vips.make("shrinking") { prism_vips_shrink(source.pointer, $0, factor) }
        }
        var minimum = 0.0
        guard prism_vips_band_min(shrunk.pointer, Int32(shrunk.bands - 1), &minimum) == 0 else {
            throw MediaError.libraryFailure("reading alpha: \(Vips.takeError())")
        }
        guard minimum >= Double(EncodingPolicy.nearlyOpaqueAlpha) else { return nil }
        // All 255: drop the band. Nearly opaque: composite onto white, which then changes little.
        let opaque = minimum >= 255
            ? try Vips.make("dropping alpha") { prism_vips_extract_bands(shrunk.pointer, $0, 0, Int32(shrunk.bands - 1)) }
            : try Vips.make("flattening alpha") { prism_vips_flatten_white(shrunk.pointer, $0) }
        return try Vips.make("resizing") { prism_vips_thumbnail_image(opaque.pointer, $0, Int32(box.0), Int32(box.1)) }.materialized()
    }

    /// Refuses what the image path cannot or must not decode, before libvips sees it.
    static func requireDecodableImage(_ format: MediaFormat) throws {
        switch format {
        case .jpeg, .png, .gif, .webp, .heic, .avif, .tiff:
            return
        case .bmp:
            return // through FFmpeg: libvips 8.14 reads BMP only with ImageMagick, which is blocked
        case .svg:
            throw MediaError.blockedDecoder(.svg, reason: "SVG renders through librsvg, which libvips marks untrusted")
        case .unknown:
            throw MediaError.unrecognizedFormat
        default:
            throw MediaError.wrongKind(format, expected: .image)
        }
    }

    /// Opens the header only: dimensions, frames and orientation, no pixels.
    static func header(_ base: UnsafeRawPointer, _ length: Int, format: MediaFormat) throws -> VipsImageRef {
        guard let image = prism_vips_header_from_buffer(base, length, "") else {
            throw MediaError.corrupt(format, detail: Vips.takeError())
        }
        return VipsImageRef(image)
    }

    /// Refuses sizes over the gateway's limits, from header numbers alone.
    static func checkSize(width: Int, height: Int, frames: Int, limits: MediaLimits) throws {
        let pixels = Int64(width) * Int64(height) * Int64(frames)
        guard pixels <= Int64(limits.maxImagePixels) else {
            throw MediaError.limitExceeded(.imagePixels, actual: pixels, allowed: Int64(limits.maxImagePixels))
        }
        let side = max(width, height)
        guard side <= limits.maxImageSide else {
            throw MediaError.limitExceeded(.imageSide, actual: Int64(side), allowed: Int64(limits.maxImageSide))
        }
    }

    /// Builds and renders a decode pipeline under the time budget; libvips' failures become
    /// `.corrupt` (the input is at fault) unless the budget ran out.
    static func decode(_ format: MediaFormat, budget: TimeBudget, _ build: () throws -> VipsImageRef) throws -> VipsImageRef {
        do {
            let lazy = try build()
            prism_vips_set_deadline(lazy.pointer, budget.glibDeadline)
            return try lazy.materialized()
        } catch let MediaError.libraryFailure(message) {
            try budget.check()
            throw MediaError.corrupt(format, detail: message)
        }
    }

    /// 8-bit sRGB (or 8-bit grey), whatever the source: 16-bit PNG, CMYK JPEG, Lab TIFF.
    static func srgb8(_ image: VipsImageRef) throws -> VipsImageRef {
        let interpretation = vips_image_get_interpretation(image.pointer)
        if vips_image_get_format(image.pointer) == VIPS_FORMAT_UCHAR,
           interpretation == VIPS_INTERPRETATION_sRGB || interpretation == VIPS_INTERPRETATION_B_W {
            return image
        }
        return try Vips.make("converting to sRGB") { prism_vips_to_srgb8(image.pointer, $0, 1) }.materialized()
    }
}
