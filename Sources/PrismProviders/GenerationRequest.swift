// A generation request as the plugin host sees it: plain Swift values the service fills in from
// prism.v1.GenerateRequest, which the adapter rewrites and the encoder turns into a ProviderRequest;
// and StreamedAudio, input that is still arriving while a plugin reads it (ABI 1.1 read_input).
import Foundation

/// Who said a message.
public enum Role: Int, Sendable {
    case unspecified = 0, user = 1, assistant = 2
}

/// Media as the client sent it (or as the adapter made it): declared type, bytes, optional name;
/// or a URI whose bytes the Generator fetches (MediaFetcher) before anything else looks at it.
public struct MediaInput: Sendable {
    /// The type the client declared; the adapter sniffs the bytes and never trusts it alone.
    public var mimeType: String
    public var data: Data
    public var name: String
    /// Media.uri: where `data` comes from while it is empty; kept once fetched.
    public var uri: String

    public init(mimeType: String, data: Data, name: String = "", uri: String = "") {
        self.mimeType = mimeType
        self.data = data
        self.name = name
        self.uri = uri
    }
}

/// One part of a message.
public indirect enum ContentPart: Sendable {
    case text(String)
    case media(MediaInput)
    case toolCall(id: String, name: String, argumentsJSON: String)
    case toolResult(toolCallID: String, content: [ContentPart], isError: Bool)
}

/// One turn of a conversation.
public struct ChatMessage: Sendable {
    public var role: Role
    public var parts: [ContentPart]

    public init(role: Role, parts: [ContentPart]) {
        self.role = role
        self.parts = parts
    }
}

/// A client-side tool the model may call.
public struct ToolSpec: Sendable {
    public var name: String
    public var description: String
    public var inputSchemaJSON: String

    public init(name: String, description: String, inputSchemaJSON: String) {
        self.name = name
        self.description = description
        self.inputSchemaJSON = inputSchemaJSON
    }
}

/// What the client asked of routing (prism.v1.Route).
public struct RouteRequest: Sendable {
    /// Empty = any capable provider.
    public var provider = ""
    /// "provider/model"; empty = the planner chooses.
    public var model = ""
    /// Models to try in order after the chosen one fails before any content.
    public var fallbacks: [String] = []
    /// ADAPTATION_NATIVE_ONLY: no conversion of inputs, only providers that take them as they are.
    public var nativeOnly = false
    /// How the response cache is used (prism.v1.Route.cache).
    public var cache = CachePolicy.default

    public init(provider: String = "", model: String = "", fallbacks: [String] = [], nativeOnly: Bool = false,
                cache: CachePolicy = .default) {
        self.provider = provider
        self.model = model
        self.fallbacks = fallbacks
        self.nativeOnly = nativeOnly
        self.cache = cache
    }
}

/// One generation request.
public struct GenerationRequest: Sendable {
    public var messages: [ChatMessage]
    /// What is asked: generate (the default), or transcribe / ocr / synthesize through the same
    /// planning, adaptation, retries and fallbacks (the Transcribe and Synthesize RPCs, `prism ocr`).
    public var operation: Operation = .generate
    public var system = ""
    public var tools: [ToolSpec] = []
    public var toolChoice = ""
    public var maxTokens: UInt32 = 0
    public var temperature: Float?
    public var responseSchemaJSON = ""
    /// Requested outputs; empty means text.
    public var outputs: Set<Modality> = []
    public var route = RouteRequest()
    public var labels: [String: String] = [:]
    /// When the answer stops being useful; passed to the plugin and enforced by cancellation.
    public var deadline: Date?
    /// The host's id of the request, for logs on both sides.
    public var requestID = UUID().uuidString
    /// Audio that is still arriving (Transcribe), in place of media in `messages`: a model that
    /// declares streaming input reads it while it arrives; any other gets it whole, as a WAV,
    /// once it has ended.
    public var streamedAudio: StreamedAudio?

    public init(messages: [ChatMessage]) {
        self.messages = messages
    }

    /// Every medium of the request, in order, with where it sits: `inner` is its index in the
    /// content of a tool result (the screenshot an agent's tool returned), nil for a part of its
    /// own. Media are planned, checked and fitted alike wherever they sit (one level deep: a tool
    /// result inside a tool result is not a thing any vendor takes).
    var media: [(message: Int, part: Int, inner: Int?, media: MediaInput)] {
        var result: [(Int, Int, Int?, MediaInput)] = []
        for (m, message) in messages.enumerated() {
            for (p, part) in message.parts.enumerated() {
                switch part {
                case .media(let media):
                    result.append((m, p, nil, media))
                case .toolResult(_, let content, _):
                    for (i, inner) in content.enumerated() {
                        if case .media(let media) = inner { result.append((m, p, i, media)) }
                    }
                default:
                    break
                }
            }
        }
        return result
    }
}

