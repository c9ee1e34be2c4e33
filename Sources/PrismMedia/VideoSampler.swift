// Turns a video into what a provider without video input can take: frames sampled uniformly, every
// K seconds or at scene changes, each scaled and encoded under an image target; plus its audio track.
import CFFmpeg
import CPrismMedia
import CVips
import Foundation

/// How frames are picked from a video.
public enum FrameSampling: Sendable, Equatable {
    /// `count` frames spread evenly (the middle of each of `count` equal spans).
    case uniform(count: Int)
    /// One frame every `seconds`, starting at 0.
    case every(seconds: Double)
    /// The first frame and each frame that differs from the one before by more than `threshold`
    /// (mean absolute luma difference, 0...1, on a 64 × 36 thumbnail; 0.15 catches cuts, not motion).
    case sceneChange(threshold: Double)
}

/// What the container says about a video.
public struct VideoInfo: Sendable, Equatable, Codable {
    public var format: MediaFormat
    public var container: String
    public var codec: String
    /// Stored size, and the size it is shown at (non-square pixels applied).
    public var width: Int
    public var height: Int
    public var displayWidth: Int
    public var displayHeight: Int
    /// Seconds (nil when the container does not say), frames per second, audio present.
    public var duration: Double?
    public var frameRate: Double?
    public var hasAudio: Bool
}

/// One sampled frame.
public struct SampledFrame: Sendable {
    /// Seconds from the start of the video.
    public var time: Double
    /// The frame, encoded under the target (JPEG by default).
    public var image: FittedImage
    /// For scene sampling, how much it differs from the frame before (0...1).
    public var sceneScore: Double?
}

/// Frame sampling and audio extraction. Stateless; safe from any thread.
public enum VideoSampler {
    /// Frames for vision models: JPEG, long edge ≤ 768 (Gemini bills a 768-px tile per frame anyway).
    public static let defaultFrameTarget = ImageTarget(maxLongEdge: 768, maxBytes: 1_000_000, acceptedFormats: [.jpeg], preferredFormat: .jpeg)

    /// The container's description of the video, without decoding frames.
    public static func probe(_ bytes: Data, limits: MediaLimits = .standard) throws -> VideoInfo {
        let (input, format) = try open(bytes, limits: limits)
        return try describe(input, format: format).info
    }

    /// The audio track as PCM (16 kHz mono by default, for transcription).
    public static func extractAudio(_ bytes: Data, to output: PCMFormat = .speech, limits: MediaLimits = .standard) throws -> DecodedAudio {
        var audioLimits = limits
        audioLimits.maxAudioInputBytes = max(limits.maxAudioInputBytes, min(bytes.count, limits.maxVideoInputBytes))
        audioLimits.maxAudioSeconds = min(limits.maxAudioSeconds, limits.maxVideoSeconds)
        return try AudioDecoder.decode(bytes, to: output, limits: audioLimits)
    }

    /// Samples frames and encodes each under `target`.
    /// - Throws: `.limitExceeded(.videoSeconds / .videoFrames / .videoFramePixels / .videoTime)` naming the limit.
    public static func sample(_ bytes: Data, _ sampling: FrameSampling, target: ImageTarget = defaultFrameTarget,
                              limits: MediaLimits = .standard) throws -> [SampledFrame] {
        let budget = TimeBudget(limit: .videoTime, seconds: limits.videoTimeBudget)
        let (input, format) = try open(bytes, limits: limits)
        let (info, index) = try describe(input, format: format)
        if let duration = info.duration, duration > limits.maxVideoSeconds {
            throw MediaError.limitExceeded(.videoSeconds, actual: Int64(duration), allowed: Int64(limits.maxVideoSeconds))
        }
        let pixels = Int64(info.width) * Int64(info.height)
        guard pixels <= Int64(limits.maxVideoFramePixels) else {
            throw MediaError.limitExceeded(.videoFramePixels, actual: pixels, allowed: Int64(limits.maxVideoFramePixels))
        }
        try Vips.start()
        let decoder = try AVStreamDecoder(input: input, streamIndex: index, kind: format, maxPixels: limits.maxVideoFramePixels)
        let scaler = FrameScaler(info: info, target: target)
        let encoder = ImageEncoder(target: scaler.target, budget: budget)
        var frames: [SampledFrame] = []
        func keep(_ frame: UnsafeMutablePointer<AVFrame>, time: Double, score: Double?) throws {
            try budget.check()
            let image = try scaler.image(frame)
            let result = try encoder.encode(image, animated: false)
            let report = ImageFitReport(
                sniffedFormat: format, declaredMime: nil, declaredMismatch: false, originalWidth: info.displayWidth,
                originalHeight: info.displayHeight, originalBytes: bytes.count, frames: 1, keptAnimation: false, orientation: 1,
                flattenedAlpha: false, strippedMetadata: true, format: result.format, quality: result.quality,
                width: result.width, height: result.height, bytes: result.data.count, encodeAttempts: result.attempts,
                steps: ["frame at \(String(format: "%.3f", time)) s"] + result.steps,
                tokens: ImageTokenEstimate(width: result.width, height: result.height), milliseconds: budget.elapsedSeconds * 1000)
            frames.append(SampledFrame(time: time, image: FittedImage(data: result.data, report: report), sceneScore: score))
        }

        switch sampling {
        case let .uniform(count):
            guard count > 0 else { throw MediaError.invalidTarget("uniform sampling needs at least one frame") }
            guard let duration = info.duration else { throw MediaError.notSupported("uniform sampling of a video without a known duration") }
            try checkCount(count, limits)
            let times = (0 ..< count).map { (Double($0) + 0.5) * duration / Double(count) }
            try sampleAt(times, input: input, decoder: decoder, budget: budget, keep)
        case let .every(seconds):
            guard seconds > 0 else { throw MediaError.invalidTarget("sampling interval must be positive") }
            guard let duration = info.duration else { throw MediaError.notSupported("interval sampling of a video without a known duration") }
            let count = Int((duration / seconds).rounded(.up))
            try checkCount(count, limits)
            try sampleAt((0 ..< count).map { Double($0) * seconds }, input: input, decoder: decoder, budget: budget, keep)
        case let .sceneChange(threshold):
            var previous: [UInt8]?
            var decoded = 0
            try decoder.decodeAll(input: input, kind: format) { frame in
                decoded += 1
                if decoded % 32 == 0 { try budget.check() }
                let signature = try scaler.signature(frame)
                let score = previous.map { FrameScaler.difference($0, signature) }
                previous = signature
                if score == nil || score! > threshold {
                    try checkCount(frames.count + 1, limits)
                    try keep(frame, time: time(of: frame, decoder), score: score)
                }
                return true
            }
        }
        guard !frames.isEmpty else { throw MediaError.corrupt(format, detail: "no video frame could be decoded") }
        return frames
    }

