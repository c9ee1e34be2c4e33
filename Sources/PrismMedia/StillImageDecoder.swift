// Decodes still images libvips may not read (BMP: its only libvips loader is ImageMagick, blocked
// as untrusted) with FFmpeg's image decoders, into a libvips image for the normal fitting path.
import CFFmpeg
import CPrismMedia
import CVips
import Foundation

/// One-frame decoding through FFmpeg's image pipe demuxers.
enum StillImageDecoder {
    /// Decodes the first frame of `bytes` at full size, RGB or RGBA 8-bit; the header is checked
    /// against the image limits before a pixel is decoded.
    static func decode(_ bytes: Data, format: MediaFormat, limits: MediaLimits) throws -> VipsImageRef {
        let demuxer: String
        switch format {
        case .bmp: demuxer = "bmp_pipe"
        default: throw MediaError.notSupported("FFmpeg still-image decoding of \(format.rawValue)")
        }
        // FFmpeg decodes the first frame while reading stream info, so the size is checked from
        // the BMP header here first: a header claiming 15,000 × 15,000 is refused before any allocation.
        let (width, height) = try bmpSize(bytes)
        try ImageFitter.checkSize(width: width, height: height, frames: 1, limits: limits)
        let input = try AVInput(bytes: bytes, probeBytes: limits.probeBytes, formatName: demuxer, kind: format)
        try input.findStreamInfo(kind: format)
        guard let index = input.bestStream(AVMEDIA_TYPE_VIDEO) else { throw MediaError.corrupt(format, detail: "no image") }
        let parameters = input.stream(index).pointee.codecpar.pointee
        try ImageFitter.checkSize(width: Int(parameters.width), height: Int(parameters.height), frames: 1, limits: limits)
        let decoder = try AVStreamDecoder(input: input, streamIndex: index, kind: format, maxPixels: limits.maxImagePixels)
        var image: VipsImageRef?
        try decoder.decodeAll(input: input, kind: format) { frame in
            image = try rgb(frame, format: format)
            return false
        }
        guard let image else { throw MediaError.corrupt(format, detail: "no image could be decoded") }
        return image
    }

    /// Width and height from a BMP's DIB header (OS/2 12-byte headers store them as 16 bits).
    static func bmpSize(_ bytes: Data) throws -> (Int, Int) {
        let b = [UInt8](bytes.prefix(26))
        guard b.count >= 26 else { throw MediaError.corrupt(.bmp, detail: "header truncated") }
        func le(_ offset: Int, _ count: Int) -> Int { (0 ..< count).reduce(0) { $0 | Int(b[offset + $1]) << (8 * $1) } }
        if le(14, 4) == 12 { return (le(18, 2), le(20, 2)) }
        let width = Int(Int32(truncatingIfNeeded: le(18, 4))), height = Int(Int32(truncatingIfNeeded: le(22, 4)))
        return (abs(width), abs(height)) // a negative height means top-down rows
    }

    private static func rgb(_ frame: UnsafeMutablePointer<AVFrame>, format: MediaFormat) throws -> VipsImageRef {
        let width = Int(frame.pointee.width), height = Int(frame.pointee.height)
        let descriptor = av_pix_fmt_desc_get(AVPixelFormat(rawValue: frame.pointee.format))
        let alpha = descriptor.map { $0.pointee.flags & UInt64(AV_PIX_FMT_FLAG_ALPHA) != 0 } ?? false
        let bands = alpha ? 4 : 3
        var pixels = [UInt8](repeating: 0, count: width * height * bands)
        var context: OpaquePointer?
        defer { sws_freeContext(context) }
        let target = alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24
        let rc = pixels.withUnsafeMutableBufferPointer {
            prism_sws_frame_to(&context, frame, Int32(width), Int32(height), target.rawValue, $0.baseAddress, Int32(width * bands))
        }
        guard rc > 0 else { throw MediaError.corrupt(format, detail: "converting pixels: \(avErrorText(rc))") }
        guard let image = pixels.withUnsafeBytes({ prism_vips_image_from_rgb($0.baseAddress, $0.count, Int32(width), Int32(height), Int32(bands)) }) else {
            throw MediaError.libraryFailure("wrapping pixels: \(Vips.takeError())")
        }
        return VipsImageRef(image)
    }
}
