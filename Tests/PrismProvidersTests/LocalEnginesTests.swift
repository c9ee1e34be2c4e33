// The local engine plugins end to end with real engines and real data: local/pocketsphinx through
// the Transcribe RPC (Debian's pocketsphinx-testdata), local/espeak through Synthesize (and a
// Synthesize → Transcribe round trip, and spoken answers of Generate), and the statuses a user
// sees for bad input. OCR is in LocalOCRTests.
import Foundation
import NIOCore
import PrismProto
import PrismRPC
import XCTest

final class LocalEnginesTests: XCTestCase {
    static let testData = "/usr/share/pocketsphinx/test/data"
    private var gateway: TestGateway!

    override func setUp() async throws {
        let folder = try Plugins.folder()
        for name in ["tesseract", "pocketsphinx", "espeak"] {
            try Plugins.install("libprism-plugin-\(name).so", into: folder, as: "libprism-plugin-\(name).so")
        }
        try Plugins.install(Plugins.testkit, into: folder, as: "libprism-plugin-testkit.so")
        // The local engines first, so the testkit's fake transcriber and OCR are never chosen.
        gateway = try await TestGateway(folder: folder) { $0.providerPreference = ["local"] }
    }

    override func tearDown() async throws {
        await gateway.stop()
    }

    // MARK: - Transcribe

    struct Transcription {
        var routedModel = ""
        var segments: [(start: Double, end: Double, text: String, words: [String])] = []
        var text = ""
        var duration = 0.0
        var status = Status.ok
        var eventKinds: [String] = []
    }

