// StreamedAudio: live audio for Transcribe, kept whole while it arrives: the decoder's thread
// appends PCM, each plugin call reads it from the first sample through host->read_input.
import Foundation

/// 16 kHz mono s16le PCM that a producer (the Transcribe RPC's decoder) appends while a plugin
/// call reads it through host->read_input.
///
/// Everything appended is kept until the request ends, so that a retry or a fallback before any
/// content starts over from the first sample, and so that a model without streaming input gets
/// the whole audio at the end. The producer's 2 h limit bounds that (230 MB, what Transcribe held
/// before streaming). While a call reads, `append` blocks when that reader is more than
/// `readAhead` bytes behind, so a slow engine slows the decoder and, through it, the client.
///
/// Not a `HandOff`, on purpose: a hand-off is a queue whose elements are gone once its one
/// consumer took them, while this is a log that keeps every byte for readers that come one
/// after another, each from the start, and for `whole()`; the producer waits on the current
/// reader's position in that log, not on a queue's depth. Putting a hand-off in front of it (the
/// decoder's thread putting PCM, a task appending it here) would add a hop and keep this lock and
/// condition all the same. Its readers are also plugin threads blocked in read_input, and a
/// hand-off's consumer is async. The bounded hand-off of this pipeline sits before it: the
/// client's bytes go to the decoder through one (see StreamingAudioDecoder).
public final class StreamedAudio: @unchecked Sendable {
    // @unchecked: every stored var below, and each Reader's, is guarded by `condition`.

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

    /// Life: `open` ──finish──▶ `ended`; either ──cancel──▶ `cancelled`, which wins over
    /// everything (reads, appends and `whole()` stop at once, even after the end).
    private enum State {
        /// Appends are taken; readers wait for more.
        case open
        /// No more appends; readers get the rest, then `.ended`.
        case ended
        /// The request is over.
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

        /// Whether the producer waits for this reader. Caller holds audio.condition.
        fileprivate var holdsBack: Bool { !closed && !cancelled && audio.data.count - position >= audio.readAhead }
    }

    public let readAhead: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var state = State.open
    private var data = Data()
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
        guard case .open = state else { return }
        while state != .cancelled && readers.contains(where: \.holdsBack) {
            condition.wait()
        }
        guard state != .cancelled else { return }
        data.append(pcm)
        condition.broadcast()
    }

    /// The input has ended: readers get the rest, then the end.
    public func finish() { update { if state == .open { state = .ended } } }

    /// The request is over (failed or cancelled): a blocked producer, reader or `whole()` returns.
    public func cancel() { update { state = .cancelled } }

    /// Waits for the end of the input and returns all of it; nil if cancelled first (also when
    /// the waiting task is cancelled: the request is then over).
    func whole() async -> Data? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Data?, Never>) in
                condition.lock()
                switch state {
                case .open:
                    wholeWaiters.append(continuation)
                    condition.unlock()
                case .ended:
                    let result = data
                    condition.unlock()
                    continuation.resume(returning: result)
                case .cancelled:
                    condition.unlock()
                    continuation.resume(returning: nil)
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
            if reader.cancelled || reader.closed || state == .cancelled { return .cancelled }
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
            if state == .ended { return .ended }
            condition.wait()
        }
    }

    /// Applies `change` under the lock, wakes every waiting thread, and resumes the `whole()`
    /// waiters (outside the lock) once the input has ended or the request is over.
    fileprivate func update(_ change: () -> Void) {
        condition.lock()
        change()
        var waiters: [CheckedContinuation<Data?, Never>] = []
        if state != .open { swap(&waiters, &wholeWaiters) }
        let result = state == .cancelled ? nil : data
        condition.unlock()
        condition.broadcast()
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
