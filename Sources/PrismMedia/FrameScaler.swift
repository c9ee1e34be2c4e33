// Scales decoded video frames with swscale: to RGB at the target size for encoding, and to a tiny
// grey thumbnail whose differences detect scene changes.
import CFFmpeg
import CPrismMedia
import CVips
import Foundation

/// Per-sampling scaler state (swscale contexts are reused across frames of the same size).
final class FrameScaler {
    /// The frame target, forced to JPEG when the target accepts it (frames are photographs).
    let target: ImageTarget
    let width: Int
    let height: Int
    private var rgbContext: OpaquePointer?
    private var greyContext: OpaquePointer?
    private var rgb: [UInt8] = []
    /// Size of the scene-change thumbnail: 16:9 and small enough to ignore noise and small motion.
    static let signatureWidth = 64, signatureHeight = 36

    init(info: VideoInfo, target: ImageTarget) {
        var target = target
        if target.preferredFormat == nil && target.acceptedFormats.contains(.jpeg) { target.preferredFormat = .jpeg }
        self.target = target
        let scale = min(1, target.scale(width: info.displayWidth, height: info.displayHeight))
        width = max(2, Int(Double(info.displayWidth) * scale))
        height = max(2, Int(Double(info.displayHeight) * scale))
    }

    deinit {
        sws_freeContext(rgbContext)
        sws_freeContext(greyContext)
    }

    /// The frame as an 8-bit sRGB libvips image at the target size.
    func image(_ frame: UnsafeMutablePointer<AVFrame>) throws -> VipsImageRef {
        let stride = width * 3
        if rgb.count != stride * height { rgb = [UInt8](repeating: 0, count: stride * height) }
        let rc = rgb.withUnsafeMutableBufferPointer {
            prism_sws_frame_to(&rgbContext, frame, Int32(width), Int32(height), AV_PIX_FMT_RGB24.rawValue, $0.baseAddress, Int32(stride))
        }
        guard rc > 0 else { throw MediaError.libraryFailure("scaling a frame: \(avErrorText(rc))") }
        guard let image = rgb.withUnsafeBytes({ prism_vips_image_from_rgb($0.baseAddress, $0.count, Int32(width), Int32(height), 3) }) else {
            throw MediaError.libraryFailure("wrapping a frame: \(Vips.takeError())")
        }
        return VipsImageRef(image)
    }

    /// A 64 × 36 grey thumbnail of the frame.
    func signature(_ frame: UnsafeMutablePointer<AVFrame>) throws -> [UInt8] {
        var grey = [UInt8](repeating: 0, count: Self.signatureWidth * Self.signatureHeight)
        let rc = grey.withUnsafeMutableBufferPointer {
            prism_sws_frame_to(&greyContext, frame, Int32(Self.signatureWidth), Int32(Self.signatureHeight),
                               AV_PIX_FMT_GRAY8.rawValue, $0.baseAddress, Int32(Self.signatureWidth))
        }
        guard rc > 0 else { throw MediaError.libraryFailure("scaling a frame: \(avErrorText(rc))") }
        return grey
    }

    /// Mean absolute difference of two signatures, 0 (same) ... 1 (black vs white).
    static func difference(_ a: [UInt8], _ b: [UInt8]) -> Double {
        var sum = 0
        for i in 0 ..< min(a.count, b.count) { sum += abs(Int(a[i]) - Int(b[i])) }
        return Double(sum) / Double(a.count * 255)
    }
}