    // MARK: Internals

    static func open(_ bytes: Data, limits: MediaLimits) throws -> (AVInput, MediaFormat) {
        guard bytes.count <= limits.maxVideoInputBytes else {
            throw MediaError.limitExceeded(.videoInputBytes, actual: Int64(bytes.count), allowed: Int64(limits.maxVideoInputBytes))
        }
        let format = MediaSniffer.sniff(bytes)
        switch format.kind {
        case .video, .audio: break // an .mp4 brand says nothing about its streams; the demuxer decides
        case .unknown: throw MediaError.unrecognizedFormat
        default: throw MediaError.wrongKind(format, expected: .video)
        }
        let input = try AVInput(bytes: bytes, probeBytes: limits.probeBytes, kind: format)
        try input.findStreamInfo(kind: format)
        return (input, format)
    }

    static func describe(_ input: AVInput, format: MediaFormat) throws -> (info: VideoInfo, stream: Int32) {
        guard let index = input.bestStream(AVMEDIA_TYPE_VIDEO) else { throw MediaError.wrongKind(format, expected: .video) }
        let stream = input.stream(index)
        let parameters = stream.pointee.codecpar.pointee
        let sar = parameters.sample_aspect_ratio
        let aspect = sar.num > 0 && sar.den > 0 ? Double(sar.num) / Double(sar.den) : 1
        let width = Int(parameters.width), height = Int(parameters.height)
        let rate = stream.pointee.avg_frame_rate
        var duration = input.containerDuration?.seconds
        if duration == nil, stream.pointee.duration > 0 {
            duration = Double(stream.pointee.duration) * Double(stream.pointee.time_base.num) / Double(stream.pointee.time_base.den)
        }
        let info = VideoInfo(format: format, container: input.formatName, codec: String(cString: avcodec_get_name(parameters.codec_id)),
                             width: width, height: height, displayWidth: Int((Double(width) * aspect).rounded()), displayHeight: height,
                             duration: duration, frameRate: rate.den > 0 && rate.num > 0 ? Double(rate.num) / Double(rate.den) : nil,
                             hasAudio: input.bestStream(AVMEDIA_TYPE_AUDIO) != nil)
        return (info, index)
    }

    static func checkCount(_ count: Int, _ limits: MediaLimits) throws {
        guard count <= limits.maxVideoFrames else {
            throw MediaError.limitExceeded(.videoFrames, actual: Int64(count), allowed: Int64(limits.maxVideoFrames))
        }
    }

    static func time(of frame: UnsafeMutablePointer<AVFrame>, _ decoder: AVStreamDecoder) -> Double {
        var pts = frame.pointee.best_effort_timestamp
        if pts == prism_av_nopts_value() { pts = frame.pointee.pts }
        if pts == prism_av_nopts_value() { return 0 }
        return Double(pts) * Double(decoder.timeBase.num) / Double(decoder.timeBase.den)
    }

    /// Decodes forward to each time in turn (seeking when the next one is far ahead), keeping the
    /// first frame at or after it.
    static func sampleAt(_ times: [Double], input: AVInput, decoder: AVStreamDecoder, budget: TimeBudget,
                         _ keep: (UnsafeMutablePointer<AVFrame>, Double, Double?) throws -> Void) throws {
        /// Beyond this gap, seeking to the keyframe before the next time beats decoding through.
        let seekGap = 5.0
        var next = 0
        var position = 0.0
        var decoded = 0
        while next < times.count {
            if times[next] - position > seekGap { _ = decoder.seek(input: input, to: times[next]) }
            var progressed = false
            try decoder.decodeAll(input: input, kind: .unknown) { frame in
                decoded += 1
                if decoded % 32 == 0 { try budget.check() }
                let t = time(of: frame, decoder)
                position = t
                progressed = true
                guard t + 0.0005 >= times[next] else { return true }
                try keep(frame, t, nil)
                next += 1
                while next < times.count && times[next] <= t { next += 1 }
                return next < times.count && times[next] - t <= seekGap
            }
            // The stream ended before the remaining times (a duration that overstated the video).
            if !progressed || next < times.count && times[next] - position <= seekGap { break }
        }
    }
}
