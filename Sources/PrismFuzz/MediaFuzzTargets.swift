// The fuzz target for the media core: sniffing, inspection and the image, PDF and audio
// fitting a request's media go through, on arbitrary bytes, with tight media limits on (so a
// bomb is refused by a limit, and a run stays fast).
import Foundation
import PrismMedia

enum MediaFuzzTargets {
    /// Limits far below the server's: the inputs are small, and a limit that is hit must be
    /// reported as a MediaError, never overrun.
    static let limits: MediaLimits = {
        var limits = MediaLimits()
        limits.maxImageInputBytes = 1 << 20
        limits.maxImagePixels = 4_000_000
        limits.maxImageSide = 4_096
        limits.maxAnimationFrames = 16
        limits.imageTimeBudget = 5
        limits.maxPDFBytes = 1 << 20
        limits.maxPDFPages = 8
        limits.maxPDFPagePixels = 2_000_000
        limits.pdfTimeBudget = 5
        limits.maxAudioInputBytes = 1 << 20
        limits.maxAudioSeconds = 30
        limits.audioTimeBudget = 5
        limits.maxVideoInputBytes = 1 << 20
        limits.maxVideoSeconds = 30
        return limits
    }()

    /// A small provider target, as a vision model states one.
    static let target = ImageTarget(maxLongEdge: 512, maxPixels: 200_000, maxBytes: 64 << 10)

    /// Option byte (which stage: inspect, fit an image, a PDF, decode audio), then the media bytes.
    /// Every stage must return or throw a MediaError; no crash, no limit overrun.
    static let media = FuzzTarget(name: "media", summary: "media sniffing, inspection, image/PDF/audio fitting with limits on") { raw in
        var input = FuzzInput(raw)
        let stage = input.byte()
        let bytes = Data(input.bytes)
        let format = MediaSniffer.sniff(bytes)
        switch stage % 4 {
        case 0:
            _ = MediaInspector.inspect(bytes, declaredMime: "image/png", limits: limits)
        case 1:
            if let fitted = try? ImageFitter.fit(bytes, target: target, limits: limits) {
                guard max(fitted.width, fitted.height) <= 512, fitted.width * fitted.height <= 200_000 else {
                    fuzzFailure("fitted \(format) image is \(fitted.width)x\(fitted.height), past the target")
                }
            }
        case 2:
            if let document = try? PDFDocument(bytes, limits: limits) {
                guard document.pageCount <= limits.maxPDFPages else {
                    fuzzFailure("PDF of \(document.pageCount) pages opened past the \(limits.maxPDFPages)-page limit")
                }
                _ = try? document.texts(pages: 0..<min(document.pageCount, 2))
                _ = try? document.render(page: 0, target: target)
            }
        default:
            if let audio = try? AudioDecoder.decode(bytes, to: .speech, limits: limits) {
                let seconds = Double(audio.pcm.count) / Double(PCMFormat.speech.bytesPerSecond)
                guard seconds <= limits.maxAudioSeconds + 1 else {
                    fuzzFailure("decoded \(seconds) s of \(format) audio past the \(limits.maxAudioSeconds) s limit")
                }
            }
        }
    }
}
