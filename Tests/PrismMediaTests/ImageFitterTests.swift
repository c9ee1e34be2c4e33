// Behaviour of ImageFitter on real images made by libvips/FFmpeg and on hostile ones built by hand:
// sizes and bytes land within targets, orientation and privacy are handled, bombs are refused.
@testable import PrismMedia
import XCTest

final class ImageFitterTests: XCTestCase {
    func testLargeJPEGFitsLongEdgeAndPixelBudget() throws {
        let f = try Fixtures()
        let file = try f.photoJPEG("photo.jpg", width: 5120, height: 2880)
        let fitted = try ImageFitter.fit(try f.data("photo.jpg"), declaredMime: "image/jpeg", target: .pixelBudget)
        let r = fitted.report
        XCTAssertEqual(r.format, .jpeg)
        XCTAssertLessThanOrEqual(max(r.width, r.height), 1568)
        XCTAssertLessThanOrEqual(r.width * r.height, 1_150_000)
        XCTAssertGreaterThan(r.width * r.height, 1_100_000, "should use most of the pixel budget")
        XCTAssertLessThanOrEqual(fitted.data.count, ImageTarget.pixelBudget.maxBytes!)
        XCTAssertEqual(r.originalWidth, 5120)
        XCTAssertEqual(r.originalHeight, 2880)
        XCTAssertFalse(r.declaredMismatch)
        XCTAssertEqual(r.tokens.anthropic, Int((Double(r.width * r.height) / 750).rounded(.up)))
        // The output is a real JPEG of the reported size.
        let out = try f.write(fitted.data, "out.jpg")
        let dims = try f.dimensions(out)
        XCTAssertEqual(dims.width, r.width)
        XCTAssertEqual(dims.height, r.height)
        XCTAssertEqual(MediaSniffer.sniff(fitted.data), .jpeg)
        _ = file
    }

