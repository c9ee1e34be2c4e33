// Decodes audio that arrives in pieces (as in the Transcribe RPC) while it arrives: the bytes go
// through a HandOff to FFmpeg running on its own thread, and PCM comes out as it is decoded.
import CPrismMedia
import Foundation
import PrismHandOff

/// Push-style decoding with bounded memory.
///
/// The bytes travel in pieces through a ``HandOff`` to the decoder's thread, where FFmpeg pulls
/// them through its read callback. Feed them either blocking (`feed` waits while the buffer is
/// full: call it off any event loop) or from a task (`await feed`, which suspends instead), the
/// way a slow decoder slows the sender. `onPCM` runs on the decoder's thread.
/// Containers that need seeking (an MP4/M4A whose index is at the end) cannot be streamed and fail
/// with `.corrupt`; WAV, MP3, FLAC, Ogg/Opus, ADTS AAC, WebM and raw PCM stream fine.
/// Always end with ``finish()`` or ``cancel()``: until then the decoder thread waits for bytes.
/// Feed from one producer at a time: pieces of overlapping feeds may interleave.
public final class StreamingAudioDecoder: @unchecked Sendable {
    // @unchecked: `lock` guards the vars marked so; `pending` is the decoder thread's alone.

    /// What the stream turned out to be, and how much was decoded.
    public struct Summary: Sendable {
        public var source: AudioInfo
        public var duration: Double
        public var resampledWithSoxr: Bool
        /// Most bytes ever fed and not yet read by FFmpeg (never above the limit).
        public var peakBufferedBytes: Int
    }

    /// How the input ended, as the decoder's thread learns it from the hand-off.
    enum InputEnd: Sendable {
        case complete
        case cancelled
    }

    /// Pieces waiting at most, whatever their size: the byte budget bounds the memory, this only
    /// the overhead of a client that sends many tiny messages.
    static let maxPieces = 1024
    /// Bytes kept to sniff the format for the summary (FFmpeg consumes the bytes themselves).
    static let sniffBytes = 4096

    public let output: PCMFormat
    private let raw: PCMFormat?
    private let limits: MediaLimits
    private let onPCM: (Data) -> Void

    /// Bytes are split into pieces of at most `pieceBytes` (an eighth of the limit) and the
    /// hand-off's byte budget is the limit less two pieces: an `offer` may go one piece over
    /// the budget, and the decoder holds one piece while FFmpeg reads it, so what is fed and not
    /// yet read stays within ``MediaLimits/streamingBufferBytes``.
    private let pieceBytes: Int
    private let input: HandOff<Data, InputEnd>
    /// Left by the decoder thread's `done.leave()`; `finish` waits for it.
    private let done = DispatchGroup()

    private let lock = NSLock()
    // Guarded by `lock`.
    private var started = false
    private var cancelled = false
    private var result: Result<Summary, Error>?
    private var head = Data()
    /// Bytes fed (counted after the hand-off took them) and not yet read by FFmpeg (counted when
    /// the decoder thread finishes a piece), and the most of it ever: a late count on either side
    /// only ever lowers it below what is really held.
    private var buffered = 0
    private var peak = 0

    // The decoder thread's own: the piece FFmpeg is reading and how far it got.
    private var pending = Data()
    private var pendingIndex = 0
    private var decodedBytes = 0

    /// - Parameters:
    ///   - raw: describes headerless PCM input; nil lets FFmpeg recognize the container.
    ///   - onPCM: receives interleaved PCM of `output` in the order decoded, on the decoder thread.
    public init(output: PCMFormat = .speech, raw: PCMFormat? = nil, limits: MediaLimits = .standard,
                onPCM: @escaping (Data) -> Void) {
        self.output = output
        self.raw = raw
        self.limits = limits
        self.onPCM = onPCM
        let limit = max(1, limits.streamingBufferBytes)
        pieceBytes = max(1, limit / 8)
        input = HandOff(maxCount: Self.maxPieces, maxBytes: max(1, limit - 2 * pieceBytes), size: { $0.count })
    }

    // MARK: - Producer

    /// Adds bytes; blocks while the buffer is full. Throws the decoder's error if it already failed.
    public func feed(_ bytes: Data) throws {
        for piece in try pieces(of: bytes) {
            guard input.put(piece) != .refused else { throw endedError() }
            counted(piece.count)
        }
    }

