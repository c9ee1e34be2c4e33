// Streamed input (plugin ABI 1.1, host->read_input) through the plugin host with the real
// local/pocketsphinx plugin: segments while the audio is still arriving, cancellation of a call
// blocked in read_input, the inline (1.0-style) request, the whole-WAV fallback for a model without
// streaming input (testkit/transcriber), and StreamedAudio's replay, backpressure and end on its own.
import CPrismPlugin
import Foundation
import Logging
import PrismMedia
@testable import PrismProviders
import XCTest

final class StreamedInputTests: XCTestCase {
    private var folder = ""
    private var host: PluginHost!

    override func setUp() async throws {
        folder = try Plugins.folder()
        try Plugins.install("libprism-plugin-pocketsphinx.so", into: folder, as: "libprism-plugin-pocketsphinx.so")
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        host = try PluginHost(options: options, logger: logger)
        host.start()
    }

    override func tearDown() async throws {
        host.shutdown()
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func model(_ name: String) throws -> ModelCapability {
        try XCTUnwrap(host.capabilityMatrix().first { $0.name == name }, "\(host.capabilityMatrix().map(\.name))")
    }

    private func speech() throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "\(LocalEnginesTests.testData)/goforward.raw"))
    }

    /// Low-level noise, as a room sounds between sentences (16 kHz s16le).
    private func quiet(seconds: Double) -> Data {
        var generator = SystemRandomNumberGenerator()
        var data = Data()
        for _ in 0..<Int(seconds * 16000) {
            withUnsafeBytes(of: Int16.random(in: -30...30, using: &generator).littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    private func transcribeRequest(_ parts: [ContentPart], streamed: StreamedAudio?) -> GenerationRequest {
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: parts)])
        request.operation = .transcribe
        request.streamedAudio = streamed
        return request
    }

    /// Appends `data` in 0.1 s pieces on a thread of its own (append blocks under backpressure).
    private func produce(_ data: Data, into audio: StreamedAudio, then: @escaping @Sendable () -> Void = {}) {
        Thread {
            var at = data.startIndex
            while at < data.endIndex {
                let end = min(data.endIndex, at + 3200)
                audio.append(data[at..<end])
                at = end
            }
            then()
        }.start()
    }

    func testSegmentsComeBackWhileTheAudioIsStillArriving() async throws {
        let pocketsphinx = try model("local/pocketsphinx")
        XCTAssertTrue(pocketsphinx.features.streamingInput)
        let first = try speech() + quiet(seconds: 1.5), rest = try speech() + quiet(seconds: 1)
        let audio = StreamedAudio()
        let call = try host.startCall(model: pocketsphinx, operation: .transcribe,
                                      request: transcribeRequest([.media(MediaInput(mimeType: StreamedAudio.mimeType, data: Data()))], streamed: audio))
        // The rest is sent only once a segment of the first utterance has come back.
        let segmentSeen = DispatchSemaphore(value: 0)
        let restSent = ManagedFlag()
        produce(first, into: audio) { [self] in
            let seen = segmentSeen.wait(timeout: .now() + 60) == .success
            restSent.set(seen ? "after a segment" : "timed out")
            produce(rest, into: audio) { audio.finish() }
        }
        var segments: [(text: String, restSent: String?)] = [], text = "", usage: Usage?
        loop: while true {
            switch await call.next() {
            case .event(.media(let mime, let data, _)):
                XCTAssertEqual(mime, "application/vnd.prism.segment+json")
                let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                segments.append((json["text"] as? String ?? "", restSent.value))
                segmentSeen.signal()
            case .event(.text(let delta)): text += delta
            case .event(.usage(let u)): usage = u
            case .event: break
            case .end(let end): XCTAssertTrue(end.isOK, "\(end)"); break loop
            }
        }
        XCTAssertEqual(segments.first?.text, "go forward ten meters")
        XCTAssertNil(segments.first?.restSent, "the first segment should arrive before the rest of the audio was sent")
        XCTAssertEqual(segments.count, 2, "\(segments)")
        XCTAssertEqual(restSent.value, "after a segment")
        XCTAssertEqual(text, "go forward ten meters go forward ten meters")
        XCTAssertEqual(usage?.audioSeconds ?? 0, Double(first.count + rest.count) / 32000, accuracy: 0.01)
    }

    func testCancellingACallBlockedInReadInputEndsIt() async throws {
        let pocketsphinx = try model("local/pocketsphinx")
        // A small read-ahead: the last append returns only once the engine has read nearly all
        // of the 0.5 s so far; it then waits in read_input for more (it wants 3 s to begin).
        let audio = StreamedAudio(readAhead: 3200)
        let call = try host.startCall(model: pocketsphinx, operation: .transcribe,
                                      request: transcribeRequest([.media(MediaInput(mimeType: StreamedAudio.mimeType, data: Data()))], streamed: audio))
        let appended = DispatchSemaphore(value: 0)
        produce(try speech().prefix(16000), into: audio) { appended.signal() }
        XCTAssertEqual(appended.wait(timeout: .now() + 30), .success, "the engine never read the audio")
        call.cancel()
        guard case .end(let end) = await call.next() else { return XCTFail("an event after cancel") }
        XCTAssertEqual(end.status, Int32(PRISM_STATUS_CANCELLED.rawValue), "\(end)")
        XCTAssertFalse(end.abandoned, "the plugin stayed blocked in read_input past the grace period")
        XCTAssertEqual(host.statistics.abandonedCalls, 0)
        // The decoder went back to the pool: the next call works.
        let next = try await inline()
        XCTAssertEqual(next, "go forward ten meters")
    }

    /// Transcribes goforward.raw sent inline as a WAV (the 1.0 way: no streamed input).
    private func inline() async throws -> String {
        let pcm = try speech()
        let wav = AudioEncoder.wavHeader(format: .speech, dataBytes: pcm.count) + pcm
        let call = try host.startCall(model: try model("local/pocketsphinx"), operation: .transcribe,
                                      request: transcribeRequest([.media(MediaInput(mimeType: "audio/wav", data: wav))], streamed: nil))
        var text = ""
        while true {
            switch await call.next() {
            case .event(.text(let delta)): text += delta
            case .event: continue
            case .end(let end):
                XCTAssertTrue(end.isOK, "\(end)")
                return text
            }
        }
    }

    func testAnInlineRequestStillWorks() async throws {
        let text = try await inline()
        XCTAssertEqual(text, "go forward ten meters")
    }

    func testAModelWithoutStreamingInputGetsTheWholeAudioAsAWAV() async throws {
        let transcriber = try model("testkit/transcriber")
        XCTAssertFalse(transcriber.features.streamingInput)
        let audio = StreamedAudio()
        let pcm = try speech()
        produce(pcm, into: audio) { audio.finish() }
        var request = transcribeRequest([], streamed: audio)
        request.route = RouteRequest(model: "testkit/transcriber")
        let generator = Generator(host: host, logger: Logger(label: "test"))
        let text = TextCollector()
        try await generator.generate(request) { output in
            if case .event(.text(let delta)) = output { text.append(delta) }
        }
        // testkit/transcriber describes what it got: the whole audio, as one WAV.
        XCTAssertEqual(text.text, "transcript of \(44 + pcm.count) bytes of audio/wav")
    }

    func testStreamedAudioReplaysForEachReaderAndHoldsBackTheProducer() throws {
        let audio = StreamedAudio(readAhead: 4)
        // No reader yet: appends never wait (a model that takes the whole audio reads at the end).
        audio.append(Data([1, 2, 3, 4, 5, 6]))
        let first = audio.reader()
        var buffer = [UInt8](repeating: 0, count: 5)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { first.read(into: $0) }, .bytes(4), "reads whole samples")
        XCTAssertEqual(Array(buffer.prefix(4)), [1, 2, 3, 4])
        // The reader is 2 bytes behind: one more append fits, the next waits for it.
        audio.append(Data([7, 8]))
        let unblocked = DispatchSemaphore(value: 0)
        Thread { audio.append(Data([9, 10])); unblocked.signal() }.start()
        _ = unblocked.wait(timeout: .now() + 0.2)
        XCTAssertEqual(audio.count, 8, "append should wait while the reader is behind")
        XCTAssertEqual(buffer.withUnsafeMutableBytes { first.read(into: $0) }, .bytes(4))
        XCTAssertEqual(Array(buffer.prefix(4)), [5, 6, 7, 8])
        XCTAssertEqual(unblocked.wait(timeout: .now() + 10), .success)
        audio.finish()
        XCTAssertEqual(buffer.withUnsafeMutableBytes { first.read(into: $0) }, .bytes(2))
        XCTAssertEqual(buffer.withUnsafeMutableBytes { first.read(into: $0) }, .ended)
        // A retry reads it all again from the first sample.
        first.close()
        let second = audio.reader()
        var all = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(all.withUnsafeMutableBytes { second.read(into: $0) }, .bytes(10))
        XCTAssertEqual(Array(all.prefix(10)), Array(1...10))
        second.cancel()
        XCTAssertEqual(all.withUnsafeMutableBytes { second.read(into: $0) }, .cancelled)
    }

    func testStreamedAudioCancelledAfterItsEndStaysCancelled() async {
        let audio = StreamedAudio()
        audio.append(Data([1, 2]))
        audio.finish()
        audio.append(Data([3, 4]))
        XCTAssertEqual(audio.count, 2, "no appends after the end")
        let reader = audio.reader()
        var buffer = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { reader.read(into: $0) }, .bytes(2))
        XCTAssertEqual(buffer.withUnsafeMutableBytes { reader.read(into: $0) }, .ended)
        let whole = await audio.whole()
        XCTAssertEqual(whole, Data([1, 2]))
        // The request is over: cancelled wins over the end, and a late finish does not undo it.
        audio.cancel()
        audio.finish()
        XCTAssertEqual(buffer.withUnsafeMutableBytes { reader.read(into: $0) }, .cancelled)
        let afterCancel = await audio.whole()
        XCTAssertNil(afterCancel)
    }
}

/// A string set once from another thread.
private final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    var value: String? { lock.withLock { stored } }
    func set(_ value: String) { lock.withLock { stored = value } }
}
