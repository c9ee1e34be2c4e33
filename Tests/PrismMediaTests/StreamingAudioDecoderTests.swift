// StreamingAudioDecoder fed from a task (its hand-off's non-blocking mode): a slow decoder holds
// the task back and lets it go on, a task cancelled while it waits cancels the decoding, and a
// decoder that fails mid-stream refuses the rest with its own error.
import Foundation
import PrismMedia
import XCTest

final class StreamingAudioDecoderTests: XCTestCase {
    /// The buffer under test: small next to the MP3s below, so that feeding them must wait.
    private static let bufferBytes = 16 * 1024

    private var limits: MediaLimits {
        var limits = MediaLimits.standard
        limits.streamingBufferBytes = Self.bufferBytes
        return limits
    }

    private func mp3(seconds: Int) throws -> (Fixtures, Data) {
        let f = try Fixtures()
        try f.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)", "-c:a", "libmp3lame", f.path("long.mp3"))
        return (f, try f.data("long.mp3"))
    }

    /// Feeds `bytes` in 1000-byte messages from a task, counting what was taken, then finishes.
    private func feeder(_ decoder: StreamingAudioDecoder, _ bytes: Data, fed: Counter) -> Task<StreamingAudioDecoder.Summary, Error> {
        Task {
            var offset = 0
            while offset < bytes.count {
                let size = min(bytes.count - offset, 1000)
                try await decoder.feed(bytes.subdata(in: offset ..< offset + size))
                offset += size
                fed.set(offset)
            }
            return try await decoder.finish()
        }
    }

    /// Waits up to `seconds` for the feeder to take everything, which it must not while the
    /// decoder is held (a broken hand-off takes it all at once, a working one never does).
    private func feedsEverything(_ fed: Counter, _ total: Int, within seconds: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while fed.value < total && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        return fed.value >= total
    }

    func testAFeedingTaskWaitsForASlowDecoderAndGetsTheSameSamples() async throws {
        let (_, bytes) = try mp3(seconds: 60)
        let reached = expectation(description: "the decoder produced its first PCM")
        let release = DispatchSemaphore(value: 0)
        let first = Counter()
        let pcm = Collected()
        let decoder = StreamingAudioDecoder(output: .speech, limits: limits) { chunk in
            // The decoder's thread stops at its first PCM until the test lets it go.
            if first.increment() == 1 {
                reached.fulfill()
                release.wait()
            }
            pcm.append(chunk)
        }
        let fed = Counter()
        let feeding = feeder(decoder, bytes, fed: fed)
        await fulfillment(of: [reached], timeout: 60)
        let heldAll = try await feedsEverything(fed, bytes.count, within: 0.5)
        // What FFmpeg read before its first PCM (its probe and a 64 KiB I/O buffer) plus the
        // hand-off's 16 KiB: far less than the ~480 KB of the file.
        XCTAssertFalse(heldAll, "the task fed all \(bytes.count) bytes to a decoder that was not reading")
        XCTAssertLessThan(fed.value, bytes.count / 2)
        release.signal()
        let summary = try await feeding.value
        XCTAssertEqual(fed.value, bytes.count)
        XCTAssertEqual(summary.duration, 60, accuracy: 0.1)
        XCTAssertLessThanOrEqual(summary.peakBufferedBytes, Self.bufferBytes)
        let whole = try AudioDecoder.decode(bytes, to: .speech)
        let streamed = pcm.data
        // As in AudioTests: a stream may carry a few ms more at the end (no Xing header without seeking).
        XCTAssertEqual(Double(streamed.count), Double(whole.pcm.count), accuracy: 0.05 * 32_000)
        let common = min(streamed.count, whole.pcm.count) - 3_200
        XCTAssertEqual(streamed.prefix(common), whole.pcm.prefix(common), "fed from a task or whole, the same samples")
    }

    func testATaskCancelledWhileWaitingForRoomCancelsTheDecoding() async throws {
        let (_, bytes) = try mp3(seconds: 20)
        let reached = expectation(description: "the decoder produced its first PCM")
        let release = DispatchSemaphore(value: 0)
        let first = Counter()
        let decoder = StreamingAudioDecoder(output: .speech, limits: limits) { _ in
            if first.increment() == 1 {
                reached.fulfill()
                release.wait()
            }
        }
        let fed = Counter()
        let feeding = feeder(decoder, bytes, fed: fed)
        await fulfillment(of: [reached], timeout: 60)
        guard try await !feedsEverything(fed, bytes.count, within: 0.5) else {
            release.signal()
            return XCTFail("the task fed all \(bytes.count) bytes to a decoder that was not reading")
        }
        // The task waits for room in the hand-off; cancelling it must end that wait, not leave it
        // suspended until the decoder (still held here) reads again.
        feeding.cancel()
        do {
            _ = try await feeding.value
            XCTFail("a cancelled feed returned normally")
        } catch let error as MediaError {
            guard case .invalidTarget = error else { return XCTFail("\(error)") }
        }
        release.signal()
        // The decoding was cancelled with the task: it ends failed (FFmpeg's read was refused)
        // and takes no more bytes, which are refused with that failure.
        await XCTAssertThrowsErrorAsync(try await decoder.finish()) { _ in }
        await XCTAssertThrowsErrorAsync(try await decoder.feed(Data([1, 2, 3]))) { _ in }
    }

    func testADecoderThatFailsMidStreamRefusesTheRestWithItsOwnError() async throws {
        var limits = self.limits
        limits.maxAudioSeconds = 1
        let decoder = StreamingAudioDecoder(output: .speech, raw: .speech, limits: limits) { _ in }
        // 10 s of raw 16 kHz mono s16le: the decoder stops at 1 s while the rest is still arriving.
        let silence = Data(count: 10 * 32_000)
        var fed = 0
        do {
            while fed < silence.count {
                try await decoder.feed(silence.subdata(in: fed ..< fed + 1000))
                fed += 1000
            }
            XCTFail("all 10 s were taken by a decoder that stops at 1 s")
        } catch {
            guard case MediaError.limitExceeded(.audioSeconds, _, 1) = error else { return XCTFail("a refused feed names the decoder's failure, got \(error)") }
        }
        XCTAssertLessThan(fed, silence.count)
        await XCTAssertThrowsErrorAsync(try await decoder.finish()) { error in
            guard case MediaError.limitExceeded(.audioSeconds, _, 1) = error else { return XCTFail("\(error)") }
        }
    }
}

/// XCTAssertThrowsError for an async expression.
private func XCTAssertThrowsErrorAsync<T>(_ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                          _ handler: (Error) -> Void) async {
    do {
        _ = try await expression()
        XCTFail("no error thrown", file: file, line: line)
    } catch {
        handler(error)
    }
}

/// A thread-safe count, set or incremented from the decoder's thread or a task.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int { lock.withLock { stored } }
    func set(_ n: Int) { lock.withLock { stored = n } }
    /// Adds one and returns the new count.
    func increment() -> Int { lock.withLock { stored += 1; return stored } }
}

/// PCM gathered on the decoder's thread.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Data()
    var data: Data { lock.withLock { stored } }
    func append(_ chunk: Data) { lock.withLock { stored.append(chunk) } }
}