    func testShortEdgeLimit() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 3000, height: 2000)
        let fitted = try ImageFitter.fit(try f.data("p.jpg"), target: .shortEdge)
        XCTAssertEqual(min(fitted.width, fitted.height), 768)
        XCTAssertEqual(max(fitted.width, fitted.height), 1152)
        XCTAssertEqual(fitted.report.tokens.openaiHigh, 85 + 170 * 6)
    }

    func testDeclaredMimeMismatchIsReportedNotTrusted() throws {
        let f = try Fixtures()
        try f.vips("black", f.path("b.png"), "64", "32")
        let fitted = try ImageFitter.fit(try f.data("b.png"), declaredMime: "image/jpeg", target: .pixelBudget)
        XCTAssertEqual(fitted.report.sniffedFormat, .png)
        XCTAssertTrue(fitted.report.declaredMismatch)
        XCTAssertEqual(fitted.format, .png, "a lossless source stays lossless when it fits")
        XCTAssertEqual(fitted.width, 64)
        XCTAssertTrue(fitted.report.steps.contains { $0.contains("declared image/jpeg") })
    }

    func testEXIFOrientationIsAppliedAndGPSNeverLeaves() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 400, height: 200)
        let withExif = jpegWithEXIF(try f.data("p.jpg"), orientation: 6)
        XCTAssertTrue(withExif.contains(ascii: "Exif"))
        try f.write(withExif, "exif.jpg")
        XCTAssertEqual(try f.header("orientation", f.path("exif.jpg")), "6")

        let fitted = try ImageFitter.fit(withExif, target: .pixelBudget)
        XCTAssertEqual(fitted.report.orientation, 6)
        XCTAssertEqual(fitted.width, 200, "orientation 6 turns a 400×200 image upright to 200×400")
        XCTAssertEqual(fitted.height, 400)
        XCTAssertFalse(fitted.data.contains(ascii: "Exif"), "EXIF (and its GPS IFD) must be stripped")
        XCTAssertTrue(fitted.report.strippedMetadata)

        var keep = ImageTarget.pixelBudget
        keep.keepMetadata = true
        let kept = try ImageFitter.fit(withExif, target: keep)
        XCTAssertTrue(kept.data.contains(ascii: "Exif"), "metadata stays only when asked")
    }

    func testAlphaIsFlattenedOntoWhiteForJPEGOnlyTarget() throws {
        let f = try Fixtures()
        // Four bands, all zero: fully transparent black.
        try f.vips("black", f.path("a.png"), "80", "60", "--bands", "4")
        let target = ImageTarget(acceptedFormats: [.jpeg])
        let fitted = try ImageFitter.fit(try f.data("a.png"), target: target)
        XCTAssertEqual(fitted.format, .jpeg)
        XCTAssertTrue(fitted.report.flattenedAlpha)
        let out = try f.write(fitted.data, "a.jpg")
        let pixel = try f.pixel(out, 40, 30)
        XCTAssertEqual(pixel.count, 3)
        XCTAssertTrue(pixel.allSatisfy { $0 > 250 }, "transparent pixels become white, got \(pixel)")
    }

    func testByteBudgetStepsQualityThenDimensions() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 2000, height: 1500, quality: 95)
        let data = try f.data("p.jpg")
        let budget = 60_000
        let fitted = try ImageFitter.fit(data, target: ImageTarget(maxLongEdge: 1568, maxBytes: budget, acceptedFormats: [.jpeg]))
        XCTAssertLessThanOrEqual(fitted.data.count, budget)
        XCTAssertGreaterThan(fitted.report.encodeAttempts, 1)
        XCTAssertLessThan(fitted.report.quality!, 85)
        // Noise does not compress to 60 kB at 1568 px at any quality: dimensions had to go down too.
        XCTAssertLessThan(fitted.width, 1568)
        XCTAssertTrue(fitted.report.steps.contains { $0.hasPrefix("shrink to") })

        XCTAssertThrowsError(try ImageFitter.fit(data, target: ImageTarget(maxBytes: 10, acceptedFormats: [.png]))) { error in
            guard case MediaError.limitExceeded(.targetBytes, _, 10) = error else { return XCTFail("\(error)") }
        }
    }

    func testAnimatedGIFFirstFrameOrKeptWhenAllowed() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1", f.path("anim.gif"))
        let gif = try f.data("anim.gif")
        XCTAssertEqual(MediaSniffer.sniff(gif), .gif)
        let still = try ImageFitter.fit(gif, target: .pixelBudget)
        XCTAssertEqual(still.report.frames, 5)
        XCTAssertFalse(still.report.keptAnimation)
        XCTAssertEqual(still.height, 48)

        var animated = ImageTarget(acceptedFormats: [.gif])
        animated.allowsAnimation = true
        let moving = try ImageFitter.fit(gif, target: animated)
        XCTAssertTrue(moving.report.keptAnimation)
        XCTAssertEqual(moving.format, .gif)
        XCTAssertEqual(moving.height, 48)
        let out = try f.write(moving.data, "out.gif")
        XCTAssertEqual(try f.header("n-pages", out), "5")
    }

    func testEveryStillFormatIsReadAndRewritten() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("src.jpg", width: 300, height: 200)
        let expectations: [(String, MediaFormat)] = [("png", .png), ("webp", .webp), ("tif", .tiff), ("heic", .heic), ("avif", .avif), ("gif", .gif)]
        for (ext, format) in expectations {
            try f.vips("copy", f.path("src.jpg"), f.path("src.\(ext)"))
            let data = try f.data("src.\(ext)")
            XCTAssertEqual(MediaSniffer.sniff(data), format, ext)
            let fitted = try ImageFitter.fit(data, target: .pixelBudget)
            XCTAssertEqual(fitted.width, 300, ext)
            XCTAssertTrue(ImageTarget.pixelBudget.acceptedFormats.contains(fitted.format), ext)
        }
        // Gemini takes HEIC itself; Anthropic does not, so HEIC turns into a photo format.
        XCTAssertEqual(try ImageFitter.fit(try f.data("src.heic"), target: ImageTarget(acceptedFormats: [.heic])).format, .heic)
        XCTAssertEqual(try ImageFitter.fit(try f.data("src.heic"), target: .pixelBudget).format, .jpeg)
    }

    func testBMPIsDecodedThroughFFmpegAndItsHeaderChecked() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "smptebars=size=320x240", "-frames:v", "1", f.path("t.bmp"))
        let bmp = try f.data("t.bmp")
        XCTAssertEqual(MediaSniffer.sniff(bmp), .bmp)
        let fitted = try ImageFitter.fit(bmp, declaredMime: "image/bmp", target: .pixelBudget)
        XCTAssertEqual(fitted.width, 320)
        XCTAssertEqual(fitted.height, 240)
        XCTAssertEqual(fitted.format, .png, "colour bars are graphics: kept lossless")
        // Header patched to claim 15,000 × 15,000 (225 MP): refused from the header.
        var bomb = [UInt8](bmp)
        for (offset, value) in [(18, 15_000), (22, 15_000)] {
            for i in 0 ..< 4 { bomb[offset + i] = UInt8(value >> (8 * i) & 0xFF) }
        }
        XCTAssertThrowsError(try ImageFitter.fit(Data(bomb), target: .pixelBudget)) { error in
            guard case MediaError.limitExceeded(.imagePixels, 225_000_000, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testGraphicsStayLosslessAndPhotosGoLossyWhateverTheirSourceFormat() throws {
        let f = try Fixtures()
        try f.vips("text", f.path("text.png"), "Quarterly report: revenue 4.2M, costs 3.1M", "--width", "1200", "--dpi", "150")
        let text = try ImageFitter.fit(try f.data("text.png"), target: .pixelBudget)
        XCTAssertEqual(text.format, .png)
        XCTAssertTrue(text.report.steps.contains { $0.contains("graphics") })
        // A photograph saved as PNG is still a photograph: it goes out as JPEG, far smaller.
        _ = try f.photoJPEG("photo.jpg", width: 2000, height: 1500)
        try f.vips("copy", f.path("photo.jpg"), f.path("photo.png"))
        let photo = try ImageFitter.fit(try f.data("photo.png"), target: .pixelBudget)
        XCTAssertEqual(photo.format, .jpeg)
        XCTAssertTrue(photo.report.steps.contains { $0.contains("photographic") })
        var pngOnly = ImageTarget.pixelBudget
        pngOnly.acceptedFormats = [.png]
        XCTAssertGreaterThan(try ImageFitter.fit(try f.data("photo.png"), target: pngOnly).data.count, photo.data.count * 2)
    }

    func testOpaqueAlphaIsDroppedAndRealAlphaKept() throws {
        let f = try Fixtures()
        // 4000×2000 RGBA: once with alpha 255 everywhere, once fully transparent.
        try f.vips("black", f.path("rgb.v"), "4000", "2000", "--bands", "3")
        try f.vips("linear", f.path("rgb.v"), f.path("grey.v"), "1", "128", "--uchar")
        try f.vips("bandjoin_const", f.path("grey.v"), f.path("opaque.png"), "255")
        try f.vips("bandjoin_const", f.path("grey.v"), f.path("clear.png"), "0")
        let opaque = try ImageFitter.fit(try f.data("opaque.png"), target: .pixelBudget)
        XCTAssertTrue(opaque.report.steps.contains { $0.contains("is opaque") }, "\(opaque.report.steps)")
        XCTAssertEqual(opaque.format, .png)
        XCTAssertLessThanOrEqual(opaque.width * opaque.height, 1_150_000)
        XCTAssertEqual(opaque.width, 1516)
        let opaqueFile = try f.write(opaque.data, "o.png")
        XCTAssertEqual(try f.dimensions(opaqueFile).bands, 3)
        XCTAssertEqual(try f.pixel(opaqueFile, 100, 100), [128, 128, 128])

        // Alpha 252 everywhere is composited onto white on the fast path: 128·252/255 + 255·3/255 ≈ 129.5.
        try f.vips("bandjoin_const", f.path("grey.v"), f.path("nearly.png"), "252")
        let nearly = try f.write(try ImageFitter.fit(try f.data("nearly.png"), target: .pixelBudget).data, "n.png")
        XCTAssertEqual(try f.dimensions(nearly).bands, 3)
        XCTAssertEqual(try f.pixel(nearly, 100, 100)[0], 129.5, accuracy: 1)

        let clear = try ImageFitter.fit(try f.data("clear.png"), target: .pixelBudget)
        XCTAssertFalse(clear.report.steps.contains { $0.contains("is opaque") })
        XCTAssertEqual(clear.width, 1516)
        XCTAssertEqual(try f.dimensions(try f.write(clear.data, "c.png")).bands, 4, "real transparency is kept in PNG")
    }

    // MARK: Hostile input

    func testPNGHeaderClaiming50000SquaredIsRefusedBeforeDecoding() throws {
        let bomb = pngHeaderOnly(width: 50_000, height: 50_000)
        XCTAssertEqual(MediaSniffer.sniff(bomb), .png)
        XCTAssertThrowsError(try ImageFitter.fit(bomb, target: .pixelBudget)) { error in
            guard case MediaError.limitExceeded(.imagePixels, 2_500_000_000, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("imagePixels"))
        }
        var limits = MediaLimits.standard
        limits.maxImageSide = 10_000
        XCTAssertThrowsError(try ImageFitter.fit(pngHeaderOnly(width: 20_000, height: 10), target: .pixelBudget, limits: limits)) { error in
            guard case MediaError.limitExceeded(.imageSide, 20_000, 10_000) = error else { return XCTFail("\(error)") }
        }
    }

    func testTruncatedJPEGIsRefusedAsCorrupt() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 800, height: 600)
        let whole = try f.data("p.jpg")
        let truncated = whole.prefix(whole.count * 6 / 10)
        XCTAssertThrowsError(try ImageFitter.fit(Data(truncated), target: .pixelBudget)) { error in
            guard case MediaError.corrupt(.jpeg, _) = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try ImageFitter.fit(Data(whole.prefix(100)), target: .pixelBudget)) { error in
            guard case MediaError.corrupt(.jpeg, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testInputBytesAndTimeLimitsAreNamed() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 2000, height: 1500)
        let data = try f.data("p.jpg")
        var limits = MediaLimits.standard
        limits.maxImageInputBytes = 1000
        XCTAssertThrowsError(try ImageFitter.fit(data, target: .pixelBudget, limits: limits)) { error in
            guard case MediaError.limitExceeded(.imageInputBytes, _, 1000) = error else { return XCTFail("\(error)") }
        }
        limits = .standard
        limits.imageTimeBudget = 0.000_001
        XCTAssertThrowsError(try ImageFitter.fit(data, target: .pixelBudget, limits: limits)) { error in
            guard case MediaError.limitExceeded(.imageTime, _, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testUntrustedAndUnknownFormatsAreRefused() throws {
        let svg = Data(#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#.utf8)
        XCTAssertEqual(MediaSniffer.sniff(svg), .svg)
        XCTAssertThrowsError(try ImageFitter.fit(svg, target: .pixelBudget)) { error in
            guard case MediaError.blockedDecoder(.svg, _) = error else { return XCTFail("\(error)") }
        }
        // Even past the sniffer, libvips itself refuses: its SVG loader is blocked as untrusted.
        try Vips.start()
        let blocked: Bool = svg.withUnsafeBytes { raw in
            (try? ImageFitter.header(raw.baseAddress!, raw.count, format: .svg)) == nil
        }
        XCTAssertTrue(blocked, "libvips opened an SVG: untrusted loaders are not blocked")
        XCTAssertThrowsError(try ImageFitter.fit(Data("hello, world".utf8), target: .pixelBudget)) { error in
            XCTAssertEqual(error as? MediaError, .unrecognizedFormat)
        }
        XCTAssertThrowsError(try ImageFitter.fit(Data("ID3\u{3}\0\0\0\0\0\0".utf8), target: .pixelBudget)) { error in
            XCTAssertEqual(error as? MediaError, .wrongKind(.mp3, expected: .image))
        }
    }

    func testTokenFormulasMatchVendorExamples() {
        XCTAssertEqual(ImageTokenEstimate(width: 1024, height: 1024).openaiHigh, 765)
        XCTAssertEqual(ImageTokenEstimate(width: 2048, height: 4096).openaiHigh, 1105)
        XCTAssertEqual(ImageTokenEstimate(width: 960, height: 540).gemini, 6 * 258)
        XCTAssertEqual(ImageTokenEstimate(width: 384, height: 300).gemini, 258)
        XCTAssertEqual(ImageTokenEstimate(width: 1000, height: 1000).anthropic, 1334)
        // Anthropic downsizes first: a 4000×4000 image costs what ~1072×1072 does.
        XCTAssertLessThanOrEqual(ImageTokenEstimate(width: 4000, height: 4000).anthropic, 1534)
    }
}