    /// Adds bytes from a task: suspends (never blocks) while the buffer is full. Throws the
    /// decoder's error if it already failed. A task cancelled while it waits for room cancels
    /// the decoding (nobody would feed the rest).
    public func feed(_ bytes: Data) async throws {
        for piece in try pieces(of: bytes) {
            let acceptance = input.offer(piece)
            guard acceptance != .refused else { throw endedError() }
            counted(piece.count)
            if acceptance == .acceptedFull {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (room: CheckedContinuation<Void, Never>) in input.whenRoom { room.resume() } }
                } onCancel: {
                    self.cancel()
                }
            }
        }
    }

    /// Marks the end of input, waits for the decoder to drain, and returns what was decoded.
    public func finish() throws -> Summary {
        try startIfNeeded()
        input.finish(.complete)
        done.wait()
        return try lock.withLock { result! }.get()
    }

    /// Marks the end of input and returns what was decoded once the decoder has drained,
    /// suspending rather than blocking meanwhile.
    public func finish() async throws -> Summary {
        try startIfNeeded()
        input.finish(.complete)
        await withCheckedContinuation { (drained: CheckedContinuation<Void, Never>) in
            done.notify(queue: .global()) { drained.resume() }
        }
        return try lock.withLock { result! }.get()
    }

    /// Stops decoding; `feed` and `finish` then throw.
    public func cancel() {
        lock.withLock { cancelled = true }
        // Buffered bytes are dropped, producers refused, the decoder's next read fails.
        input.stop()
        input.finish(.cancelled)
    }

    /// `bytes` as pieces for the hand-off (copies when split, so that a buffered piece never
    /// pins the caller's whole chunk); starts the decoder and keeps the head for sniffing.
    private func pieces(of bytes: Data) throws -> [Data] {
        try startIfNeeded()
        lock.withLock {
            if head.count < Self.sniffBytes { head.append(bytes.prefix(Self.sniffBytes - head.count)) }
        }
        if bytes.count <= pieceBytes { return bytes.isEmpty ? [] : [bytes] }
        return stride(from: bytes.startIndex, to: bytes.endIndex, by: pieceBytes).map {
            Data(bytes[$0 ..< min($0 + pieceBytes, bytes.endIndex)])
        }
    }

    /// What a refused feed throws: the decoder's failure, else that the stream is over.
    private func endedError() -> Error {
        if case let .failure(error)? = lock.withLock({ result }) { return error }
        return MediaError.invalidTarget("the stream already ended")
    }

    /// Counts a piece the hand-off took into the bytes held.
    private func counted(_ count: Int) {
        lock.withLock {
            buffered += count
            peak = max(peak, buffered)
        }
    }

    private func startIfNeeded() throws {
        let start: Bool = lock.withLock {
            defer { started = true }
            return !started
        }
        guard start else { return }
        done.enter()
        let thread = Thread { [self] in
            self.decodeLoop()
            self.done.leave()
        }
        thread.name = "prism-audio-stream"
        thread.start()
    }

    // MARK: - The decoder thread

    private func decodeLoop() {
        let outcome: Result<Summary, Error> = Result {
            let opaque = Unmanaged.passUnretained(self).toOpaque()
            let read: PrismAVReadFn = { opaque, destination, size in
                Unmanaged<StreamingAudioDecoder>.fromOpaque(opaque!).takeUnretainedValue().read(destination!, Int(size))
            }
            let avInput = try AVInput(read: read, opaque: opaque, probeBytes: min(limits.probeBytes, limits.streamingBufferBytes),
                                      formatName: raw?.sample.rawDemuxer,
                                      options: raw.map { "sample_rate=\($0.sampleRate):channels=\($0.channels)" })
            let format = raw == nil ? MediaSniffer.sniff(lock.withLock { head }) : .wav
            let (info, soxr) = try AudioDecoder.run(avInput, format: format, output: output, limits: limits, seekable: false) { pcm in
                decodedBytes += pcm.count
                onPCM(Data(pcm))
            }
            return try lock.withLock {
                if cancelled { throw MediaError.invalidTarget("cancelled") }
                return Summary(source: info, duration: Double(decodedBytes) / Double(output.bytesPerSecond),
                               resampledWithSoxr: soxr, peakBufferedBytes: peak)
            }
        }
        lock.withLock { result = outcome }
        // Nobody reads any more: a waiting or later feed is refused (and throws `result`'s error).
        input.stop()
    }

    /// FFmpeg's read callback: waits for bytes, returns 0 at the end of input, -1 when cancelled.
    private func read(_ destination: UnsafeMutablePointer<UInt8>, _ size: Int) -> Int32 {
        if lock.withLock({ cancelled }) { return -1 }
        if pendingIndex == pending.endIndex {
            switch nextPiece() {
            case .element(let piece):
                pending = piece
                pendingIndex = piece.startIndex
            case .end(.complete):
                return 0
            case .end(.cancelled):
                return -1
            }
        }
        let count = min(size, pending.endIndex - pendingIndex)
        pending.copyBytes(to: destination, from: pendingIndex ..< pendingIndex + count)
        pendingIndex += count
        if pendingIndex == pending.endIndex {
            let finished = pending.count
            lock.withLock { buffered -= finished }
            pending = Data()
            pendingIndex = 0
        }
        return Int32(count)
    }

    /// The next piece or the end, waiting on this (the decoder's) thread. HandOff's consumer is
    /// async while FFmpeg's read callback must block: a step already due comes from `poll()`;
    /// otherwise a task awaits `next()` and this thread waits for it (one task per time the
    /// buffer runs dry, the only consumer still being this thread). HandOff has no blocking
    /// consumer of its own.
    private func nextPiece() -> HandOff<Data, InputEnd>.Step {
        if let step = input.poll() { return step }
        let arrived = DispatchSemaphore(value: 0)
        let step = StepBox()
        Task { [input] in
            step.value = await input.next()
            arrived.signal()
        }
        arrived.wait()
        return step.value!
    }
}

/// A step carried from the task that awaited it to the waiting decoder thread; the semaphore
/// orders the write before the read.
private final class StepBox: @unchecked Sendable {
    var value: HandOff<Data, StreamingAudioDecoder.InputEnd>.Step?
}
