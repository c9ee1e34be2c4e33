// Tells graphics from photographs by counting colours, so the fitter can send text, diagrams and
// UI as lossless PNG (sharper, usually smaller) and photographs and renders as JPEG/WebP.
import CPrismMedia
import CVips
import Foundation

enum ImageContent {
    /// Distinct colours up to which an image counts as graphics. Text and diagrams have a few
    /// hundred even after resampling; photographs and rendered wallpapers (the 5120×2880 plasma
    /// wallpapers fitted to 1.15 MP) have 8,500 to 460,000.
    static let graphicsColourLimit = 4096

    /// Whether `image` (8-bit, in memory) has few enough colours to be graphics.
    /// Stops counting as soon as the limit is passed, so a photograph costs a few rows.
    static func isGraphics(_ image: VipsImageRef) -> Bool {
        guard vips_image_get_format(image.pointer) == VIPS_FORMAT_UCHAR, let data = vips_image_get_data(image.pointer) else {
            return false
        }
        let bands = image.bands, pixels = image.width * image.height
        let bytes = data.assumingMemoryBound(to: UInt8.self)
        // One bit per 24-bit colour: 2 MiB, cleared per call.
        var seen = [UInt64](repeating: 0, count: 1 << 18)
        var count = 0
        for pixel in 0 ..< pixels {
            let p = bytes + pixel * bands
            // Grey (1–2 bands) or colour (3–4); alpha is ignored.
            let key = bands >= 3 ? Int(p[0]) << 16 | Int(p[1]) << 8 | Int(p[2]) : Int(p[0]) * 0x010101
            let word = key >> 6, bit = UInt64(1) << UInt64(key & 63)
            if seen[word] & bit == 0 {
                seen[word] |= bit
                count += 1
                if count > graphicsColourLimit { return false }
            }
        }
        return true
    }
}