    /// Streams `audio` in `chunk`-byte pieces after a config, and reads every event.
    func transcribe(_ audio: Data, mime: String = "", words: Bool = false, chunk: Int = 8192, configFirst: Bool = true,
                    cancelAfter: Double? = nil) async throws -> Transcription {
        let call = gateway.client.makeCall("/prism.v1.Prism/Transcribe", timeout: .seconds(120))
        let b = ProtoBuilder()
        let config = b.message(prism__v1__transcribe_config__init)
        config.pointee.mime_type = b.string(mime)
        config.pointee.word_timestamps = words ? 1 : 0
        let first = b.message(prism__v1__transcribe_request__init)
        first.pointee.payload_case = PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_CONFIG
        first.pointee.config = config
        var body = ByteBuffer()
        b.pack(first, into: &body)
        let sender = Task {
            if configFirst { try await call.send(body) }
            var offset = 0
            while offset < audio.count {
                let piece = audio[audio.startIndex + offset ..< audio.startIndex + min(audio.count, offset + chunk)]
                let pb = ProtoBuilder()
                let m = pb.message(prism__v1__transcribe_request__init)
                m.pointee.payload_case = PRISM__V1__TRANSCRIBE_REQUEST__PAYLOAD_AUDIO
                m.pointee.audio = piece.withUnsafeBytes { pb.bytes($0) }
                var buffer = ByteBuffer()
                pb.pack(m, into: &buffer)
                try await call.send(buffer)
                offset += chunk
            }
            call.end()
        }
        var result = Transcription()
        let canceller = cancelAfter.map { seconds in
            Task { try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)); call.cancel() }
        }
        defer { canceller?.cancel() }
        do {
            for try await reply in call.responses {
                let e = try ProtoMessage(prism__v1__transcribe_event__init, buffer: reply)
                withExtendedLifetime(e) {
                    let v = e.pointee
                    switch v.event_case {
                    case PRISM__V1__TRANSCRIBE_EVENT__EVENT_ROUTED:
                        result.eventKinds.append("routed")
                        result.routedModel = String(protoC: v.routed!.pointee.model)
                    case PRISM__V1__TRANSCRIBE_EVENT__EVENT_SEGMENT:
                        result.eventKinds.append("segment")
                        let s = v.segment!.pointee
                        let words = UnsafeBufferPointer(start: s.words, count: s.n_words).compactMap { $0 }.map { String(protoC: $0.pointee.text) }
                        result.segments.append((s.start_seconds, s.end_seconds, String(protoC: s.text), words))
                    case PRISM__V1__TRANSCRIBE_EVENT__EVENT_FINAL:
                        result.eventKinds.append("final")
                        result.text = String(protoC: v.final!.pointee.text)
                        result.duration = v.final!.pointee.duration_seconds
                    default:
                        break
                    }
                }
            }
        } catch is RPCError {}
        _ = try? await sender.value
        result.status = await call.status()
        return result
    }

    func testListsTheThreeLocalEnginesWithHonestRows() async throws {
        let providers = try await gateway.providers()
        let models = providers.flatMap(\.models)
        XCTAssertTrue(models.contains("local/tesseract"), "\(providers)")
        XCTAssertTrue(models.contains("local/pocketsphinx"), "\(providers)")
        XCTAssertTrue(models.contains("local/espeak"), "\(providers)")
        XCTAssertFalse(providers.contains { $0.reason != "" && $0.plugin.contains("local") }, "\(providers)")
    }

    func testTranscribeRecognisesGoForward() async throws {
        let raw = try Data(contentsOf: URL(fileURLWithPath: "\(Self.testData)/goforward.raw"))
        let result = try await transcribe(raw, mime: "audio/L16;rate=16000", words: true, chunk: 3000)
        XCTAssertEqual(result.status.code, .ok, result.status.message)
        XCTAssertEqual(result.eventKinds.first, "routed")
        XCTAssertEqual(result.eventKinds.last, "final")
        XCTAssertEqual(result.routedModel, "local/pocketsphinx")
        XCTAssertEqual(result.text, "go forward ten meters")
        XCTAssertFalse(result.segments.isEmpty)
        XCTAssertEqual(result.segments.map(\.text).joined(separator: " "), "go forward ten meters")
        XCTAssertEqual(result.segments.flatMap(\.words), ["go", "forward", "ten", "meters"])
        XCTAssertEqual(result.duration, Double(raw.count) / 32000, accuracy: 0.01)
        for s in result.segments { XCTAssertLessThan(s.start, s.end); XCTAssertLessThanOrEqual(s.end, result.duration + 0.01) }
    }

    func testTranscribeTakesAnyContainerTheMediaCoreReads() async throws {
        // A librivox clip as WAV: sniffed, decoded and resampled by the media core.
        let wav = try Data(contentsOf: URL(fileURLWithPath: "\(Self.testData)/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"))
        let result = try await transcribe(wav)
        XCTAssertEqual(result.status.code, .ok, result.status.message)
        XCTAssertGreaterThan(result.text.split(separator: " ").count, 5, result.text)
    }

    func testLibriVoxWordErrorRateStaysNearTheReferenceDecoder() async throws {
        // tools/bench/wer.py prints the same figure per clip; the reference decoder's own output
        // (test-lm.match) is at 28.2% on these clips, with a smaller, test-specific LM.
        let folder = "\(Self.testData)/librivox"
        let ids = try String(contentsOfFile: "\(folder)/fileids", encoding: .utf8).split(separator: "\n").map(String.init)
        var references: [String: [String]] = [:]
        for line in try String(contentsOfFile: "\(folder)/transcription", encoding: .utf8).split(separator: "\n") {
            guard let open = line.lastIndex(of: "(") else { continue }
            let id = String(line[line.index(after: open)...].dropLast())
            references[id] = line[..<open].split(separator: " ").map(String.init).filter { $0 != "<s>" && $0 != "</s>" }
        }
        var errors = 0, words = 0
        for id in ids {
            let result = try await transcribe(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(id).wav")))
            XCTAssertEqual(result.status.code, .ok, result.status.message)
            let reference = try XCTUnwrap(references[id])
            errors += Int((1 - CharacterAccuracy.of(words: result.text.split(separator: " ").map(String.init), reference: reference)) * Double(reference.count) + 0.5)
            words += reference.count
        }
        let wer = Double(errors) / Double(words)
        print(String(format: "LibriVox WER through Transcribe: %.1f%% (%d errors in %d words)", wer * 100, errors, words))
        XCTAssertLessThan(wer, 0.4)
    }

    func testCancellingATranscriptionStopsTheEngine() async throws {
        // 10 minutes of speech (goforward.raw over and over): many seconds of decoding.
        let raw = try Data(contentsOf: URL(fileURLWithPath: "\(Self.testData)/goforward.raw"))
        let long = (0..<215).reduce(into: Data()) { data, _ in data.append(raw) }
        let started = Date()
        let task = Task { try await transcribe(long, mime: "audio/L16;rate=16000", chunk: 1 << 20, cancelAfter: 2) }
        let result = try await task.value
        XCTAssertEqual(result.status.code, .cancelled, result.status.message)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8, "cancellation should stop the engine within its 0.1 s steps")
        // The engine itself stops within a second (not left running until the audio ends), and
        // serves the next call.
        let host = gateway.gateway.plugins
        let deadline = Date().addingTimeInterval(1)
        while host.plugins().contains(where: { $0.fileName.contains("pocketsphinx") && $0.callsInFlight > 0 }), Date() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertFalse(host.plugins().contains { $0.fileName.contains("pocketsphinx") && $0.callsInFlight > 0 }, "the decoder is still running")
        XCTAssertEqual(host.statistics.abandonedCalls, 0)
        let next = try await transcribe(raw, mime: "audio/L16;rate=16000")
        XCTAssertEqual(next.text, "go forward ten meters")
    }

    func testTranscribeBadInputGetsClearStatuses() async throws {
        let empty = try await transcribe(Data(), mime: "audio/L16;rate=16000")
        XCTAssertEqual(empty.status.code, .invalidArgument)
        XCTAssertTrue(empty.status.message.contains("audio"), empty.status.message)

        let text = Data(String(repeating: "this is not audio at all. ", count: 400).utf8)
        let notAudio = try await transcribe(text)
        XCTAssertEqual(notAudio.status.code, .invalidArgument, notAudio.status.message)

        let noConfig = try await transcribe(Data(count: 3200), configFirst: false)
        XCTAssertEqual(noConfig.status.code, .invalidArgument)
        XCTAssertTrue(noConfig.status.message.contains("config"), noConfig.status.message)
    }

    func testTranscribeRefusesAStreamOverTwoHours() async throws {
        // 2 h 0.5 s of 8 kHz silence, raw (cheap to send; it is 16 kHz once decoded).
        let seconds = 7200.5
        let silence = Data(count: Int(seconds * 8000) * 2)
        let result = try await transcribe(silence, mime: "audio/L16;rate=8000", chunk: 1 << 20)
        XCTAssertEqual(result.status.code, .resourceExhausted, result.status.message)
        XCTAssertTrue(result.status.message.contains("7200"), result.status.message)
    }

    // MARK: - Synthesize

    struct Synthesis {
        var routedModel = ""
        var chunks: [(mime: String, data: Data, last: Bool)] = []
        var status = Status.ok
        var audio: Data { chunks.reduce(into: Data()) { $0.append($1.data) } }
    }

    func synthesize(_ text: String, format: String = "wav", voice: String = "", speed: Float = 0) async throws -> Synthesis {
        let b = ProtoBuilder()
        let r = b.message(prism__v1__synthesize_request__init)
        r.pointee.text = b.string(text)
        r.pointee.format = b.string(format)
        r.pointee.voice = b.string(voice)
        r.pointee.speed = speed
        var body = ByteBuffer()
        b.pack(r, into: &body)
        let call = try await gateway.client.serverStreaming("/prism.v1.Prism/Synthesize", body, timeout: .seconds(60))
        var result = Synthesis()
        do {
            for try await reply in call.responses {
                let e = try ProtoMessage(prism__v1__synthesize_event__init, buffer: reply)
                withExtendedLifetime(e) {
                    if e.pointee.event_case == PRISM__V1__SYNTHESIZE_EVENT__EVENT_ROUTED {
                        result.routedModel = String(protoC: e.pointee.routed!.pointee.model)
                    } else if let m = e.pointee.audio?.pointee {
                        result.chunks.append((String(protoC: m.mime_type), Data([UInt8](protoC: m.data)), m.last != 0))
                    }
                }
            }
        } catch is RPCError {}
        result.status = await call.status()
        return result
    }

    func testSynthesizeStreamsWAV() async throws {
        let result = try await synthesize("The quick brown fox jumps over the lazy dog. It was a bright cold day in April.")
        XCTAssertEqual(result.status.code, .ok, result.status.message)
        XCTAssertEqual(result.routedModel, "local/espeak")
        XCTAssertGreaterThan(result.chunks.count, 3, "audio should arrive in several chunks as it is produced")
        XCTAssertEqual(result.chunks.last?.last, true)
        XCTAssertTrue(result.chunks.allSatisfy { $0.mime == "audio/wav" })
        let audio = result.audio
        XCTAssertEqual(audio.prefix(4), Data("RIFF".utf8))
        let rate = audio[24..<28].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(rate, 22050)
        let seconds = Double(audio.count - 44) / Double(rate * 2)
        XCTAssertGreaterThan(seconds, 3, "two sentences are several seconds of speech")
        XCTAssertLessThan(seconds, 15)
    }

    func testSynthesizeFormatsAndRates() async throws {
        let pcm = try await synthesize("Hello", format: "pcm")
        XCTAssertEqual(pcm.status.code, .ok, pcm.status.message)
        XCTAssertEqual(pcm.chunks.first?.mime, "audio/L16;rate=22050;channels=1")
        let flac = try await synthesize("Hello", format: "flac")
        XCTAssertEqual(flac.status.code, .ok, flac.status.message)
        XCTAssertEqual(flac.audio.prefix(4), Data("fLaC".utf8))
        let faster = try await synthesize("Hello there, how are you today?", format: "pcm", speed: 2)
        let normal = try await synthesize("Hello there, how are you today?", format: "pcm")
        XCTAssertLessThan(Double(faster.audio.count), Double(normal.audio.count) * 0.75)
    }

    func testSynthesizeBadInputGetsClearStatuses() async throws {
        let empty = try await synthesize("   ")
        XCTAssertEqual(empty.status.code, .invalidArgument)
        let long = try await synthesize(String(repeating: "word ", count: 5000))
        XCTAssertEqual(long.status.code, .resourceExhausted, long.status.message)
        XCTAssertTrue(long.status.message.contains("20000"), long.status.message)
        let format = try await synthesize("hello", format: "aiff")
        XCTAssertEqual(format.status.code, .invalidArgument)
        let voice = try await synthesize("hello", voice: "no-such-voice")
        XCTAssertEqual(voice.status.code, .invalidArgument, voice.status.message)
    }

    func testSynthesizeThenTranscribeRoundTrip() async throws {
        // eSpeak's synthetic voice is far from the speech PocketSphinx's en-us model was trained
        // on: with the klatt variant at 0.9× it recovers about 11 words of these 18 (the default
        // voice fewer). A broken pipeline (wrong rate, byte order, header) recovers next to nothing.
        let sentences = ["the quick brown fox jumps over the lazy dog", "please open the door and turn on the light"]
        var heardWords = 0, totalWords = 0
        for sentence in sentences {
            let spoken = try await synthesize(sentence, voice: "en-us+klatt", speed: 0.9)
            XCTAssertEqual(spoken.status.code, .ok, spoken.status.message)
            let heard = try await transcribe(spoken.audio)
            XCTAssertEqual(heard.status.code, .ok, heard.status.message)
            var remaining = heard.text.split(separator: " ").map(String.init)
            for word in sentence.split(separator: " ").map(String.init) {
                totalWords += 1
                if let i = remaining.firstIndex(of: word) { heardWords += 1; remaining.remove(at: i) }
            }
            print("round trip: '\(sentence)' → '\(heard.text)'")
        }
        XCTAssertGreaterThanOrEqual(Double(heardWords) / Double(totalWords), 0.4, "\(heardWords) of \(totalWords) words came back")
    }

    func testGenerateWithAudioOutputFromATextOnlyModelSpeaksTheAnswer() async throws {
        let b = ProtoBuilder()
        let part = b.message(prism__v1__part__init)
        part.pointee.kind_case = PRISM__V1__PART__KIND_TEXT
        part.pointee.text = b.string("3")
        let message = b.message(prism__v1__message__init)
        message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        message.pointee.n_parts = 1
        message.pointee.parts = b.array([part])
        let request = b.message(prism__v1__generate_request__init)
        request.pointee.n_messages = 1
        request.pointee.messages = b.array([message])
        request.pointee.n_outputs = 1
        request.pointee.outputs = b.array([PRISM__V1__MODALITY__MODALITY_AUDIO])
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string("testkit/slow")
        request.pointee.route = route
        var body = ByteBuffer()
        b.pack(request, into: &body)
        let call = try await gateway.client.serverStreaming("/prism.v1.Prism/Generate", body, timeout: .seconds(60))
        var adaptations: [String] = [], text = "", audio = Data(), mimes = Set<String>(), sawLast = false
        for try await reply in call.responses {
            let e = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
            withExtendedLifetime(e) {
                let v = e.pointee
                switch v.event_case {
                case PRISM__V1__GENERATE_EVENT__EVENT_ROUTED:
                    let r = v.routed!.pointee
                    adaptations = UnsafeBufferPointer(start: r.adaptations, count: r.n_adaptations).map { String(protoC: $0) }
                case PRISM__V1__GENERATE_EVENT__EVENT_TEXT:
                    text += String(protoC: v.text!.pointee.text)
                case PRISM__V1__GENERATE_EVENT__EVENT_MEDIA:
                    let m = v.media!.pointee
                    audio.append(Data([UInt8](protoC: m.data)))
                    mimes.insert(String(protoC: m.mime_type))
                    sawLast = sawLast || m.last != 0
                default:
                    break
                }
            }
        }
        let status = await call.status()
        XCTAssertEqual(status.code, .ok, status.message)
        XCTAssertEqual(adaptations, ["text→audio via local/espeak"])
        XCTAssertFalse(text.isEmpty)
        XCTAssertEqual(mimes, ["audio/L16;rate=22050;channels=1"])
        XCTAssertTrue(sawLast)
        XCTAssertGreaterThan(audio.count, 22050, "the spoken answer should last more than half a second")
    }
}
