// Behaviour of VideoSampler on videos made with FFmpeg's lavfi sources (test pattern, solid
// colours with hard cuts, a tone as the audio track), and its limits.
import PrismMedia
import XCTest

final class VideoSamplerTests: XCTestCase {
    /// 10 s of test pattern at 320×240, 25 fps, H.264 + AAC tone, index at the front.
    func makeVideo(_ f: Fixtures, _ name: String = "v.mp4", seconds: Int = 10) throws -> Data {
        try f.ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=\(seconds)",
                     "-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)",
                     "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac",
                     "-movflags", "+faststart", "-shortest", f.path(name))
        return try f.data(name)
    }

    func testProbeUniformAndIntervalSampling() throws {
        let f = try Fixtures()
        let video = try makeVideo(f)
        XCTAssertEqual(MediaSniffer.sniff(video), .mp4)
        let info = try VideoSampler.probe(video)
        XCTAssertEqual(info.width, 320)
        XCTAssertEqual(info.codec, "h264")
        XCTAssertEqual(info.duration!, 10, accuracy: 0.1)
        XCTAssertEqual(info.frameRate!, 25, accuracy: 0.01)
        XCTAssertTrue(info.hasAudio)

        let uniform = try VideoSampler.sample(video, .uniform(count: 5))
        XCTAssertEqual(uniform.map(\.time), [1, 3, 5, 7, 9], accuracy: 0.05)
        for frame in uniform {
            XCTAssertEqual(frame.image.format, .jpeg)
            XCTAssertEqual(frame.image.width, 320)
            XCTAssertEqual(frame.image.height, 240)
            XCTAssertEqual(MediaSniffer.sniff(frame.image.data), .jpeg)
        }
        let every = try VideoSampler.sample(video, .every(seconds: 2), target: ImageTarget(maxLongEdge: 160, acceptedFormats: [.jpeg]))
        XCTAssertEqual(every.map(\.time), [0, 2, 4, 6, 8], accuracy: 0.05)
        XCTAssertTrue(every.allSatisfy { $0.image.width == 160 && $0.image.height == 120 })
        // Frames differ: the test pattern's counter moves.
        XCTAssertNotEqual(every[0].image.data, every[1].image.data)
    }

    func testSceneChangeFindsTheCuts() throws {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "color=red:size=160x120:rate=25:duration=2",
                     "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2",
                     "-f", "lavfi", "-i", "color=blue:size=160x120:rate=25:duration=2",
                     "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1[v]", "-map", "[v]",
                     "-c:v", "libvpx", "-b:v", "500k", f.path("cuts.webm"))
        let video = try f.data("cuts.webm")
        XCTAssertEqual(MediaSniffer.sniff(video), .webm)
        let frames = try VideoSampler.sample(video, .sceneChange(threshold: 0.15))
        XCTAssertEqual(frames.map(\.time), [0, 2, 4], accuracy: 0.05)
        XCTAssertNil(frames[0].sceneScore)
        XCTAssertGreaterThan(frames[1].sceneScore!, 0.15)
        // The first frame is the red one, the last the blue one.
        let first = try f.write(frames[0].image.data, "first.jpg"), last = try f.write(frames[2].image.data, "last.jpg")
        let red = try f.pixel(first, 80, 60), blue = try f.pixel(last, 80, 60)
        XCTAssertGreaterThan(red[0], 200); XCTAssertLessThan(red[2], 60)
        XCTAssertGreaterThan(blue[2], 200); XCTAssertLessThan(blue[0], 60)
    }

    func testAudioTrackExtractedForTranscription() throws {
        let f = try Fixtures()
        let audio = try VideoSampler.extractAudio(try makeVideo(f))
        XCTAssertEqual(audio.format, .speech)
        XCTAssertEqual(audio.duration, 10, accuracy: 0.1)
        XCTAssertEqual(crossingsPerSecond(audio), 880, accuracy: 15)
    }

    func testVideoLimitsAreNamed() throws {
        let f = try Fixtures()
        let video = try makeVideo(f)
        var limits = MediaLimits.standard
        limits.maxVideoFrames = 3
        XCTAssertThrowsError(try VideoSampler.sample(video, .uniform(count: 5), limits: limits)) { error in
            guard case MediaError.limitExceeded(.videoFrames, 5, 3) = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try VideoSampler.sample(video, .every(seconds: 1), limits: limits)) { error in
            guard case MediaError.limitExceeded(.videoFrames, 10, 3) = error else { return XCTFail("\(error)") }
        }
        limits = .standard
        limits.maxVideoSeconds = 5
        XCTAssertThrowsError(try VideoSampler.sample(video, .uniform(count: 2), limits: limits)) { error in
            guard case MediaError.limitExceeded(.videoSeconds, 10, 5) = error else { return XCTFail("\(error)") }
        }
        limits = .standard
        limits.maxVideoFramePixels = 10_000
        XCTAssertThrowsError(try VideoSampler.sample(video, .uniform(count: 2), limits: limits)) { error in
            guard case MediaError.limitExceeded(.videoFramePixels, 76_800, 10_000) = error else { return XCTFail("\(error)") }
        }
        limits = .standard
        limits.maxVideoInputBytes = 100
        XCTAssertThrowsError(try VideoSampler.sample(video, .uniform(count: 2), limits: limits)) { error in
            guard case MediaError.limitExceeded(.videoInputBytes, _, 100) = error else { return XCTFail("\(error)") }
        }
    }

    func testTruncatedAndWrongInput() throws {
        let f = try Fixtures()
        // Index at the end, file cut in half: there is no index to read.
        try f.ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=4", "-c:v", "libx264", "-preset", "ultrafast", f.path("tail.mp4"))
        let tail = try f.data("tail.mp4")
        XCTAssertThrowsError(try VideoSampler.sample(tail.prefix(tail.count / 2), .uniform(count: 2))) { error in
            guard case MediaError.corrupt = error else { return XCTFail("\(error)") }
        }
        // Audio only: no video stream to sample.
        try f.ffmpeg("-f", "lavfi", "-i", "sine=duration=1", f.path("a.wav"))
        XCTAssertThrowsError(try VideoSampler.sample(try f.data("a.wav"), .uniform(count: 1))) { error in
            XCTAssertEqual(error as? MediaError, .wrongKind(.wav, expected: .video))
        }
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