/// 16 kHz mono s16le PCM that a producer (the Transcribe RPC's decoder) appends while a plugin
/// call reads it through host->read_input.
///
/// Everything appended is kept until the request ends, so that a retry or a fallback before any
/// content starts over from the first sample, and so that a model without streaming input gets
/// the whole audio at the end. The producer's 2 h limit bounds that (230 MB, what Transcribe held
/// before streaming). While a call reads, `append` blocks when that reader is more than
/// `readAhead` bytes behind, so a slow engine slows the decoder and, through it, the client.
public final class StreamedAudio: @unchecked Sendable {
    /// The type the plugin sees on the request's (empty) Media.
    public static let mimeType = "audio/L16;rate=16000"
    /// Bytes per sample: reads never split one.
    static let sampleBytes = 2
    /// 256 KiB, 8 s of audio: far more than an engine reads per step (0.1 s), little enough
    /// that the decoder never runs far ahead of recognition.
    public static let defaultReadAhead = 256 * 1024

    /// The outcome of one read.
    enum ReadResult: Equatable {
        case bytes(Int)
        case ended
        case cancelled
    }

    /// One call's position in the audio; made by `reader()`, ended by `close()`.
    final class Reader: @unchecked Sendable {
        fileprivate let audio: StreamedAudio
        // Guarded by audio.condition.
        fileprivate var position = 0
        fileprivate var cancelled = false
        fileprivate var closed = false

        fileprivate init(_ audio: StreamedAudio) { self.audio = audio }

        /// Blocks until there are bytes to copy into `buffer`, the audio has ended, or the
        /// reader is cancelled. Call on a plugin worker thread, never an event loop.
        func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult { audio.read(self, into: buffer) }

        /// Wakes a blocked read with `.cancelled`; later reads return it at once.
        func cancel() { audio.update { cancelled = true } }

        /// The call is over: the producer no longer waits for this reader.
        func close() { audio.update { closed = true } }
    }

    public let readAhead: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var data = Data()
    private var ended = false
    private var cancelled = false
    private var readers: [Reader] = []
    private var wholeWaiters: [CheckedContinuation<Data?, Never>] = []

    public init(readAhead: Int = StreamedAudio.defaultReadAhead) {
        self.readAhead = max(Self.sampleBytes, readAhead)
    }

    /// Bytes appended so far.
    public var count: Int { condition.withLock { data.count } }

    /// Adds decoded PCM; blocks while a reading call is more than `readAhead` behind. Call off
    /// any event loop (the decoder's thread). Does nothing after `cancel()` or `finish()`.
    public func append(_ pcm: Data) {
        condition.lock()
        defer { condition.unlock() }
        guard !ended && !cancelled else { return }
        while !cancelled && readers.contains(where: { !$0.closed && !$0.cancelled && data.count - $0.position >= readAhead }) {
            condition.wait()
        }
        guard !cancelled else { return }
        data.append(pcm)
        condition.broadcast()
    }

    /// The input has ended: readers get the rest, then the end.
    public func finish() { update { ended = true } }

    /// The request is over (failed or cancelled): a blocked producer, reader or `whole()` returns.
    public func cancel() { update { cancelled = true } }

    /// Waits for the end of the input and returns all of it; nil if cancelled first (also when
    /// the waiting task is cancelled: the request is then over).
    func whole() async -> Data? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Data?, Never>) in
                condition.lock()
                if ended || cancelled {
                    let result = cancelled ? nil : data
                    condition.unlock()
                    continuation.resume(returning: result)
                } else {
                    wholeWaiters.append(continuation)
                    condition.unlock()
                }
            }
        } onCancel: {
            self.cancel()
        }
    }

    /// A new reader at the first sample.
    func reader() -> Reader {
        let reader = Reader(self)
        update { readers.removeAll { $0.closed }; readers.append(reader) }
        return reader
    }

    fileprivate func read(_ reader: Reader, into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if reader.cancelled || reader.closed || cancelled { return .cancelled }
            let available = data.count - reader.position
            if available > 0 {
                var n = min(available, buffer.count)
                if n >= Self.sampleBytes { n -= n % Self.sampleBytes }
                data.withUnsafeBytes { all in
                    buffer.baseAddress!.copyMemory(from: all.baseAddress! + reader.position, byteCount: n)
                }
                reader.position += n
                condition.broadcast() // the producer may be waiting for room
                return .bytes(n)
            }
            if ended { return .ended }
            condition.wait()
        }
    }

    fileprivate func update(_ change: () -> Void) {
        condition.lock()
        change()
        var waiters: [CheckedContinuation<Data?, Never>] = []
        if ended || cancelled { swap(&waiters, &wholeWaiters) }
        let result = cancelled ? nil : data
        condition.unlock()
        condition.broadcast()
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
